"""The ``skpercept`` command: ``demo``, ``fit``, ``evaluate`` and ``predict``.

``skpercept demo`` runs the main job on the shipped OMI faces, offline. ``fit`` / ``evaluate`` /
``predict`` do the same on your own tables (csv or xlsx) of ratings (columns ``image`` [+
``user_id``] + one column per attribute) or pairwise comparisons (``image_a``, ``image_b`` [+
``user_id``] + one column per attribute, 1 where ``image_a`` was preferred, 0 where ``image_b``
was, values between for shares of raters, empty = not judged).

A saved model is a plain scikit-learn ``Pipeline`` (``joblib.load``): image paths (or a pairs
table) in, predictions out. Its ``skpercept_info_`` dict records the task, the attribute
names and the rating levels, which ``evaluate`` and ``predict`` read. Only load model files
you made or trust (joblib runs code from the file).

``predict`` writes every input column unchanged plus prediction columns that cannot pass for
labels: ``pred_<attribute>`` (and ``pred_<attribute>_expected``, ``p_<attribute>_<level>`` for a
classifier), ``p_<attribute>_a`` (P(image_a preferred)) for pairs, ``pred_<attribute>_score``
for single images scored by a pair model. Every output (model, predictions, report) is written
to a temporary file and renamed into place, so a failure or Ctrl-C never leaves half a file.
Errors in the input name the file, the row (as the spreadsheet numbers it: header = row 1) and
the column, and exit with status 2; ``--debug`` adds the traceback.

Run ``skpercept <command> --help`` for the options.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept._cli_tables import (
    PAIR_COLUMNS,
    CLIError,
    check_trained_range,
    choose_rating_head,
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
_MAX_CLASS_LEVELS = 10
_EMBEDDER_ROW = re.compile(r" \(row \d+(, column [^)]*)?\)$")
# First bytes of the files joblib writes: a pickle (protocol >= 2) or one of its compressors.
_JOBLIB_MAGIC = (b"\x80", b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd")


def _log(args, message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- input --------------------------------------------------------------------------------------
def _load_user_table(args, task: str | None = None, *, model_task: bool = False):
    """The table with resolved image paths, the table as read, and the task."""
    raw = read_table(args.table, getattr(args, "sheet", None), sep=args.sep, encoding=args.encoding)
    task = infer_task(raw, args.table, task, model_task=model_task)
    root = Path(args.image_root) if args.image_root else Path(args.table).resolve().parent
    if not root.is_dir():
        raise CLIError(f"--image-root {root} is not a folder.")
    return resolve_images(raw, _image_columns(task), root, args.table), raw, task


def _image_columns(task: str) -> list[str]:
    return list(PAIR_COLUMNS) if task == "pairs" else ["image"]


def _match_users(args, table: pd.DataFrame, info: dict) -> None:
    """Replace the user ids by the model's id form; warn (with counts) where they differ."""
    if not info.get("users"):
        return
    if "user_id" not in table.columns:
        raise CLIError(f"{args.table}: this model uses a 'user_id' column, which the table lacks.")
    ids, kind = user_ids(table, args.table)
    if "user_id_kind" in info:  # models saved before ids were canonicalised take them as read
        table["user_id"] = ids
    for note in match_user_ids(ids, kind, info, args.table):
        _log(args, f"warning: {note}")


@contextmanager
def _image_errors(table: pd.DataFrame, task: str, path) -> Iterator[None]:
    """An image that fails to load becomes an error naming the table's row and column."""
    from skpercept.embed import ImageLoadError

    try:
        yield
    except ImageLoadError as exc:
        rows, column = image_rows(table, _image_columns(task), exc.source)
        where = f" {rows_text(rows)}, column {column!r}" if rows else ""
        # the embedder counts its own input's rows from 0; the table's rows are named instead
        reason = _EMBEDDER_ROW.sub("", exc.reason)
        raise CLIError(
            f"{path}{where}: cannot load image {exc.source}: {reason}. Replace the file or remove the row(s)."
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


# -- models -------------------------------------------------------------------------------------
def _check_pair_labels(table: pd.DataFrame, attributes: Sequence[str], path) -> None:
    for column in attributes:
        values = table[column]
        bad = (values.notna() & ((values < 0) | (values > 1))).to_numpy()
        if bad.any():
            found = sorted(set(values[bad].tolist()))[:5]
            raise CLIError(
                f"{path}: pair labels must be 1 (image_a preferred), 0 (image_b) or a share in "
                f"between; column {column!r} has {found} at {rows_text(table.index[bad])}. If your "
                "table says 1/2 for first/second image, convert it first (e.g. 2 - value when 1 means "
                "image_a) — skpercept does not guess which way round it is."
            )


def build_model(task: str, table: pd.DataFrame, attributes: Sequence[str], args, featurizer, users: bool):
    """The unfitted pipeline for a user table, the info dict saved with it, and why this head."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from skpercept.pairs import PairFeatures
    from skpercept.presets import HeadSettings, make_head
    from skpercept.users import UserEncoder

    settings = HeadSettings(seed=args.seed, device=args.device)
    if args.epochs:
        settings.max_epochs = args.epochs
    info = {"task": task, "users": users}
    if task == "pairs":
        if args.head or args.levels:
            raise CLIError(f"{args.table}: --head and --levels are for rating tables; this one holds pairs.")
        _check_pair_labels(table, attributes, args.table)
        pairs = PairFeatures(
            item_transformer=featurizer, context_transformer=UserEncoder() if users else None
        )
        pipeline = Pipeline([("pairs", pairs), ("head", make_head("ranker", settings))])
        return pipeline, info, "ranker (the table holds pairwise comparisons)"
    head_kind, levels, reason = choose_rating_head(
        table, attributes, args.table, args.head, args.levels, _MAX_CLASS_LEVELS
    )
    head = make_head(head_kind, settings)
    if head_kind == "classifier":
        head.set_params(classes=levels)
        info["levels"] = levels.tolist()
    else:
        y = table[list(attributes)].to_numpy(np.float64)
        low, high = (levels[0], levels[-1]) if levels is not None else (np.nanmin(y), np.nanmax(y))
        info["range"] = [float(low), float(high)]
    info["head"] = head_kind
    features = featurizer
    if users:
        features = ColumnTransformer([("image", featurizer, "image"), ("user", UserEncoder(), ["user_id"])])
    return Pipeline([("features", features), ("head", head)]), info, f"{head_kind} ({reason})"


def _model_input(table: pd.DataFrame, info: dict, task: str) -> pd.DataFrame | pd.Series:
    if task == "pairs":
        return table[list(PAIR_COLUMNS) + (["user_id"] if info["users"] else [])]
    if info["users"]:
        return table[["image", "user_id"]]
    return table["image"]


def cmd_fit(args) -> int:
    import joblib

    from skpercept.presets import make_backbones, make_featurizer

    _refuse_overwrite(args.model, "--model", args.table)
    table, _, task = _load_user_table(args, args.task)
    attributes, skipped = pick_attributes(table, args.table, args.attributes, exclude=[args.user_column])
    if skipped:
        _log(args, f"Columns not used as attributes: {describe_skipped(skipped)}.")
    if task == "pairs":
        refuse_self_comparisons(table, args.table)
    users = args.user_column in table.columns
    info_users = {}
    if users:
        table = table.rename(columns={args.user_column: "user_id"})
        ids, kind = user_ids(table, args.table)
        table["user_id"] = ids  # canonical text, so that 12, 12.0 and '12' are one person
        info_users = {"user_id_kind": kind, "user_ids": sorted(set(ids))}
    backbones = make_backbones(
        args.backbone.split("+"),
        flip=not args.no_flip,
        cache_dir=_cache_dir(args),
        device=args.device,
        progress=not args.no_progress,
    )
    model, info, why = build_model(task, table, attributes, args, make_featurizer(backbones), users)
    info.update(attributes=attributes, backbone=args.backbone, **info_users)
    _log(
        args,
        f"Fitting a {task} model on {len(table)} rows of {args.table} "
        f"(attributes: {', '.join(attributes)}; user context: {'yes' if users else 'no'}).\n"
        f"Head: {why}.",
    )
    start = time.perf_counter()
    y = table[attributes].to_numpy(np.float64)
    with _image_errors(table, task, args.table):
        model.fit(_model_input(table, info, task), y if len(attributes) > 1 else y[:, 0])
    model.skpercept_info_ = info
    _write(args.model, "model", lambda file: joblib.dump(model, file))
    _log(args, f"Saved {args.model} ({time.perf_counter() - start:.1f} s).")
    return 0


def load_model(path):
    """A model saved by ``skpercept fit`` / ``demo`` and its info dict; errors name the file."""
    import joblib

    path = Path(path)
    if path.is_dir():
        raise CLIError(f"--model {path} is a folder, not a model file.")
    if not path.is_file():
        raise CLIError(f"Model file not found: {path}")
    with open(path, "rb") as file:
        head = file.read(64)
    if not head.startswith(_JOBLIB_MAGIC):
        shown = head[:40].decode("utf-8", "replace").splitlines()[0] if head.strip() else "nothing"
        raise CLIError(
            f"{path} is not a joblib model file (it starts with {shown!r}); pass the .joblib file "
            "written by `skpercept fit`."
        )
    try:
        model = joblib.load(path)
    except Exception as exc:  # any unpickling failure means the file, not the program, is broken
        raise CLIError(
            f"{path}: the model file is damaged or truncated ({type(exc).__name__}); it was probably cut "
            "short by a failed or interrupted save. Fit the model again."
        ) from exc
    if not hasattr(model, "skpercept_info_"):
        raise CLIError(f"{path} is not a model saved by `skpercept fit` or `skpercept demo`.")
    return model, model.skpercept_info_


def predict_table(model, info: dict, table: pd.DataFrame, task: str) -> pd.DataFrame:
    """Predictions as columns named so they never pass for labels.

    ``pred_<attr>`` (most probable level, or the regressor's rating), ``pred_<attr>_expected``
    and ``p_<attr>_<level>`` (classifier); ``p_<attr>_a`` (P(image_a preferred)) for pairs;
    ``pred_<attr>_score`` for single images scored by a pair model.
    """
    attributes = info["attributes"]
    out = pd.DataFrame(index=table.index)
    if info["task"] == "pairs" and task == "rating":
        pairs, head = model[0], model[-1]
        if info["users"]:
            raise CLIError(
                "Scoring single images with a per-user pair model needs pairs; pass an image_a/image_b table."
            )
        half = pairs.item_transformer_.transform(table["image"])
        scores = np.asarray(head.score_items(half)).reshape(len(table), -1)
        for k, attribute in enumerate(attributes):
            out[f"pred_{attribute}_score"] = scores[:, k]
        return out
    if info["task"] == "pairs":
        proba = model.predict_proba(_model_input(table, info, task))
        proba = proba if isinstance(proba, list) else [proba]
        for attribute, p in zip(attributes, proba):
            out[f"p_{attribute}_a"] = p[:, 1]
        return out
    if task == "pairs":
        raise CLIError("This is a rating model; it predicts from a table with an 'image' column, not pairs.")
    X = _model_input(table, info, task)
    if info.get("head") == "classifier":
        proba = model.predict_proba(X)
        proba = proba if isinstance(proba, list) else [proba]
        levels = np.asarray(info["levels"], dtype=np.float64)
        for attribute, p in zip(attributes, proba):
            out[f"pred_{attribute}"] = levels[p.argmax(axis=1)]
            out[f"pred_{attribute}_expected"] = p @ levels
            for k, level in enumerate(levels):
                out[f"p_{attribute}_{level:g}"] = p[:, k]
        return out
    pred = np.asarray(model.predict(X)).reshape(len(table), -1)
    for k, attribute in enumerate(attributes):
        out[f"pred_{attribute}"] = pred[:, k]
    return out


def cmd_predict(args) -> int:
    _refuse_overwrite(args.output, "--output", args.table, args.model)
    model, info = load_model(args.model)
    table, raw, task = _load_user_table(args)
    _match_users(args, table, info)
    with _image_errors(table, task, args.table):
        predictions = predict_table(model, info, table, task)
    clash = [c for c in predictions.columns if c in raw.columns]
    if clash:
        raise CLIError(
            f"{args.table} already has column(s) {clash}, which predict writes; rename them (or predict "
            "from the table without them)."
        )
    result = pd.concat([raw, predictions], axis=1)  # every input column is kept, as read
    _write(args.output, "predictions", lambda f: result.to_csv(f, index=False), "w", newline="")
    _log(args, f"Wrote {len(result)} predictions to {args.output}.")
    return 0


def cmd_evaluate(args) -> int:
    from skpercept.metrics import (
        brier_score,
        expected_calibration_error,
        pairwise_accuracy,
        quadratic_weighted_kappa,
        rating_mae,
        spearman_rho,
    )
    from skpercept.report import markdown_table, reliability_curve, write_report

    model, info = load_model(args.model)
    table, _, task = _load_user_table(args, info["task"], model_task=True)
    attributes, _ = pick_attributes(table, args.table, info["attributes"])
    if task == "pairs":
        refuse_self_comparisons(table, args.table)
        _check_pair_labels(table, attributes, args.table)
    check_trained_range(table, attributes, info, args.table)
    _match_users(args, table, info)
    with _image_errors(table, task, args.table):
        pred = predict_table(model, info, table, task)
    rows, curves, scatter = {}, {}, {}
    for attribute in attributes:
        truth = table[attribute].to_numpy(np.float64)
        keep = ~np.isnan(truth)
        if task == "pairs":
            p = pred[f"p_{attribute}_a"].to_numpy()[keep]
            rows[attribute] = {
                "n": int(keep.sum()),
                "pair_acc": pairwise_accuracy(truth[keep], p),
                "brier": brier_score(truth[keep], p),
                "ece": expected_calibration_error(truth[keep], p),
            }
            curves[attribute] = reliability_curve(truth[keep], p)
            continue
        guess = pred[f"pred_{attribute}"].to_numpy()[keep]
        row = {"n": int(keep.sum()), "mae": rating_mae(truth[keep], guess)}
        classifier = info.get("head") == "classifier"
        score = pred[f"pred_{attribute}_expected" if classifier else f"pred_{attribute}"]
        per_image = pd.DataFrame({"truth": truth, "score": score.to_numpy(), "image": table["image"]})[keep]
        per_image = per_image.groupby("image").mean()
        row["spearman_image_means"] = spearman_rho(per_image["truth"], per_image["score"])
        scatter[attribute] = (per_image["truth"].to_numpy(), per_image["score"].to_numpy())
        if classifier:
            levels = np.asarray(info["levels"], dtype=np.float64)
            proba = pred[[f"p_{attribute}_{level:g}" for level in levels]].to_numpy()[keep]
            row.update(
                accuracy=float(np.mean(guess == truth[keep])),
                qwk=quadratic_weighted_kappa(truth[keep], guess, labels=levels),
                ece=expected_calibration_error(truth[keep], proba, labels=levels),
            )
            curves[attribute] = reliability_curve(truth[keep], proba, labels=levels)
        rows[attribute] = row
    frame = pd.DataFrame(rows).T.rename_axis("attribute")
    print(markdown_table(frame))
    if args.output:
        try:
            path = write_report(
                args.output,
                tables={"Evaluation": frame},
                title="skpercept evaluation",
                intro=f"Model `{args.model}` ({info['task']}) on `{args.table}` ({len(table)} rows).",
                scatter=scatter or None,
                calibration={"Calibration": curves} if curves else None,
                scatter_ylabel="predicted (mean per image)",
            )
        except OSError as exc:
            raise CLIError(
                f"cannot write the report to {args.output}: {exc.strerror or exc}; files already there "
                "were kept whole."
            ) from exc
        _log(args, f"Report: {path}")
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


def cmd_rank(args) -> int:
    """Group a folder's photos, score them, keep the best of each group: a CSV and a contact sheet."""
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
            cache_dir=_cache_dir(args),
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
    _log(
        args,
        f"{int(readable.sum())} photos in {table['group'].nunique()} groups ({multi} with more than one photo); "
        f"{int((~readable).sum())} unreadable.\nWrote {paths['csv']} and {paths['html']}.",
    )
    for _, row in table[~readable].iterrows():
        _log(args, f"unreadable: {row['path']}: {row['reason']}")
    return 0


def _cache_dir(args):
    from skpercept.presets import default_cache_dir

    if getattr(args, "no_cache", False):
        return None
    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


# -- parser -------------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, *, table: bool = True) -> None:
    if table:
        p.add_argument("table", help="csv / tsv / xlsx table (first sheet unless --sheet)")
        p.add_argument("--sheet", help="Excel sheet name")
        p.add_argument(
            "--image-root",
            help="folder that relative image paths are relative to (default: the table's folder)",
        )
        p.add_argument("--sep", help="csv column separator (default ',' for .csv, tab for .tsv)")
        p.add_argument("--encoding", default="utf-8", help="csv text encoding (default utf-8)")
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


def build_parser() -> argparse.ArgumentParser:
    from skpercept.demo import DEFAULT_ATTRIBUTES

    parser = argparse.ArgumentParser(
        prog="skpercept",
        description="Learn how people perceive images: `skpercept demo` runs the whole job on the shipped "
        "OMI faces; fit / evaluate / predict do it on your own csv or xlsx tables.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="cross-validate and fit models on the shipped OMI faces (offline)")
    _common(p, table=False)
    p.add_argument("--output", default="skpercept-demo", help="output folder (default ./skpercept-demo)")
    p.add_argument("--attributes", nargs="+", default=list(DEFAULT_ATTRIBUTES), help="OMI attributes")
    p.add_argument("--folds", type=int, default=5, help="image-disjoint folds (default 5)")
    p.add_argument("--no-dlib", action="store_true", help="skip the dlib face descriptor")
    p.add_argument(
        "--no-flip",
        action="store_true",
        help="no flip averaging of lite0 features (halves lite0's embedding time)",
    )
    p.add_argument("--quick", action="store_true", help="tiny run for smoke tests: few faces, tiny heads")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fit", help="fit a model on your table of ratings or pairs")
    _common(p)
    p.add_argument("--model", required=True, help="where to save the fitted model (.joblib)")
    p.add_argument(
        "--task", choices=["rating", "pairs"], help="default: pairs if image_a/image_b columns exist"
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
        help=f"rating head (default: classifier for whole-number ratings on at most {_MAX_CLASS_LEVELS} "
        "levels, else regressor; the choice and why are printed)",
    )
    p.add_argument(
        "--levels",
        nargs="+",
        type=float,
        help="the rating scale, e.g. --levels 1 2 3 4; a rating outside it is an error "
        "(default: the levels found, which must have no gaps)",
    )
    p.add_argument("--user-column", default="user_id", help="per-user context column, used if present")
    p.add_argument(
        "--backbone",
        default="lite0",
        choices=["lite0", "dlib", "lite0+dlib"],
        help="image features (dlib: faces only, needs skpercept[face])",
    )
    p.add_argument("--no-flip", action="store_true", help="no flip averaging of lite0 features")
    p.add_argument("--epochs", type=int, help="maximum training epochs")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("evaluate", help="score a saved model on a labelled table")
    _common(p)
    p.add_argument("--model", required=True)
    p.add_argument("--output", help="folder for a report (markdown + PNG plots)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="write predictions for a table of images or pairs")
    _common(p)
    p.add_argument("--model", required=True)
    p.add_argument("--output", default="predictions.csv", help="csv to write (default predictions.csv)")
    p.set_defaults(func=cmd_predict)

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
    _common(p, table=False)
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
        "--burst-seconds",
        type=float,
        default=2.0,
        help=f"photos whose EXIF capture times are at most this far apart count as {1 / BURST_FACTOR:g}x closer "
        "(default 2)",
    )
    p.add_argument("--no-exif", action="store_true", help="ignore EXIF capture times")
    p.set_defaults(func=cmd_rank)
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
    half-written.
    """
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
