"""Temperature calibration of the heads' probabilities, fitted on held-out judgments.

A model of people fits each person's deviation to a few judgments; its probabilities then
say more (or less) than its accuracy warrants. Every head with ``user_features`` therefore
divides its logits by a temperature ``T > 0`` chosen on judgments training never saw, one per
ensemble member and attribute (``calibration='temperature'``, by default for a model of
people):

- :func:`fit_temperature` — the ``T`` of pair logits ``d`` (``P(left ≻ right) = σ(d / T)``);
- :func:`fit_level_temperature` — the ``T`` of one attribute's rating logits (softmax, CORN's
  conditional logits, or the cumulative logits of a proportional-odds model);
- :func:`resolve_calibration` — what ``calibration='auto'`` means for a fit;
- :class:`TemperedMembers` — the bookkeeping a :class:`~skpercept.heads.base.SkorchHead`
  shares: a temperature per member, fitted on the member's held-out rows once it has trained,
  and applied to everything the member predicts (mid-training views included).

Dividing logits by ``T`` keeps a pair model antisymmetric and keeps the order of its item
scores; a softmax model keeps its argmax.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from skpercept.heads._joint_net import level_log_proba
from skpercept.heads.nets import corn_proba

__all__ = ["TemperedMembers", "fit_level_temperature", "fit_temperature", "resolve_calibration"]

#: ``T`` is searched on a log scale in ``[e⁻⁴, e⁴]``.
LOG_T_BOUNDS = (-4.0, 4.0)


def resolve_calibration(calibration: str | None, personal: bool) -> str | None:
    """``calibration`` as a fit uses it: ``'auto'`` is ``'temperature'`` for a model of people.

    The shared model's early stopping already keeps the epoch with the lowest held-out
    log-loss, and a temperature on its small hold-out mostly adds noise; a model of people
    is confident beyond its accuracy (or short of it) until its people's deviations are
    calibrated.

    Examples
    --------
    >>> from skpercept.heads.calibration import resolve_calibration
    >>> resolve_calibration("auto", personal=True), resolve_calibration("auto", personal=False)
    ('temperature', None)
    """
    if calibration == "auto":
        return "temperature" if personal else None
    return calibration


def fit_temperature(d: np.ndarray, y: np.ndarray) -> float:
    """The temperature ``T`` minimizing the log-loss of ``σ(d / T)`` against labels ``y``,
    under a standard normal prior on ``log T``.

    Soft labels (a share of raters preferring the left item) are scored by the same
    cross-entropy; NaN labels are skipped. The prior adds ``(log T)² / 2`` to the summed
    log-loss: with hundreds of held-out pairs it changes nothing, and with a handful whose
    labels all agree with the sign of ``d`` (where the log-loss keeps falling as ``T → 0``) it
    keeps ``T`` from the search's lower bound, a model made certain by five lucky pairs. ``T``
    is searched on a log scale in ``[e⁻⁴, e⁴]``; it is 1 without labels.

    Parameters
    ----------
    d : ndarray of shape (n_pairs,)
        Score differences (logits) of held-out pairs.
    y : ndarray of shape (n_pairs,)
        Labels in [0, 1], NaN for missing.

    Returns
    -------
    T : float

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads.calibration import fit_temperature
    >>> rng = np.random.RandomState(0)
    >>> d = rng.normal(scale=2.0, size=5000)
    >>> y = (rng.uniform(size=5000) < 1 / (1 + np.exp(-d / 4))).astype(float)  # 4× too confident
    >>> bool(3.5 < fit_temperature(d, y) < 4.5)
    True
    """
    keep = ~np.isnan(y)
    d, y = np.asarray(d, dtype=np.float64)[keep], np.asarray(y, dtype=np.float64)[keep]
    if len(d) == 0:
        return 1.0

    def log_loss(log_t: float) -> float:
        z = d * np.exp(-log_t)
        # −[y log σ(z) + (1 − y) log σ(−z)] = logaddexp(0, z) − y z, stable for any z
        return float(np.sum(np.logaddexp(0.0, z) - y * z))

    return _map_temperature(log_loss)


def _map_temperature(log_loss) -> float:
    """The ``T`` minimizing ``log_loss(log T)`` (summed over the held-out labels) plus the
    standard normal prior's ``(log T)² / 2``, searched on ``LOG_T_BOUNDS``."""
    result = minimize_scalar(
        lambda log_t: log_loss(log_t) + 0.5 * log_t**2, bounds=LOG_T_BOUNDS, method="bounded"
    )
    return float(np.exp(result.x))


def _level_log_proba(logits: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "ce":
        return torch.log_softmax(logits, dim=1)
    if loss == "corn":
        return torch.log(corn_proba(logits).clamp_min(1e-12))
    if loss == "cumulative":
        return level_log_proba(logits)
    raise ValueError(f"loss must be 'ce', 'corn' or 'cumulative', got {loss!r}.")


def fit_level_temperature(logits: np.ndarray, codes: np.ndarray, loss: str = "ce") -> float:
    """The temperature ``T`` that minimizes the log-loss of the levels given ``logits / T``,
    under a standard normal prior on ``log T``.

    The prior adds ``(log T)² / 2`` to the summed log-loss: with hundreds of held-out ratings
    it changes nothing, and with a handful, which all agree with the argmax, it keeps ``T``
    from running to the search's lower bound (a model made certain by five lucky ratings).
    ``T`` is searched on a log scale in ``[e⁻⁴, e⁴]``; it is 1 without labels.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_logits)
        One attribute's logits: ``n_levels`` for ``loss='ce'``; ``n_levels - 1`` conditional
        logits for ``'corn'``; ``n_levels - 1`` cumulative logits ``P(level > k) = σ(z_k)``
        for ``'cumulative'`` (a proportional-odds model, as
        :class:`~skpercept.heads.JointRatingRanker` rates).
    codes : ndarray of shape (n_samples,)
        Level indices (0 = lowest), NaN for a missing rating.
    loss : {'ce', 'corn', 'cumulative'}, default='ce'

    Returns
    -------
    T : float

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads.calibration import fit_level_temperature
    >>> rng = np.random.RandomState(0)
    >>> logits = rng.normal(scale=3.0, size=(4000, 4))
    >>> p = np.exp(logits / 3); p /= p.sum(axis=1, keepdims=True)   # 3× too confident
    >>> codes = np.array([rng.choice(4, p=row) for row in p], dtype=float)
    >>> bool(2.6 < fit_level_temperature(logits, codes) < 3.4)
    True
    """
    _level_log_proba(torch.zeros((1, 2), dtype=torch.float64), loss)  # a bad loss is named now
    codes = np.asarray(codes, dtype=np.float64)
    keep = ~np.isnan(codes)
    if not keep.any():
        return 1.0
    z = torch.from_numpy(np.asarray(logits, dtype=np.float64)[keep])
    rows = np.arange(int(keep.sum()))
    levels = codes[keep].astype(int)

    def log_loss(log_t: float) -> float:
        return float(-_level_log_proba(z * np.exp(-log_t), loss).numpy()[rows, levels].sum())

    return _map_temperature(log_loss)


class TemperedMembers(metaclass=ABCMeta):
    """A temperature per ensemble member of a :class:`~skpercept.heads.base.SkorchHead`.

    Mixed in before ``SkorchHead``; the head declares a ``calibration`` parameter
    (``{'auto', 'temperature'}`` or None) and says how its raw outputs take a temperature:

    - ``_temperature_shape()``: the temperatures of one member (default one per attribute);
    - ``_tempered(out, t)``: raw outputs ``out`` of one member with its temperatures ``t``
      applied;
    - ``_fit_temperatures(out, y)``: the temperatures, from one member's raw outputs on its
      held-out rows and their encoded targets.

    Fitted attributes: ``calibration_`` (``'auto'`` resolved) and ``temperature_`` of shape
    ``(n_ensemble, *_temperature_shape())``, ones until a member is calibrated (so
    predictions mid-training are raw), and ones for a file saved before the head had them.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import PairwiseRanker
    >>> from skpercept.heads.calibration import TemperedMembers
    >>> issubclass(PairwiseRanker, TemperedMembers)
    True
    >>> rng = np.random.RandomState(0)
    >>> items = rng.normal(size=(60, 4))
    >>> a, b = rng.randint(0, 60, size=(2, 600))
    >>> X, y = np.hstack([items[a], items[b]]), (items[a, 0] > items[b, 0]).astype(float)
    >>> ranker = PairwiseRanker(calibration="temperature", n_ensemble=2, max_epochs=5, random_state=0)
    >>> ranker.fit(X, y).temperature_.shape  # one per member and attribute
    (2, 1)
    """

    def _temperature_shape(self) -> tuple[int, ...]:
        return (self.n_outputs_,)

    @abstractmethod
    def _tempered(self, out: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        """Raw outputs ``out`` of one member with its temperatures applied."""

    @abstractmethod
    def _fit_temperatures(self, out: np.ndarray, y: np.ndarray) -> Any:
        """One member's temperatures from its raw outputs on held-out rows and their targets."""

    def _start_members(self, n_members: int) -> None:
        super()._start_members(n_members)
        self.temperature_ = np.ones((n_members, *self._temperature_shape()))
        self.calibration_ = resolve_calibration(self.calibration, bool(len(self._user_index())))

    def _member_trained(self, member: int, net: Any, X_valid: np.ndarray | None, y_valid: np.ndarray | None):
        super()._member_trained(member, net, X_valid, y_valid)
        if self.calibration_ is None or X_valid is None or not len(X_valid):
            return
        self.temperature_[member] = self._fit_temperatures(self._predict_with_net(net, X_valid), y_valid)

    def _member_state(self, member: int) -> dict[str, Any]:
        return {**super()._member_state(member), "temperature_": self._temperatures()[member : member + 1]}

    def _member_output(self, member: int, out: np.ndarray) -> np.ndarray:
        return self._tempered(super()._member_output(member, out), self._temperatures()[member])

    def _member_outputs(self, X: np.ndarray) -> list[np.ndarray]:
        return [self._tempered(out, t) for out, t in zip(super()._member_outputs(X), self._temperatures())]

    def _temperatures(self) -> np.ndarray:
        # a model saved before calibration existed predicts as it did (temperature 1)
        fitted = self.__dict__.get("temperature_")
        return np.ones((len(self.nets_), *self._temperature_shape())) if fitted is None else fitted
