"""The learned prior over people's personal parameters: the numerics of its EM.

:meth:`skpercept.personal.PersonalHeadMixin._learn_prior` runs the rounds (fit every
person, update the covariance); this module holds what a round computes: every person's
Hessian at once, the Ledoit–Wolf shrinkage and a symmetric inverse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.covariance import ledoit_wolf_shrinkage

#: ``user_prior='learned'`` needs judgments from at least this many people (else: isotropic).
MIN_PRIOR_PEOPLE = 20
#: ``user_prior='learned'`` needs at most this many personal parameters per person (their
#: covariance is ``p × p``; else: isotropic).
MAX_PRIOR_DIM = 512
#: EM rounds of the learned prior (each: fit every person, update the covariance).
PRIOR_EM_ROUNDS = 5


def block_hessians(data_term: Any, theta: torch.Tensor) -> np.ndarray:
    """Per-person Hessians ``(n, p, p)`` of a data term separable over the rows of ``theta``.

    Person ``u``'s gradient depends on ``θ_u`` alone, so differentiating the sum over people
    of gradient coordinate ``j`` gives row ``j`` of every person's Hessian at once: ``p``
    Hessian-vector products instead of ``n·p``.
    """
    theta = theta.clone().requires_grad_()
    (grad,) = torch.autograd.grad(data_term(theta), theta, create_graph=True)
    n, p = theta.shape
    H = np.zeros((n, p, p))
    for j in range(p):
        (row,) = torch.autograd.grad(grad[:, j].sum(), theta, retain_graph=j < p - 1, allow_unused=True)
        if row is not None:
            H[:, j, :] = row.detach().numpy()
    return H


def shrink_covariance(sigma: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``Σ`` shrunk toward ``(tr Σ / p)·I`` by the Ledoit–Wolf coefficient of the samples ``θ``.

    A floor of 1e-6 of the mean variance keeps the precision finite when every person's
    parameters vanish along a direction.
    """
    p = len(sigma)
    mu = max(float(np.trace(sigma)) / p, 1e-12)
    rho = float(ledoit_wolf_shrinkage(theta, assume_centered=True)) if len(theta) > 1 else 1.0
    return (1.0 - rho) * sigma + (rho + 1e-6) * mu * np.eye(p)


def symmetric_inverse(A: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric matrix, symmetric to the last bit."""
    inverse = np.linalg.inv(0.5 * (A + A.T))
    return 0.5 * (inverse + inverse.T)
