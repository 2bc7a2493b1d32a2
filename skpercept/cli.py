"""The ``skpercept`` command: ``demo``, ``fit``, ``evaluate``, ``predict``, ``compare`` and ``rank``.

``skpercept demo`` runs the main job on the shipped OMI faces, offline. ``fit`` / ``evaluate`` /
``predict`` do the same on your own data: a table (csv or xlsx) of ratings (columns ``image`` [+
``user_id``] + one column per attribute) or pairwise comparisons (``image_a``, ``image_b`` [+
``user_id``] + one column per attribute, 1 where ``image_a`` was preferred, 0 where ``image_b``
was, values between for shares of raters, empty = not judged), or a folder of the reference
labelling system's Excel tables (read by :func:`skpercept.datasets.load_perception_xlsx`, which
needs ``--one-means`` for comparisons). ``compare`` cross-validates several backbones and heads
on one table. With a user column, ``fit`` trains a per-person model; ``evaluate`` then reports
accuracy per person and ``predict --user ID`` predicts for one person.

A saved model is a plain scikit-learn ``Pipeline`` (``joblib.load``): image paths (or a pairs
table) in, predictions out. Its ``skpercept_info_`` dict records the task, the attribute
names, the rating levels, the people and any decision threshold, which ``evaluate`` and
``predict`` read. Only load model files you made or trust (joblib runs code from the file).

``predict`` writes every input column unchanged plus prediction columns that cannot pass for
labels: ``pred_<attribute>`` (and ``pred_<attribute>_expected``, ``p_<attribute>_<level>`` for a
classifier), ``p_<attribute>_a`` (P(image_a preferred)) for pairs, ``pred_<attribute>_score``
for single images scored by a pair model. Every output (model, predictions, report) is written
to a temporary file and renamed into place, so a failure or Ctrl-C never leaves half a file.
Errors in the input name the file, the row (as the spreadsheet numbers it: header = row 1) and
the column, and exit with status 2; ``--debug`` adds the traceback. Nothing is downloaded: a
backbone's weights must be on the machine (shipped, a local file, or an open_clip tag already in
open_clip's cache).

Run ``skpercept <command> --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept._cli_models import (
    AVERAGE_PERSON,
    MAX_CLASS_LEVELS,
    add_head_options,
    build_model,
    check_pair_labels,
    fit_model,
    image_columns,
    load_model,
    model_input,
    predict_table,
    tune_thresholds,
)
from skpercept._cli_tables import (
    CLIError,
    check_trained_range,
    describe_skipped,
    image_rows,
    infer_task,
    match_user_ids,
    pick_attributes,
    read_table,
    refuse_self_comparisons,
    resolve_images,
    rows_text,
    user_ids,
)
from skpercept._io import atomic_write

__all__ = ["CLIError", "build_parser", "main"]
_EMBEDDER_ROW = re.compile(r" \(row \d+(, column [^)]*)?\)$")
_REFERENCE_LEVELS = [1.0, 2.0, 3.0, 4.0]  # the reference schema's rating scale


def _log(args, message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- input --------------------------------------------------------------------------------------
def _load_input(args, task: str | None = None, *, model_task: bool = False, attributes=None):
    """The judgments with resolved image paths, the table as read, the task and (folders) attributes.

    ``args.table`` is a csv / xlsx table, or a folder of the reference schema's tables.
    """
    source = Path(args.table)
    if source.is_dir():
        from skpercept._cli_folder import load_folder

        table, task, found = load_folder(source, args, task, attributes, log=lambda m: _log(args, m))
        args.from_folder = True
        return table, table.copy(), task, found
    raw = read_table(args.table, getattr(args, "sheet", None), sep=args.sep, encoding=args.encoding)
    task = infer_task(raw, args.table, task, model_task=model_task)
    root = Path(args.image_root) if args.image_root else source.resolve().parent
    if not root.is_dir():
        raise CLIError(f"--image-root {root} is not a folder.")
    return resolve_images(raw, image_columns(task), root, args.table), raw, task, None


def _match_users(args, table: pd.DataFrame, info: dict) -> None:
    """Replace the user ids by the model's id form; warn (with counts) where they differ.

    ``--user ID`` (predict) makes every row that person's; a table without a user column is
    predicted for the average person, which is said.
    """
    if not info.get("users"):
        if getattr(args, "user", None) is not None:
            raise CLIError(f"--user {args.user}: this model was fitted without people (no user column).")
        return
    if getattr(args, "user", None) is not None:
        if "user_id" in table.columns:
            _log(args, f"--user {args.user}: the table's 'user_id' column is replaced by this person.")
        table["user_id"] = str(args.user)
    if "user_id" not in table.columns:
        _log(args, f"{args.table} has no 'user_id' column: predicting for the average person.")
        table["user_id"] = AVERAGE_PERSON
        return
    ids, kind = user_ids(table, args.table)
    if "user_id_kind" in info:  # models saved before ids were canonicalised take them as read
        table["user_id"] = ids
    if getattr(args, "user", None) is not None:
        if table["user_id"].iloc[0] not in set(info.get("user_ids", ())):
            _log(
                args,
                f"--user {args.user}: the model never saw this person; predicting for the average person.",
            )
        return
    locate = rows_text
    if getattr(args, "from_folder", False):  # the loaded judgments' rows are not the files' rows
        locate = lambda index: "judgment_id " + ", ".join(repr(j) for j in table.loc[index, "judgment_id"])  # noqa: E731
    for note in match_user_ids(ids, kind, info, args.table, locate):
        _log(args, f"warning: {note}")


@contextmanager
def _image_errors(args, table: pd.DataFrame, task: str) -> Iterator[None]:
    """An image that fails to load becomes an error naming the table's row and column."""
    from skpercept.embed import ImageLoadError

    try:
        yield
    except ImageLoadError as exc:
        rows, column = image_rows(table, image_columns(task), exc.source)
        if getattr(args, "from_folder", False) and rows:
            shown = ", ".join(repr(j) for j in table.loc[rows[:5], "judgment_id"])
            where = f" (judgment_id {shown}{' ...' if len(rows) > 5 else ''}, column {column!r})"
        else:
            where = f" {rows_text(rows)}, column {column!r}" if rows else ""
        # the embedder counts its own input's rows from 0; the table's rows are named instead
        reason = _EMBEDDER_ROW.sub("", exc.reason)
        raise CLIError(
            f"{args.table}{where}: cannot load image {exc.source}: {reason}. Replace the file or remove "
            "the row(s)."
        ) from exc


def _refuse_overwrite(target, option: str, *inputs) -> None:
    """An output that is one of the inputs would destroy it: refuse before any work is done."""
    target = Path(target)
    if target.is_dir():
        raise CLIError(f"{option} {target} is a folder; give a file name.")
    for source in inputs:
        if Path(source).exists() and target.resolve() == Path(source).resolve():
            raise CLIError(
                f"{option} {target} is also an input of this command; writing there would destroy it. "
                "Choose another file name."
            )


def _write(path, what: str, write, mode: str = "wb", **open_kwargs) -> None:
    """Write atomically: on any failure the previous file (if any) is kept whole."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, mode, **open_kwargs) as file:
            write(file)
    except OSError as exc:
        kept = "the previous file was kept unchanged" if path.exists() else "nothing was written"
        raise CLIError(f"cannot write the {what} {path}: {exc.strerror or exc}; {kept}.") from exc


def make_featurizer_from_args(args):
    """The image featurizer of ``--backbone`` / ``--pretrained`` and the info it is saved with."""
    from skpercept import presets

    try:
        sources = presets.parse_backbones(args.backbone, args.pretrained or ())
        custom = {name: src for name, src in sources.items() if src is not None}
        backbones = presets.make_backbones(
            list(sources),
            flip=not args.no_flip,
            cache_dir=_cache_dir(args),
            device=args.device,
            progress=not args.no_progress,
            **({"pretrained": custom} if custom else {}),
        )
        featurizer = presets.make_featurizer(backbones)
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(f"--backbone {args.backbone}: {exc}") from exc
    info = {"backbone": args.backbone}
    if custom:
        info["pretrained"] = custom
    configs = {}
    for name in sources:
        library, _, model = name.partition(":")
        if library == "open_clip" and model.lower().endswith(".json"):
            configs[Path(model).stem] = Path(model).expanduser().read_text()
    if configs:
        info["open_clip_configs"] = configs
    return featurizer, info


# -- commands -----------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    import joblib

    _refuse_overwrite(args.model, "--model", args.table)
    table, _, task, attributes = _load_input(args, args.task, attributes=args.attributes)
    if attributes is None:
        attributes, skipped = pick_attributes(table, args.table, args.attributes, exclude=[args.user_column])
        if skipped:
            _log(args, f"Columns not used as attributes: {describe_skipped(skipped)}.")
    elif task == "rating" and args.levels is None and args.head != "regressor":
        args.levels = _REFERENCE_LEVELS
    if task == "pairs":
        refuse_self_comparisons(table, args.table)
    users = args.user_column in table.columns
    info_users = {}
    if users:
        table = table.rename(columns={args.user_column: "user_id"})
        ids, kind = user_ids(table, args.table)
        table["user_id"] = ids  # canonical text, so that 12, 12.0 and '12' are one person
        judged = table[attributes].notna().sum(axis=1)
        counts = judged.groupby(ids).sum().astype(int)
        info_users = {
            "user_id_kind": kind,
            "user_ids": sorted(set(ids)),
            "user_counts": {str(k): int(v) for k, v in counts.items()},
        }
    featurizer, info_backbone = make_featurizer_from_args(args)
    model, info, why = build_model(task, table, attributes, args, featurizer, users)
    info.update(attributes=attributes, **info_backbone, **info_users)
    personal = " (per-person deviations on a shared model)" if info.get("personal") else ""
    _log(
        args,
        f"Fitting a {task} model on {len(table)} rows of {args.table} "
        f"(attributes: {', '.join(attributes)}; user context: {'yes' + personal if users else 'no'}).\n"
        f"Head: {why}.",
    )
    start = time.perf_counter()
    y = table[attributes].to_numpy(np.float64)
    y = y if len(attributes) > 1 else y[:, 0]
    X = model_input(table, info, task)
    with _image_errors(args, table, task):
        if args.threshold_for:
            info.update(
                tune_thresholds(
                    model, X, y, info, args.threshold_for, args.folds, args.seed, lambda m: _log(args, m)
                )
            )
            for attribute, value in info["thresholds"].items():
                _log(args, f"{attribute}: decision threshold {value:.3f} for {args.threshold_for}.")
        fit_model(model, X, y, info)
    model.skpercept_info_ = info
    _write(args.model, "model", lambda file: joblib.dump(model, file))
    _log(args, f"Saved {args.model} ({time.perf_counter() - start:.1f} s).")
    return 0


def cmd_predict(args) -> int:
    _refuse_overwrite(args.output, "--output", args.table, args.model)
    model, info = load_model(args.model)
    source_is_folder = Path(args.table).is_dir()
    table, raw, task, _ = _load_input(args, info["task"] if source_is_folder else None)
    _match_users(args, table, info)
    with _image_errors(args, table, task):
        predictions = predict_table(model, info, table, task)
    clash = [c for c in predictions.columns if c in raw.columns]
    if clash:
        raise CLIError(
            f"{args.table} already has column(s) {clash}, which predict writes; rename them (or predict "
            "from the table without them)."
        )
    if getattr(args, "user", None) is not None:
        raw = raw.assign(user_id=table["user_id"])
    result = pd.concat([raw, predictions], axis=1)  # every input column is kept, as read
    _write(args.output, "predictions", lambda f: result.to_csv(f, index=False), "w", newline="")
    _log(args, f"Wrote {len(result)} predictions to {args.output}.")
    return 0


def cmd_evaluate(args) -> int:
    from skpercept._cli_evaluate import classification_reports, overall_metrics, per_person
    from skpercept.report import markdown_table, write_report

    model, info = load_model(args.model)
    table, _, task, _ = _load_input(args, info["task"], model_task=True, attributes=info["attributes"])
    attributes, _ = pick_attributes(table, args.table, info["attributes"])
    if task == "pairs":
        refuse_self_comparisons(table, args.table)
        check_pair_labels(table, attributes, args.table)
    check_trained_range(table, attributes, info, args.table)
    has_people = "user_id" in table.columns
    _match_users(args, table, info)
    with _image_errors(args, table, task):
        pred = predict_table(model, info, table, task)
    frame, curves, scatter = overall_metrics(table, pred, attributes, info, task)
    print(markdown_table(frame))
    output = Path(args.output) if args.output else None
    echo = lambda message: print(message, flush=True)  # noqa: E731 - results go to stdout
    try:
        sections = classification_reports(table, pred, attributes, info, output, log=echo)
        if info.get("users") and has_people:
            sections += per_person(table, pred, attributes, info, task, output, log=echo)
        if output is not None:
            path = write_report(
                output,
                tables={"Evaluation": frame},
                title="skpercept evaluation",
                intro=f"Model `{args.model}` ({info['task']}) on `{args.table}` ({len(table)} rows).",
                scatter=scatter or None,
                calibration={"Calibration": curves} if curves else None,
                scatter_ylabel="predicted (mean per image)",
                sections=sections,
            )
            _log(args, f"Report: {path}")
    except OSError as exc:
        raise CLIError(
            f"cannot write the report to {args.output}: {exc.strerror or exc}; files already there "
            "were kept whole."
        ) from exc
    return 0


# -- demo ---------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    """Cross-validate and fit on the shipped OMI faces; print, save models and a report."""
    from skpercept.demo import run_demo

    run_demo(
        args.output,
        attributes=args.attributes,
        folds=2 if args.quick and args.folds == 5 else args.folds,
        seed=args.seed,
        device=args.device,
        dlib=not args.no_dlib,
        flip=not args.no_flip,
        quick=args.quick,
        cache_dir=_cache_dir(args),
        progress=not args.no_progress,
        log=lambda message: _log(args, message),
    )
    return 0


def _cache_dir(args):
    from skpercept.presets import default_cache_dir

    if getattr(args, "no_cache", False):
        return None
    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


# -- parser -------------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, *, table: bool = True) -> None:
    if table:
        p.add_argument(
            "table",
            help="csv / tsv / xlsx table (first sheet unless --sheet), or a folder of the reference "
            "system's Excel tables (big_label.xlsx, big_compare_label.xlsx, big_data.xlsx, big_compares.xlsx)",
        )
        p.add_argument("--sheet", help="Excel sheet name")
        p.add_argument(
            "--image-root",
            help="folder that relative image paths are relative to (default: the table's folder)",
        )
        p.add_argument("--sep", help="csv column separator (default ',' for .csv, tab for .tsv)")
        p.add_argument("--encoding", default="utf-8", help="csv text encoding (default utf-8)")
        _folder_options(p)
    p.add_argument(
        "--cache-dir", help="embedding cache folder (default: ~/.cache/skpercept or $SKPERCEPT_CACHE_DIR)"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback for input errors too (to report a bug)"
    )


def _folder_options(p: argparse.ArgumentParser) -> None:
    from skpercept._cli_folder import TABLE_OPTIONS

    group = p.add_argument_group("a folder of the reference system's Excel tables")
    group.add_argument(
        "--one-means",
        choices=["first", "second"],
        help="required to read comparisons: what the value 1 says (first = the pair's first image, im1, "
        "was chosen); never guessed",
    )
    for kind, (option, default) in TABLE_OPTIONS.items():
        group.add_argument(option, help=f"file name of the {kind} table in the folder (default {default})")


def _backbone_options(p: argparse.ArgumentParser, single: bool = True) -> None:
    if single:  # compare takes a list of them instead
        p.add_argument(
            "--backbone",
            default="lite0",
            help="image features: lite0 or lite2 (shipped EfficientNet-Lite0 / -Lite2), dlib (face "
            "descriptor) or landmarks (face geometry; both need skpercept[face]), timm:<model> or "
            "open_clip:<model> (or open_clip:<config.json>), several joined by '+' (e.g. "
            "lite0+dlib+landmarks); default lite0",
        )
    p.add_argument(
        "--pretrained",
        action="append",
        metavar="TAG_OR_FILE",
        help="weights of each timm:/open_clip: backbone, in order (repeat the option for several): a local "
        "weights file, an open_clip tag already downloaded (e.g. openai), or 'random'. Nothing is downloaded.",
    )
    p.add_argument(
        "--no-flip", action="store_true", help="no flip averaging of the features (dlib never flips)"
    )


def build_parser() -> argparse.ArgumentParser:
    from skpercept.demo import DEFAULT_ATTRIBUTES

    parser = argparse.ArgumentParser(
        prog="skpercept",
        description="Learn how people perceive images: `skpercept demo` runs the whole job on the shipped "
        "OMI faces; fit / evaluate / predict / compare do it on your own csv or xlsx tables, or on a folder "
        "of the reference labelling system's Excel tables.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="cross-validate and fit models on the shipped OMI faces (offline)")
    _common(p, table=False)
    p.add_argument("--output", default="skpercept-demo", help="output folder (default ./skpercept-demo)")
    p.add_argument("--attributes", nargs="+", default=list(DEFAULT_ATTRIBUTES), help="OMI attributes")
    p.add_argument("--folds", type=int, default=5, help="image-disjoint folds (default 5)")
    p.add_argument("--no-dlib", action="store_true", help="skip dlib's face descriptor and landmarks")
    p.add_argument(
        "--no-flip",
        action="store_true",
        help="no flip averaging of lite0 features (halves lite0's embedding time)",
    )
    p.add_argument("--quick", action="store_true", help="tiny run for smoke tests: few faces, tiny heads")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "fit", help="fit a model on your table (or reference-schema folder) of ratings or pairs"
    )
    _common(p)
    p.add_argument("--model", required=True, help="where to save the fitted model (.joblib)")
    p.add_argument(
        "--task",
        choices=["rating", "pairs"],
        help="default: pairs if image_a/image_b columns exist (a folder: its comparisons, if any)",
    )
    p.add_argument(
        "--attributes",
        nargs="+",
        help="attribute columns (default: every other numeric column; index, id, language, time and "
        "prediction columns are skipped and listed)",
    )
    p.add_argument(
        "--head",
        choices=["classifier", "regressor"],
        help=f"rating head (default: classifier for whole-number ratings on at most {MAX_CLASS_LEVELS} "
        "levels, else regressor; the choice and why are printed)",
    )
    p.add_argument(
        "--levels",
        nargs="+",
        type=float,
        help="the rating scale, e.g. --levels 1 2 3 4; a rating outside it is an error "
        "(default: the levels found, which must have no gaps; 1 2 3 4 for a reference-schema folder)",
    )
    p.add_argument(
        "--user-column",
        default="user_id",
        help="per-person column, used if present: the model learns each person's taste",
    )
    _backbone_options(p)
    add_head_options(p)
    p.add_argument(
        "--class-weight",
        choices=["balanced"],
        help="classifier: weight classes inversely to their frequency (a rare 'delete' or 'keep')",
    )
    p.add_argument(
        "--threshold-for",
        metavar="recall=R|precision=P|f1",
        help="two-level ratings: choose the decision threshold on P(higher level) that reaches this "
        "recall / precision of the higher level (or the best F1), on out-of-fold predictions of "
        "image-disjoint training folds; saved with the model and used by predict and evaluate",
    )
    p.add_argument(
        "--folds", type=int, default=5, help="image-disjoint folds for --threshold-for (default 5)"
    )
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("evaluate", help="score a saved model on a labelled table (per person with people)")
    _common(p)
    p.add_argument("--model", required=True)
    p.add_argument("--output", help="folder for a report (markdown + PNG plots + per-person CSV)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="write predictions for a table of images or pairs")
    _common(p)
    p.add_argument("--model", required=True)
    p.add_argument("--output", default="predictions.csv", help="csv to write (default predictions.csv)")
    p.add_argument(
        "--user",
        metavar="ID",
        help="predict for this person (a model fitted with people; an id it never saw gets the average person)",
    )
    p.set_defaults(func=cmd_predict)

    from skpercept._cli_compare import add_compare_parser

    add_compare_parser(sub, _common, _backbone_options)

    from skpercept._cli_rank import add_rank_parser

    add_rank_parser(sub, _common)
    return parser


def _user_error(exc: BaseException) -> str | None:
    """The one-line message for an error in the user's input or setup, or None for a bug."""
    from skpercept.embed import ImageLoadError

    if isinstance(exc, (CLIError, ImageLoadError)):
        return str(exc)
    if isinstance(exc, ImportError) and "pip install" in str(exc):  # a missing optional extra
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skpercept`` console script; returns the exit status.

    Errors in the input (a file, row, column, id or model file) print one line naming it and
    return 2; ``--debug`` adds the traceback. Anything else is a bug and keeps its traceback.
    Ctrl-C prints one line and returns 130; outputs are written atomically, so none is left
    half-written. The command never downloads: the Hugging Face hub, where open_clip keeps
    some tags' weights, is read from its local cache only (unless ``HF_HUB_OFFLINE`` is set).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"skpercept {args.command}: interrupted (Ctrl-C).", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        if args.debug:
            traceback.print_exception(exc)
        print(f"skpercept {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
