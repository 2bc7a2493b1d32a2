"""Keep/drop decisions and per-row sample weights from the rater-quality scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skpercept.raters._consistency import rating_comparison_consistency
from skpercept.raters._frames import check_frame
from skpercept.raters._random_raters import random_rater_scores
from skpercept.raters._speed import labeling_speed
from skpercept.raters._transitivity import transitivity_violations


def filter_raters(
    ratings: pd.DataFrame | None = None,
    comparisons: pd.DataFrame | None = None,
    *,
    attributes: str | Sequence[str] | None = None,
    min_labels: int = 20,
    min_random_z: float | None = 2.0,
    min_consistency: float | None = 0.6,
    max_cycle_fraction: float | None = 0.15,
    min_triads: int = 10,
    max_fast_fraction: float | None = 0.5,
    speed_threshold_s: float = 2.0,
    user_col: str = "user_id",
    item_col: str = "image",
    left_col: str = "image_a",
    right_col: str = "image_b",
    time_col: str = "insert_time",
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Decide which raters to keep, with the reasons for every drop.

    Runs the checks the given frames allow: activity (both), :func:`random_rater_scores`
    (ratings), :func:`transitivity_violations` (comparisons),
    :func:`rating_comparison_consistency` (both) and :func:`labeling_speed` (each frame that
    has ``time_col``; rows of both frames are pooled). A threshold set to ``None`` disables
    its check. A score that could not be computed for a user (NaN: too few labels, no closed
    triad, no decided comparison) does not drop that user; only ``min_labels`` does.

    Parameters
    ----------
    ratings, comparisons : DataFrame, optional
        Wide ratings and comparisons (see the individual functions); at least one.
    attributes : str or list of str, default=None
        Judgment columns, passed to every check.
    min_labels : int, default=20
        Minimum number of rows (ratings + comparisons) a user must have.
    min_random_z : float or None, default=2.0
        Drop when ``random_z`` (real vs shuffled error) is below this.
    min_consistency : float or None, default=0.6
        Drop when comparisons agree with the user's own ratings less often (0.5 = chance).
    max_cycle_fraction : float or None, default=0.15
        Drop when more of the user's closed triads are cycles (0.25 = chance).
    min_triads : int, default=10
        The cycle check (and its reliability term) only applies to users with at least this
        many closed triads: with 3 triads one unlucky cycle already reads as 0.33.
    max_fast_fraction : float or None, default=0.5
        Drop when more of the user's inter-label intervals are below ``speed_threshold_s``.
    speed_threshold_s : float, default=2.0
        What counts as a fast interval.
    user_col, item_col, left_col, right_col, time_col : str
        Column names.
    random_state : int or None, default=0
        Passed to :func:`random_rater_scores`.

    Returns
    -------
    DataFrame
        Indexed by user: ``n_labels``, the scores used (``random_z``, ``consistency``,
        ``cycle_fraction``, ``fast_fraction`` where available), ``reliability`` (in [0, 1],
        see :func:`rater_weights`), ``keep`` (bool) and ``reasons`` ('' when kept, else the
        failed checks joined by '; ').

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.raters import filter_raters
    >>> df = pd.DataFrame({"user_id": [1] * 3 + [2] * 30, "image": range(33),
    ...                    "trust": [1, 2, 3] + [2] * 30, "insert_time": range(0, 330, 10)})
    >>> report = filter_raters(df, min_random_z=None)
    >>> report["keep"].tolist(), report.loc[1, "reasons"]
    ([False, True], 'too few labels (3 < 20)')
    """
    if ratings is None and comparisons is None:
        raise ValueError("pass ratings, comparisons or both.")
    # converted once here (polars / pyarrow), so the scoring functions below get pandas
    ratings = None if ratings is None else check_frame(ratings, "ratings", [user_col])
    comparisons = None if comparisons is None else check_frame(comparisons, "comparisons", [user_col])
    frames = [(n, f) for n, f in (("ratings", ratings), ("comparisons", comparisons)) if f is not None]
    counts = pd.concat([f[user_col] for _, f in frames]).value_counts().sort_index()
    report = pd.DataFrame({"n_labels": counts.astype(np.int64)})
    report.index.name = user_col
    reasons: dict = {u: [] for u in report.index}
    terms = []

    def _check(col: str, values: pd.Series, bad: pd.Series, why) -> None:
        report[col] = values.reindex(report.index)
        for u in bad[bad].index:
            reasons[u].append(why(values[u]))

    for u, n in report["n_labels"].items():
        if n < min_labels:
            reasons[u].append(f"too few labels ({n} < {min_labels})")
    if ratings is not None and min_random_z is not None:
        rs = random_rater_scores(
            ratings,
            attributes=attributes,
            user_col=user_col,
            item_col=item_col,
            time_col=time_col,
            random_state=random_state,
        )
        _check(
            "random_z",
            rs["random_z"],
            rs["random_z"] < min_random_z,
            lambda z: f"ratings look random (z={z:.2f} < {min_random_z})",
        )
        ratio = rs["rmse_ratio"].reindex(report.index)
        ref = 1.0 - np.nanmedian(rs["rmse_ratio"]) if rs["rmse_ratio"].notna().any() else np.nan
        terms.append(((1.0 - ratio) / ref).clip(0, 1) if ref and ref > 0 else None)
    if comparisons is not None and max_cycle_fraction is not None:
        tv = transitivity_violations(
            comparisons,
            attributes=attributes,
            user_col=user_col,
            left_col=left_col,
            right_col=right_col,
            time_col=time_col,
        )
        f = tv["cycle_fraction"].where(tv["n_triads"] >= min_triads)
        _check(
            "cycle_fraction",
            f,
            f > max_cycle_fraction,
            lambda x: f"intransitive ({x:.2f} of triads are cycles > {max_cycle_fraction})",
        )
        terms.append((1.0 - 4.0 * report["cycle_fraction"]).clip(0, 1))
    if ratings is not None and comparisons is not None and min_consistency is not None:
        cs = rating_comparison_consistency(
            ratings,
            comparisons,
            attributes=attributes,
            user_col=user_col,
            item_col=item_col,
            left_col=left_col,
            right_col=right_col,
            time_col=time_col,
        )
        c = cs["consistency"]
        _check(
            "consistency",
            c,
            c < min_consistency,
            lambda x: f"comparisons contradict own ratings (consistency {x:.2f} < {min_consistency})",
        )
        terms.append((2.0 * report["consistency"] - 1.0).clip(0, 1))
    timed = [f[[user_col, time_col]] for _, f in frames if time_col in f.columns]
    if timed and max_fast_fraction is not None:
        sp_ = labeling_speed(
            pd.concat(timed, ignore_index=True),
            threshold_s=speed_threshold_s,
            flag_fraction=max_fast_fraction,
            user_col=user_col,
            time_col=time_col,
        )
        _check(
            "fast_fraction",
            sp_["fast_fraction"],
            sp_["flag_fast"],
            lambda x: f"too fast ({x:.0%} of intervals < {speed_threshold_s}s)",
        )
    reliability = pd.Series(1.0, index=report.index)
    for term in terms:
        if term is not None:
            reliability *= term.reindex(report.index).fillna(1.0)
    report["keep"] = [not reasons[u] for u in report.index]
    report["reliability"] = reliability.where(report["keep"], 0.0)
    report["reasons"] = ["; ".join(reasons[u]) for u in report.index]
    return report


def rater_weights(
    frame: pd.DataFrame,
    report: pd.DataFrame,
    *,
    scheme: str = "binary",
    user_col: str = "user_id",
    unknown: str = "error",
) -> np.ndarray:
    """Per-row sample weights for ``frame`` from a :func:`filter_raters` report.

    Parameters
    ----------
    frame : DataFrame
        The rows you are about to fit on (ratings or comparisons), with ``user_col``.
    report : DataFrame
        Output of :func:`filter_raters` (needs ``keep``; ``reliability`` for the soft scheme).
    scheme : {'binary', 'reliability'}, default='binary'
        ``'binary'``: 1 for kept users, 0 for dropped ones. ``'reliability'``: the report's
        ``reliability`` (0 for dropped users), the product of the available per-check terms
        ``2 * consistency - 1``, ``1 - 4 * cycle_fraction`` and ``(1 - rmse_ratio)`` relative
        to the median user, each clipped to [0, 1] (1 where a check had no data).
    user_col : str, default='user_id'
        Rater column of ``frame``.
    unknown : {'error', 'zero', 'one'}, default='error'
        What to do with users of ``frame`` missing from ``report``.

    Returns
    -------
    ndarray of shape (len(frame),)
        Float weights, aligned with ``frame``'s rows, for ``fit(..., sample_weight=w)`` or
        for filtering (``frame[w > 0]``).

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.raters import rater_weights
    >>> report = pd.DataFrame({"keep": [True, False], "reliability": [0.8, 0.0]},
    ...                       index=pd.Index([1, 2], name="user_id"))
    >>> df = pd.DataFrame({"user_id": [1, 2, 1]})
    >>> rater_weights(df, report).tolist()
    [1.0, 0.0, 1.0]
    """
    frame = check_frame(frame, "frame", [user_col])
    if scheme not in ("binary", "reliability"):
        raise ValueError(f"scheme must be 'binary' or 'reliability', got {scheme!r}.")
    col = "keep" if scheme == "binary" else "reliability"
    report = check_frame(report, "report", [col])
    if unknown not in ("error", "zero", "one"):
        raise ValueError(f"unknown must be 'error', 'zero' or 'one', got {unknown!r}.")
    w = frame[user_col].map(report[col].astype(float))
    missing = w.isna().to_numpy()
    if missing.any():
        if unknown == "error":
            who = pd.unique(frame[user_col][missing])[:5]
            raise ValueError(
                f"{missing.sum()} rows belong to users missing from the report (e.g. {list(who)}); "
                "pass unknown='zero' or 'one' to weight them."
            )
        w[missing] = 0.0 if unknown == "zero" else 1.0
    return w.to_numpy(dtype=float)
