"""``skpercept rank``: group a folder's near-duplicate photos and bursts, keep the best of each."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from skpercept.cli._common import Runtime, add_runtime_options, finite_number, log
from skpercept.cli._outputs import check_outputs, rank_outputs, written_together
from skpercept.cli._tables import CLIError
from skpercept.photos import (
    BURST_DISTANCE,
    CHECK,
    DEFAULT_MIN_SIMILARITY,
    SURE,
    SURE_SIMILARITY,
    find_images,
    load_photo_scorer,
    rank_photos,
    write_collection,
)

_BASELINE = "quality baseline (sharpness, noise, JPEG blocking, contrast, exposure)"


@dataclass(frozen=True)
class RankOptions:
    """``skpercept rank``'s options as typed values."""

    folder: Path
    runtime: Runtime
    output: Path
    model: Path | None
    attribute: str | None
    min_similarity: float
    linkage: str
    burst_seconds: float | None

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> RankOptions:
        return cls(
            folder=Path(options.folder),
            runtime=Runtime.from_options(options),
            output=Path(options.output),
            model=Path(options.model) if options.model else None,
            attribute=options.attribute,
            min_similarity=options.min_similarity,
            linkage=options.linkage,
            burst_seconds=None if options.no_exif else options.burst_seconds,
        )


def rank(options: RankOptions) -> int:
    """Group a folder's photos, score them, keep the best of each group: a CSV and a contact sheet."""
    folder = options.folder
    if not folder.is_dir():
        raise CLIError(f"{folder} is not a folder.")
    inputs = [(path, "a photo of the folder") for path in find_images(folder)]
    if options.model is not None:
        inputs.append((options.model, "the model"))
    check_outputs(rank_outputs(options.output), inputs)
    scorer, score_name, short_name = None, _BASELINE, "quality baseline"
    if options.model is not None:
        try:
            scorer = load_photo_scorer(options.model, options.attribute)
        except ValueError as exc:
            raise CLIError(f"--model {options.model}: {exc}") from exc
        score_name = f"model {options.model.name}" + (f" ({options.attribute})" if options.attribute else "")
        short_name = "model score"
    try:
        table = rank_photos(
            folder,
            scorer=scorer,
            min_similarity=options.min_similarity,
            burst_seconds=options.burst_seconds,
            linkage=options.linkage,
            cache_dir=options.runtime.cache_dir,
            device=options.runtime.device,
            progress=options.runtime.progress,
            thumbnails=True,
            score_name=short_name,
        )
    except ValueError as exc:
        if "no image files" not in str(exc):
            raise
        raise CLIError(f"{folder}: {exc}") from exc
    with written_together(options.output, "ranking"):
        paths = write_collection(
            table, options.output, title=f"skpercept rank: {folder}", score_name=score_name
        )
    readable = table["group"].notna()
    shared = table[readable & (table["group_confidence"] != "")].drop_duplicates("group")
    sure = int((shared["group_confidence"] == SURE).sum())
    log(
        f"{int(readable.sum())} photos in {table['group'].nunique()} groups ({len(shared)} with more than one photo: "
        f"{sure} marked '{SURE}', {len(shared) - sure} '{CHECK}'); {int((~readable).sum())} unreadable.\n"
        f"Wrote {paths['csv']} and {paths['html']}."
    )
    for _, row in table[~readable].iterrows():
        log(f"unreadable: {row['path']}: {row['reason']}")
    return 0


def add_parser(subparsers) -> None:
    """Add ``rank`` to the command's subparsers."""
    p = subparsers.add_parser(
        "rank",
        help="group near-duplicate photos and bursts in a folder and pick the best of each group",
        description="Group the versions of one shot and the bursts among the images under FOLDER (photos "
        "join only when their aligned fine detail matches, or when EXIF says they were taken within "
        "--burst-seconds), score each photo (a fitted model, or a sharpness/noise/exposure baseline) and "
        "mark the best of each group, with why. Each group and each non-best photo is marked "
        f"'{SURE}' or '{CHECK}'. Writes OUTPUT/ranking.csv (path, group, group_confidence, score, rank, "
        "best, confidence, similarity_to_best, why_best, reason) and OUTPUT/contact_sheet.html "
        "(self-contained, opens offline). Unreadable files are listed with the reason, never dropped.",
    )
    p.add_argument("folder", help="folder of photos (searched recursively)")
    add_runtime_options(p)
    p.add_argument("--output", default="skpercept-rank", help="output folder (default ./skpercept-rank)")
    p.add_argument(
        "--model",
        help="fitted model (.skops or .joblib) to score photos: a pairs model from `skpercept fit` (a Pipeline "
        "ending in PairwiseRanker) or a rating model without user context (default: the quality baseline)",
    )
    p.add_argument("--attribute", help="which attribute of a multi-attribute model scores the photos")
    p.add_argument(
        "--min-similarity",
        type=finite_number(-1, 0.999, above=True),
        default=DEFAULT_MIN_SIMILARITY,
        help=f"aligned fine-detail similarity two photos must exceed to join (default {DEFAULT_MIN_SIMILARITY}; "
        f"from {SURE_SIMILARITY} up a pair is a near-certain duplicate; smaller joins more)",
    )
    p.add_argument(
        "--linkage",
        choices=("complete", "average", "single"),
        default="complete",
        help="complete (default): every two photos of a group match; average: they match on average; "
        "single: any chain of matching photos is one group",
    )
    p.add_argument(
        "--burst-seconds",
        type=finite_number(0),
        default=2.0,
        help="photos whose EXIF capture times are at most this far apart are one burst: they join when the "
        f"scene matches (grouping vectors within cosine distance {BURST_DISTANCE}) even if their detail does not "
        "(default 2)",
    )
    p.add_argument("--no-exif", action="store_true", help="ignore EXIF capture times")
    p.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    """Run ``rank`` with the parsed command line."""
    return rank(RankOptions.from_options(options))
