"""``skpercept rank``: group a folder's near-duplicate photos and bursts, keep the best of each."""

from __future__ import annotations

from pathlib import Path

from skpercept._cli_tables import CLIError


def cmd_rank(args) -> int:
    """Group a folder's photos, score them, keep the best of each group: a CSV and a contact sheet."""
    from skpercept import cli
    from skpercept.photos import load_photo_scorer, rank_photos, write_collection

    folder = Path(args.folder)
    if not folder.is_dir():
        raise CLIError(f"{folder} is not a folder.")
    scorer, score_name = None, "quality baseline (sharpness, noise, JPEG blocking, contrast, exposure)"
    if args.model:
        try:
            scorer = load_photo_scorer(args.model, args.attribute)
        except ValueError as exc:
            raise CLIError(f"--model {args.model}: {exc}") from exc
        score_name = f"model {Path(args.model).name}" + (f" ({args.attribute})" if args.attribute else "")
    try:
        table = rank_photos(
            folder,
            scorer=scorer,
            threshold=args.threshold,
            burst_seconds=None if args.no_exif else args.burst_seconds,
            linkage=args.linkage,
            cache_dir=cli._cache_dir(args),
            device=args.device,
            progress=not args.no_progress,
            thumbnails=True,
        )
    except ValueError as exc:
        if "no image files" not in str(exc):
            raise
        raise CLIError(f"{folder}: {exc}") from exc
    try:
        paths = write_collection(table, args.output, title=f"skpercept rank: {folder}", score_name=score_name)
    except OSError as exc:
        kept = "files already there were kept whole"
        raise CLIError(f"cannot write to {args.output}: {exc.strerror or exc}; {kept}.") from exc
    readable = table["group"].notna()
    multi = int((table[readable].groupby("group").size() > 1).sum())
    cli._log(
        args,
        f"{int(readable.sum())} photos in {table['group'].nunique()} groups ({multi} with more than one photo); "
        f"{int((~readable).sum())} unreadable.\nWrote {paths['csv']} and {paths['html']}.",
    )
    for _, row in table[~readable].iterrows():
        cli._log(args, f"unreadable: {row['path']}: {row['reason']}")
    return 0


def add_rank_parser(sub, common) -> None:
    from skpercept.photos import BURST_FACTOR, DEFAULT_THRESHOLD

    p = sub.add_parser(
        "rank",
        help="group near-duplicate photos and bursts in a folder and pick the best of each group",
        description="Embed every image under FOLDER, group near-duplicates and bursts, score each photo "
        "(a fitted model, or a sharpness/noise/exposure baseline) and mark the best of each group. "
        "Writes OUTPUT/ranking.csv (path, group, score, rank, best, reason) and OUTPUT/contact_sheet.html "
        "(self-contained, opens offline). Unreadable files are listed with the reason, never dropped.",
    )
    p.add_argument("folder", help="folder of photos (searched recursively)")
    common(p, table=False)
    p.add_argument("--output", default="skpercept-rank", help="output folder (default ./skpercept-rank)")
    p.add_argument(
        "--model",
        help="fitted model (.joblib) to score photos: a pairs model from `skpercept fit` (a Pipeline "
        "ending in PairwiseRanker) or a rating model without user context (default: the quality baseline)",
    )
    p.add_argument("--attribute", help="which attribute of a multi-attribute model scores the photos")
    p.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"cosine distance below which photos group (default {DEFAULT_THRESHOLD}; larger merges more)",
    )
    p.add_argument(
        "--linkage",
        choices=("complete", "average", "single"),
        default="complete",
        help="complete (default): every two photos of a group are within --threshold; average: their "
        "mean distance is; single: any chain of photos is",
    )
    p.add_argument(
        "--burst-seconds",
        type=float,
        default=2.0,
        help=f"photos whose EXIF capture times are at most this far apart count as {1 / BURST_FACTOR:g}x closer "
        "(default 2)",
    )
    p.add_argument("--no-exif", action="store_true", help="ignore EXIF capture times")
    p.set_defaults(func=cmd_rank)
