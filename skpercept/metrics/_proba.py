"""Metrics of predicted probabilities: the Brier score and the expected calibration error.

Both accept binary probabilities ``P(y = 1)`` (for pairs, ``P(left ≻ right)``, soft labels
allowed) or a classifier's ``(n_samples, n_classes)`` matrix, per attribute. Also available, and
documented with the other metrics, from :mod:`skpercept.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from skpercept.metrics._inputs import check_unit, no_labels_error, reduce_outputs


def _proba_outputs(y_true, y_prob, labels) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """Split into per-attribute (labels, probabilities) with rows of missing labels removed.

    Probabilities come out as 1-D ``P(y = 1)`` (binary, soft labels allowed) or as an
    ``(n, n_classes)`` matrix with labels turned into column indices (multi-class).
    """
    t = np.asarray(y_true, dtype=object if labels is not None else None)
    one_d = t.ndim == 1
    if isinstance(y_prob, (list, tuple)) and len(y_prob) and np.ndim(y_prob[0]) == 2:
        outputs = [np.asarray(q, dtype=np.float64) for q in y_prob]  # sklearn multi-output
    else:
        q = np.asarray(y_prob, dtype=np.float64)
        if q.shape == t.shape or (one_d and q.ndim == 2 and q.shape[1] == 1 and t.ndim == 1):
            q = q.reshape(t.shape)
            outputs = [q] if one_d else [q[:, j] for j in range(q.shape[1])]
        elif one_d and q.ndim == 2:
            outputs = [q]
        elif q.ndim == 3:
            outputs = [q[:, j, :] for j in range(q.shape[1])]
        else:
            raise ValueError(
                f"y_prob of shape {q.shape} does not fit y_true of shape {t.shape}: expected "
                "the same shape (binary), (n_samples, n_classes) for 1-D y_true, or "
                "(n_samples, n_attributes, n_classes)."
            )
    cols = [t] if one_d else [t[:, j] for j in range(t.shape[1])]
    if len(cols) != len(outputs):
        raise ValueError(f"y_true has {len(cols)} attribute(s) but y_prob has {len(outputs)}.")
    return [_one_output(y, q, labels) for y, q in zip(cols, outputs)], one_d


def _one_output(y: np.ndarray, q: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    if len(y) != len(q):
        raise ValueError(f"y_true has {len(y)} samples but y_prob has {len(q)}.")
    if len(y) == 0:
        raise ValueError("y_true is empty: at least one sample is required.")
    missing = pd.isna(y)
    if q.ndim == 1 or q.shape[1] == 1:
        q = q.reshape(-1)
        if labels is not None:  # hard labels given by name: positive class is labels[1]
            y = np.where(missing, np.nan, y == np.asarray(labels, dtype=object)[1])
        y = y.astype(np.float64)
        check_unit(y, "y_true", "a binary (or soft) label")  # before masking: true row numbers
        check_unit(q, "y_prob", "a probability")
        return y[~missing], q[~missing]
    y, q = y[~missing], q[~missing]
    n_classes = q.shape[1]
    if labels is None:
        present = np.unique(y)
        if len(present) == n_classes:
            labels = present
        elif np.isin(present, np.arange(n_classes)).all():
            labels = np.arange(n_classes)
        else:
            raise ValueError(
                f"Cannot tell which of the {n_classes} probability columns belongs to which of "
                f"the labels {present.tolist()}; pass labels= (the classifier's classes_), e.g. "
                "percept_scorer('neg_brier_score', labels=[1, 2, 3, 4])."
            )
    labels = np.asarray(labels)
    if len(labels) != n_classes:
        raise ValueError(f"labels has {len(labels)} entries but y_prob has {n_classes} columns.")
    index = {label: i for i, label in enumerate(labels.tolist())}
    try:
        codes = np.array([index[v] for v in y.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"y_true contains {exc.args[0]!r}, not one of labels {labels.tolist()}.") from None
    if len(q) and (q.min() < 0 or q.max() > 1):
        raise ValueError("y_prob must contain probabilities in [0, 1].")
    if n_classes == 2:  # same numbers as the 1-D P(second class) form of the same model
        return codes.astype(np.float64), q[:, 1]
    return codes, q


def _proba_metric(y_true, y_prob, labels, multioutput, binary: Callable, multi: Callable):
    outputs, one_d = _proba_outputs(y_true, y_prob, labels)
    if all(len(y) == 0 for y, _ in outputs):
        raise no_labels_error()
    values = [np.nan if len(y) == 0 else (binary(y, q) if q.ndim == 1 else multi(y, q)) for y, q in outputs]
    return reduce_outputs(np.array(values), multioutput, one_d)


def brier_score(y_true, y_prob, *, labels=None, multioutput: str = "uniform_average"):
    """Brier score: mean squared error of predicted probabilities (lower is better).

    Binary: ``mean((p - y)²)`` with ``p = P(y = 1)`` (for pairs, ``P(left ≻ right)``) and soft
    labels allowed, in [0, 1]. Multi-class (an ``(n, n_classes)`` matrix): the sum over classes
    of the squared error against the one-hot label, averaged over samples, in [0, 2].

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_attributes)
        Labels; NaN = missing.
    y_prob : array-like
        Same shape as ``y_true`` (binary); ``(n_samples, n_classes)`` for 1-D ``y_true``;
        ``(n_samples, n_attributes, n_classes)`` or a list of ``(n_samples, n_classes)``
        arrays for several attributes.
    labels : array-like or None, default=None
        Class of each probability column (a classifier's ``classes_``). Inferred when all
        classes occur in ``y_true`` or labels are ``0..n_classes-1``; otherwise required.
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'

    Examples
    --------
    >>> from skpercept.metrics import brier_score
    >>> brier_score([1, 0], [0.8, 0.4])
    0.1
    """
    return _proba_metric(
        y_true,
        y_prob,
        labels,
        multioutput,
        binary=lambda y, q: float(np.mean((q - y) ** 2)),
        multi=lambda y, q: float(np.mean(np.sum((q - np.eye(q.shape[1])[y]) ** 2, axis=1))),
    )


def _binned_gap(confidence: np.ndarray, outcome: np.ndarray, n_bins: int) -> float:
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=outcome, minlength=n_bins) - np.bincount(
        bins, weights=confidence, minlength=n_bins
    )
    return float(np.sum(np.abs(gap)) / count.sum())


def expected_calibration_error(
    y_true, y_prob, *, n_bins: int = 10, labels=None, multioutput: str = "uniform_average"
):
    """Expected calibration error over ``n_bins`` equal-width probability bins (lower is better).

    ``ECE = Σ_b (n_b / n) · |observed_b − predicted_b|``. Binary (and pairs): the bins are over
    ``p = P(y = 1)``, and observed is the mean (soft) label, i.e. the calibration of
    ``P(left ≻ right)`` itself. Multi-class: top-label ECE, bins over the highest probability,
    observed = the share of samples whose most probable class is right.

    Parameters
    ----------
    y_true, y_prob, labels, multioutput
        As in :func:`brier_score`.
    n_bins : int, default=10
        Number of equal-width bins on [0, 1]; the last bin includes 1.

    Examples
    --------
    >>> from skpercept.metrics import expected_calibration_error
    >>> expected_calibration_error([1, 0, 1, 1], [0.9, 0.9, 0.2, 0.3], n_bins=2)
    0.575
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")

    def multi(y, q):
        top = q.argmax(axis=1)
        return _binned_gap(q.max(axis=1), (top == y).astype(np.float64), n_bins)

    return _proba_metric(
        y_true,
        y_prob,
        labels,
        multioutput,
        binary=lambda y, q: _binned_gap(q, y, n_bins),
        multi=multi,
    )
