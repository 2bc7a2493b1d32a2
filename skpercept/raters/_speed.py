"""Time between consecutive labels of each user."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skpercept.raters._frames import check_frame, user_codes


def label_times(frame: pd.DataFrame, time_col: str, name: str) -> np.ndarray:
    """Seconds (float) from ``time_col``: numbers are seconds, anything else is parsed as dates."""
    col = frame[time_col]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        t = col.to_numpy(dtype=float)
    else:
        try:
            parsed = pd.to_datetime(col, errors="raise")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} column {time_col!r} cannot be read as times: {exc}") from exc
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        t = (parsed - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=float)
    if np.isnan(t).any():
        raise ValueError(f"{name} column {time_col!r} is missing at row {frame.index[np.isnan(t)][0]!r}.")
    return t


def labeling_speed(
    frame: pd.DataFrame,
    *,
    threshold_s: float = 2.0,
    flag_fraction: float = 0.5,
    max_gap_s: float | None = 1800.0,
    user_col: str = "user_id",
    time_col: str = "insert_time",
) -> pd.DataFrame:
    """Per-user distribution of the time between consecutive labels, flagging rushed users.

    Rows are sorted by time within each user; each row is one label event (a wide row that
    rates several attributes at once counts once). Gaps longer than ``max_gap_s`` are breaks
    between sessions and are left out of the statistics. Identical timestamps give 0-second
    intervals and count as fast.

    Parameters
    ----------
    frame : DataFrame
        Ratings or comparisons with ``user_col`` and ``time_col`` (datetimes, date strings or
        numbers in seconds).
    threshold_s : float, default=2.0
        An interval shorter than this is implausibly fast for looking at an image.
    flag_fraction : float, default=0.5
        Flag a user when more than this fraction of their intervals is fast.
    max_gap_s : float or None, default=1800
        Session break; ``None`` keeps every interval.
    user_col, time_col : str
        Column names.

    Returns
    -------
    DataFrame
        Indexed by user: ``n_labels``, ``n_intervals`` (within sessions), ``n_sessions``,
        ``median_s``, ``p10_s``, ``mean_s``, ``fast_fraction`` and ``flag_fast``. A user with fewer
        than two labels has NaN statistics and is not flagged.

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.raters import labeling_speed
    >>> df = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2],
    ...                    "insert_time": [0, 0.5, 1.0, 0, 10, 25]})
    >>> labeling_speed(df)[["median_s", "flag_fast"]]  # doctest: +NORMALIZE_WHITESPACE
             median_s  flag_fast
    user_id
    1             0.5       True
    2            12.5      False
    """
    frame = check_frame(frame, "frame", [user_col, time_col])
    if threshold_s < 0 or not 0 <= flag_fraction <= 1:
        raise ValueError("threshold_s must be >= 0 and flag_fraction in [0, 1].")
    codes, users = user_codes(frame, user_col, "frame")
    t = label_times(frame, time_col, "frame")
    order = np.lexsort((t, codes))
    codes, t = codes[order], t[order]
    same_user = codes[1:] == codes[:-1]
    dt = np.diff(t)[same_user]
    du = codes[1:][same_user]
    in_session = np.ones(len(dt), bool) if max_gap_s is None else dt <= max_gap_s
    n_users = len(users)
    n_labels = np.bincount(codes, minlength=n_users)
    n_breaks = np.bincount(du[~in_session], minlength=n_users)
    dt, du = dt[in_session], du[in_session]
    intervals = pd.Series(dt).groupby(du)
    stats = pd.DataFrame(
        {
            "median_s": intervals.median(),
            "p10_s": intervals.quantile(0.1),
            "mean_s": intervals.mean(),
            "fast_fraction": pd.Series(dt < threshold_s).groupby(du).mean(),
        }
    ).reindex(np.arange(n_users))
    out = pd.DataFrame(
        {
            "n_labels": n_labels,
            "n_intervals": np.bincount(du, minlength=n_users),
            "n_sessions": np.where(n_labels > 0, n_breaks + 1, 0),
        },
        index=users,
    )
    for col in stats.columns:
        out[col] = stats[col].to_numpy(dtype=float)
    out["flag_fast"] = (out["fast_fraction"] > flag_fraction).fillna(False).astype(bool)
    return out
