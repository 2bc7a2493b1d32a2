"""Input handling shared by the metrics of :mod:`skpercept.metrics`.

Every metric there takes ``y_true`` and a prediction 1-D or 2-D (one column per attribute),
masks NaN labels rather than imputing them, refuses shapes that differ, and reduces the
per-attribute scores by ``multioutput``; these helpers do it once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_MULTIOUTPUT = ("uniform_average", "raw_values")


def as_float(y, name: str) -> np.ndarray:
    """``y`` as a 1-D or 2-D float array (NaN = missing), or a ValueError naming ``name``."""
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric (NaN for missing); got {y!r:.80}.") from exc
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D (one column per attribute), got shape {arr.shape}.")
    return arr


def paired(y_true, y_pred, pred_name: str = "y_pred") -> tuple[np.ndarray, np.ndarray, bool]:
    """Both as (n, k) float arrays of equal shape; also whether the input was 1-D."""
    t, p = as_float(y_true, "y_true"), as_float(y_pred, pred_name)
    if t.ndim == 2 and p.ndim == 1 and t.shape[1] == 1:
        t = t[:, 0]
    if p.ndim == 2 and t.ndim == 1 and p.shape[1] == 1:
        p = p[:, 0]
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and {pred_name} have different shapes: {t.shape} vs {p.shape}; they must "
            "have one row per sample and the same columns (attributes)."
        )
    if t.shape[0] == 0:
        raise ValueError("y_true is empty: at least one sample is required.")
    one_d = t.ndim == 1
    return (t[:, None], p[:, None], True) if one_d else (t, p, False)


def check_unit(arr: np.ndarray, name: str, what: str) -> None:
    """Refuse a non-missing value outside [0, 1], naming the first offending row."""
    bad = ~np.isnan(arr) & ((arr < 0) | (arr > 1))
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name} must be {what} in [0, 1]; got {float(arr[bad][0])!r} at row {row}.")


def reduce_outputs(values: np.ndarray, multioutput: str, one_d: bool):
    """Per-attribute scores as ``multioutput`` asks: the raw array, or their mean (NaN skipped)."""
    if multioutput not in _MULTIOUTPUT:
        raise ValueError(f"multioutput must be one of {_MULTIOUTPUT}, got {multioutput!r}.")
    values = np.asarray(values, dtype=np.float64)
    if multioutput == "raw_values":
        return values
    if one_d or np.isnan(values).all():  # all undefined (e.g. constant scores): NaN, no warning
        return float(values[0]) if one_d else float("nan")
    return float(np.nanmean(values))


def no_labels_error() -> ValueError:
    """The error of a metric given nothing to score."""
    return ValueError("No non-missing labels: every entry of y_true (or the prediction) is NaN.")


def per_column(t: np.ndarray, p: np.ndarray, fn: Callable) -> np.ndarray:
    """``fn(y_true, y_pred)`` per attribute on its non-missing rows; NaN for one without any."""
    out = np.full(t.shape[1], np.nan)
    keep = ~np.isnan(t) & ~np.isnan(p)
    if not keep.any():
        raise no_labels_error()
    for j in range(t.shape[1]):
        if keep[:, j].any():
            out[j] = fn(t[keep[:, j], j], p[keep[:, j], j])
    return out
