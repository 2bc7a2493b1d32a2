"""The contact sheet of a ranked photo collection: one self-contained HTML page.

One row per group of near-duplicates, photos in rank order with their scores, the best of each
group marked with why it was chosen, each group and each other photo with how sure the grouping
is ("near-certain duplicate" or "similar, check", with the aligned detail similarity); unreadable
files listed with the reason at the end. Thumbnails are embedded as
``data:`` URIs and the style is inline, so the page needs no other file and no network. Every
file name and reason is HTML-escaped.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from skpercept.photos._grouping import CHECK, SURE, SURE_SIMILARITY

__all__ = ["contact_sheet_html"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
.summary { color: #555; margin: 0 0 1.2em; }
.group { background: #fff; border: 1px solid #ddd; border-radius: 6px; margin: 0 0 1em; padding: .6em .8em; }
.group h2 { font-size: 1em; margin: 0 0 .5em; }
.row { display: flex; gap: .6em; overflow-x: auto; padding-bottom: .3em; }
.photo { margin: 0; flex: 0 0 auto; width: 200px; border: 3px solid transparent; border-radius: 4px; }
.photo.best { border-color: #1a7f37; background: #eaf6ec; }
.photo img { display: block; max-width: 192px; max-height: 192px; margin: 4px auto; }
.photo .noimg { width: 192px; height: 120px; margin: 4px auto; background: #eee; }
figcaption { font-size: 12px; padding: 0 4px 4px; overflow-wrap: anywhere; }
.badge { background: #1a7f37; color: #fff; border-radius: 3px; padding: 0 4px; font-weight: 600; }
.score { font-variant-numeric: tabular-nums; color: #333; }
.bad { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6em .8em; }
.bad h2 { font-size: 1em; margin: 0; }
.bad li { margin: .2em 0; }
.reason { color: #a40e26; }
.why { color: #1a7f37; }
.sure, .check { border-radius: 3px; padding: 0 4px; font-size: 12px; white-space: nowrap; }
.sure { background: #ddf4ff; color: #0550ae; }
.check { background: #fff8c5; color: #7d4e00; font-weight: 600; }
.group.check-group { border-color: #d4a72c; }
"""


def _score_text(value) -> str:
    return "no score" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _text(value) -> str:
    """A table cell as text: '' for missing values."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _figure(row, has_thumbnails: bool) -> str:
    name = html.escape(str(row["path"]), quote=True)
    best = bool(row["best"])
    thumb = str(row["thumbnail"]) if has_thumbnails and isinstance(row["thumbnail"], str) else ""
    picture = (
        f'<img src="{html.escape(thumb, quote=True)}" alt="{name}">' if thumb else '<div class="noimg"></div>'
    )
    badge = '<span class="badge">&#9733; best</span> ' if best else ""
    score = _score_text(row["score"])
    note, confidence = "", _text(row.get("confidence"))
    if best and _text(row.get("why_best")):
        note = f'<br><span class="why">{html.escape(_text(row["why_best"]))}</span>'
    elif confidence:
        similarity = row.get("similarity_to_best")
        shown = f" {similarity:.2f}" if isinstance(similarity, float) and math.isfinite(similarity) else ""
        kind = "sure" if confidence == SURE else "check"
        note = (
            f'<br><span class="{kind}" title="aligned detail similarity to the best">'
            f"{html.escape(confidence)}{shown}</span>"
        )
    return (
        f'<figure class="photo{" best" if best else ""}" data-rank="{int(row["rank"])}" '
        f'data-score="{html.escape(score)}" data-confidence="{html.escape(confidence, quote=True)}">{picture}'
        f'<figcaption>{badge}#{int(row["rank"])} <span class="score">{score}</span>{note}<br>'
        f'<span class="name">{name}</span></figcaption></figure>'
    )


def contact_sheet_html(
    table: pd.DataFrame, *, title: str = "Photo collection", score_name: str = "score"
) -> str:
    """The page for a :func:`skpercept.photos.rank_photos` table.

    Structure (stable, for scripts and tests): ``section.group[data-group][data-confidence]`` per
    group holding ``figure.photo[data-rank][data-score][data-confidence]`` per photo in rank
    order, the best one also ``.best`` with its ``.why``, the others with a ``.sure`` or
    ``.check`` label; ``section.bad`` lists unreadable files (``li`` with a ``.reason``).

    Parameters
    ----------
    table : DataFrame
        Columns ``path``, ``group``, ``score``, ``rank``, ``best``, ``reason`` and optionally
        ``group_confidence``, ``confidence``, ``similarity_to_best``, ``why_best`` (see
        :data:`~skpercept.photos.RANKING_COLUMNS`) and ``thumbnail`` (data URIs).
    title : str, default='Photo collection'
    score_name : str, default='score'
        What the scores are (shown in the summary line).

    Returns
    -------
    page : str

    Examples
    --------
    >>> import pandas as pd
    >>> from skpercept.photos._contact_sheet import contact_sheet_html
    >>> table = pd.DataFrame({"path": ["a<1>.jpg", "b.jpg"], "group": [1, 1], "score": [0.9, 0.2],
    ...                       "rank": [1, 2], "best": [True, False], "reason": ["", ""]})
    >>> page = contact_sheet_html(table)
    >>> page.count('class="photo'), "a&lt;1&gt;.jpg" in page, "a<1>" in page
    (2, True, False)
    """
    readable = table[table["group"].notna()]
    bad = table[table["group"].isna()]
    has_thumbnails = "thumbnail" in table.columns
    sections = []
    for group, members in readable.groupby("group", sort=True):
        members = members.sort_values("rank")
        figures = "".join(_figure(row, has_thumbnails) for _, row in members.iterrows())
        count = f"{len(members)} photo{'s' if len(members) != 1 else ''}"
        sure = _text(members["group_confidence"].iloc[0]) if "group_confidence" in members else ""
        label = ""
        if sure:
            label = (
                f' &middot; <span class="{"sure" if sure == SURE else "check"}">{html.escape(sure)}</span>'
            )
        sections.append(
            f'<section class="group{" check-group" if sure == CHECK else ""}" id="group-{int(group)}" '
            f'data-group="{int(group)}" data-confidence="{html.escape(sure, quote=True)}">'
            f'<h2>Group {int(group)} &middot; {count}{label}</h2><div class="row">{figures}</div></section>'
        )
    if len(bad):
        items = "".join(
            f'<li><span class="name">{html.escape(str(r["path"]))}</span>: '
            f'<span class="reason">{html.escape(str(r["reason"]))}</span></li>'
            for _, r in bad.iterrows()
        )
        sections.append(
            f'<section class="bad"><h2>{len(bad)} file(s) could not be read</h2><ul>{items}</ul></section>'
        )
    n_groups = readable["group"].nunique()
    multi = int((readable.groupby("group").size() > 1).sum())
    checks = ""
    if "group_confidence" in readable:
        marked = readable.drop_duplicates("group")["group_confidence"]
        checks = (
            f": {int((marked == SURE).sum())} marked &ldquo;{SURE}&rdquo;, "
            f"{int((marked == CHECK).sum())} &ldquo;{CHECK}&rdquo;"
        )
    summary = (
        f"{len(readable)} photos in {n_groups} groups ({multi} with more than one photo{checks}); "
        f"{len(bad)} unreadable. Scores: {html.escape(score_name)}, higher is better; the best of "
        f"each group is marked with why. A photo marked &ldquo;{SURE}&rdquo; matches its group's best "
        f"in fine detail (aligned similarity at least {SURE_SIMILARITY}); one marked "
        f"&ldquo;{CHECK}&rdquo; was joined on weaker evidence: look before you let it go."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>"
        f'<p class="summary">{summary}</p>\n' + "\n".join(sections) + "\n</body></html>\n"
    )
