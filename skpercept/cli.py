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

Run ``skpercept <command> --help`` for the options.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

PAIR_COLUMNS = ("image_a", "image_b")
KNOWN_NON_ATTRIBUTES = {"image", "image_a", "image_b", "user_id"}
_MAX_CLASS_LEVELS = 10


class CLIError(Exception):
    """A problem with the user's input; printed without a traceback."""


def _log(args, message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- tables -------------------------------------------------------------------------------------
def read_table(path: str | Path, sheet: str | None = None) -> pd.DataFrame:
    """Read a csv / tsv / xlsx table; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"Table file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            table = pd.read_excel(
                path, sheet_name=sheet or 0, engine="openpyxl" if suffix != ".xls" else None
            )
        elif suffix in (".csv", ".tsv", ".txt"):
            table = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise CLIError(f"{path}: unsupported table format {suffix!r}; use .csv, .tsv or .xlsx.")
    except CLIError:
        raise
    except Exception as exc:  # pandas/openpyxl raise many kinds; the user needs the file name
        raise CLIError(f"Cannot read table {path}: {exc}") from None
    if table.empty:
        raise CLIError(f"{path}: the table has no rows.")
    table.columns = [str(c).strip() for c in table.columns]
    return table


def infer_task(table: pd.DataFrame, path, task: str | None) -> str:
    has_pairs = all(c in table.columns for c in PAIR_COLUMNS)
    if task is None:
        if has_pairs:
            return "pairs"
        if "image" in table.columns:
            return "rating"
        raise CLIError(
            f"{path}: cannot tell the task: the table needs an 'image' column (ratings) or "
            f"'image_a' and 'image_b' columns (pairs); its columns are {list(table.columns)}."
        )
    needed = PAIR_COLUMNS if task == "pairs" else ("image",)
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise CLIError(
            f"{path}: --task {task} needs column(s) {missing}; the table has {list(table.columns)}."
        )
    return task


def pick_attributes(
    table: pd.DataFrame, path, attributes: Sequence[str] | None, exclude: Sequence[str] = ()
) -> list[str]:
    """The attribute columns (default: every column but the image and user columns), as numbers."""
    if attributes:
        missing = [a for a in attributes if a not in table.columns]
        if missing:
            raise CLIError(
                f"{path}: attribute column(s) {missing} not found; the table has {list(table.columns)}."
            )
        chosen = list(attributes)
    else:
        chosen = [c for c in table.columns if c not in KNOWN_NON_ATTRIBUTES and c not in exclude]
        if not chosen:
            raise CLIError(f"{path}: no attribute column found; the table has {list(table.columns)}.")
    for column in chosen:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna()
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())[:5]
            raise CLIError(
                f"{path}: column {column!r} has non-numeric values at row(s) {rows.tolist()} "
                f"(e.g. {table[column].iloc[rows[0]]!r})."
            )
        table[column] = values
    return chosen


def resolve_images(table: pd.DataFrame, columns: Sequence[str], root: Path, path) -> pd.DataFrame:
    """Absolute image paths (relative ones joined onto ``root``); every file must exist."""
    table = table.copy()
    for column in columns:
        cells = table[column]
        if cells.isna().any():
            row = int(np.flatnonzero(cells.isna().to_numpy())[0])
            raise CLIError(f"{path}: column {column!r} is empty at row {row}.")
        resolved = [str(p if Path(p).is_absolute() else root / p) for p in cells.astype(str)]
        missing = [(i, cells.iloc[i], r) for i, r in enumerate(resolved) if not Path(r).is_file()]
        if missing:
            i, cell, full = missing[0]
            raise CLIError(
                f"{path}: {len(missing)} image file(s) of column {column!r} not found, e.g. row {i}: "
                f"{cell!r} (looked for {full}). Pass --image-root to the folder the paths are relative to."
            )
        table[column] = resolved
    return table


def _load_user_table(args, task: str | None = None):
    table = read_table(args.table, getattr(args, "sheet", None))
    task = infer_task(table, args.table, task)
    root = Path(args.image_root) if args.image_root else Path(args.table).resolve().parent
    if not root.is_dir():
        raise CLIError(f"--image-root {root} is not a folder.")
    columns = list(PAIR_COLUMNS) if task == "pairs" else ["image"]
    return resolve_images(table, columns, root, args.table), task


# -- models -------------------------------------------------------------------------------------
def _is_levels(values: np.ndarray) -> bool:
    observed = values[~np.isnan(values)]
    return bool(np.all(observed == np.round(observed)) and len(np.unique(observed)) <= _MAX_CLASS_LEVELS)


def build_model(task: str, y: np.ndarray, args, featurizer, users: bool):
    """The unfitted pipeline for a user table, and the info dict saved with it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from skpercept.demo import HeadSettings, make_head
    from skpercept.pairs import PairFeatures
    from skpercept.users import UserEncoder

    settings = HeadSettings(seed=args.seed, device=args.device)
    if args.epochs:
        settings.max_epochs = args.epochs
    info = {"task": task, "users": users}
    if task == "pairs":
        observed = y[~np.isnan(y)]
        if observed.min() < 0 or observed.max() > 1:
            raise CLIError(
                f"{args.table}: pair labels must be 1 (image_a preferred), 0 (image_b) or a share in "
                f"between; found {sorted(set(observed[(observed < 0) | (observed > 1)].tolist()))[:5]}. "
                "If your table says 1/2 for first/second image, convert it first (e.g. 2 - value when "
                "1 means image_a) — skpercept does not guess which way round it is."
            )
        pairs = PairFeatures(
            item_transformer=featurizer, context_transformer=UserEncoder() if users else None
        )
        return Pipeline([("pairs", pairs), ("head", make_head("ranker", settings))]), info
    head_kind = args.head or ("classifier" if _is_levels(y) else "regressor")
    head = make_head(head_kind, settings)
    if head_kind == "classifier":
        levels = np.unique(y[~np.isnan(y)])
        if len(levels) < 2:
            raise CLIError(
                f"{args.table}: the ratings have a single level {levels.tolist()}; nothing to learn."
            )
        head.set_params(classes=levels)
        info["levels"] = levels.tolist()
    info["head"] = head_kind
    features = featurizer
    if users:
        features = ColumnTransformer([("image", featurizer, "image"), ("user", UserEncoder(), ["user_id"])])
    return Pipeline([("features", features), ("head", head)]), info


def _model_input(table: pd.DataFrame, info: dict, task: str) -> pd.DataFrame | pd.Series:
    if task == "pairs":
        return table[list(PAIR_COLUMNS) + (["user_id"] if info["users"] else [])]
    if info["users"]:
        return table[["image", "user_id"]]
    return table["image"]


def cmd_fit(args) -> int:
    import joblib

    from skpercept.demo import make_backbones, make_featurizer

    table, task = _load_user_table(args, args.task)
    attributes = pick_attributes(table, args.table, args.attributes, exclude=[args.user_column])
    users = args.user_column in table.columns
    if users:
        table = table.rename(columns={args.user_column: "user_id"})
    y = table[attributes].to_numpy(np.float64)
    backbones = make_backbones(
        args.backbone.split("+"),
        flip=not args.no_flip,
        cache_dir=_cache_dir(args),
        device=args.device,
        progress=not args.no_progress,
    )
    model, info = build_model(task, y, args, make_featurizer(backbones), users)
    info.update(attributes=attributes, backbone=args.backbone)
    _log(
        args,
        f"Fitting a {task} model on {len(table)} rows of {args.table} "
        f"(attributes: {', '.join(attributes)}; user context: {'yes' if users else 'no'}).",
    )
    start = time.perf_counter()
    target = y if len(attributes) > 1 else y[:, 0]
    model.fit(_model_input(table, info, task), target)
    model.skpercept_info_ = info
    Path(args.model).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.model)
    _log(args, f"Saved {args.model} ({time.perf_counter() - start:.1f} s).")
    return 0


def load_model(path):
    import joblib

    if not Path(path).is_file():
        raise CLIError(f"Model file not found: {path}")
    model = joblib.load(path)
    if not hasattr(model, "skpercept_info_"):
        raise CLIError(f"{path} is not a model saved by `skpercept fit` or `skpercept demo`.")
    return model, model.skpercept_info_


def predict_table(model, info: dict, table: pd.DataFrame, task: str) -> pd.DataFrame:
    """Predictions as columns: ``<attr>`` (+ ``<attr>_expected``) for ratings, ``<attr>_p_a``
    (P(image_a preferred)) for pairs, ``<attr>_score`` for images scored by a pair model."""
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
            out[f"{attribute}_score"] = scores[:, k]
        return out
    if info["task"] == "pairs":
        proba = model.predict_proba(_model_input(table, info, task))
        proba = proba if isinstance(proba, list) else [proba]
        for attribute, p in zip(attributes, proba):
            out[f"{attribute}_p_a"] = p[:, 1]
        return out
    if task == "pairs":
        raise CLIError("This is a rating model; it predicts from a table with an 'image' column, not pairs.")
    X = _model_input(table, info, task)
    if info.get("head") == "classifier":
        proba = model.predict_proba(X)
        proba = proba if isinstance(proba, list) else [proba]
        levels = np.asarray(info["levels"], dtype=np.float64)
        for attribute, p in zip(attributes, proba):
            out[attribute] = levels[p.argmax(axis=1)]
            out[f"{attribute}_expected"] = p @ levels
        return out
    pred = np.asarray(model.predict(X)).reshape(len(table), -1)
    for k, attribute in enumerate(attributes):
        out[attribute] = pred[:, k]
    return out


def cmd_predict(args) -> int:
    model, info = load_model(args.model)
    table, task = _load_user_table(args)
    if info.get("users") and "user_id" not in table.columns:
        raise CLIError(f"{args.table}: this model uses a 'user_id' column, which the table lacks.")
    predictions = predict_table(model, info, table, task)
    keep = [c for c in table.columns if c in KNOWN_NON_ATTRIBUTES]
    result = pd.concat([read_table(args.table, getattr(args, "sheet", None))[keep], predictions], axis=1)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.output, index=False)
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
    table, task = _load_user_table(args, info["task"])
    attributes = pick_attributes(table, args.table, info["attributes"])
    pred = predict_table(model, info, table, task)
    rows, curves, scatter = {}, {}, {}
    for attribute in attributes:
        truth = table[attribute].to_numpy(np.float64)
        keep = ~np.isnan(truth)
        if task == "pairs":
            p = pred[f"{attribute}_p_a"].to_numpy()[keep]
            rows[attribute] = {
                "n": int(keep.sum()),
                "pair_acc": pairwise_accuracy(truth[keep], p),
                "brier": brier_score(truth[keep], p),
                "ece": expected_calibration_error(truth[keep], p),
            }
            curves[attribute] = reliability_curve(truth[keep], p)
            continue
        guess = pred[attribute].to_numpy()[keep]
        row = {"n": int(keep.sum()), "mae": rating_mae(truth[keep], guess)}
        score = pred[f"{attribute}_expected"] if info.get("head") == "classifier" else pred[attribute]
        per_image = pd.DataFrame({"truth": truth, "score": score.to_numpy(), "image": table["image"]})[keep]
        per_image = per_image.groupby("image").mean()
        row["spearman_image_means"] = spearman_rho(per_image["truth"], per_image["score"])
        scatter[attribute] = (per_image["truth"].to_numpy(), per_image["score"].to_numpy())
        if info.get("head") == "classifier":
            levels = np.asarray(info["levels"], dtype=np.float64)
            proba = model.predict_proba(_model_input(table, info, task))
            proba = (proba if isinstance(proba, list) else [proba])[attributes.index(attribute)][keep]
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
        path = write_report(
            args.output,
            tables={"Evaluation": frame},
            title="skpercept evaluation",
            intro=f"Model `{args.model}` ({info['task']}) on `{args.table}` ({len(table)} rows).",
            scatter=scatter or None,
            calibration={"Calibration": curves} if curves else None,
            scatter_ylabel="predicted (mean per image)",
        )
        _log(args, f"Report: {path}")
    return 0


# -- demo ---------------------------------------------------------------------------------------
def _save(model, info: dict, path: Path) -> None:
    import joblib

    model.skpercept_info_ = info
    joblib.dump(model, path)


def cmd_demo(args) -> int:
    """Cross-validate and fit on the shipped OMI faces; print, save models and a report."""
    from sklearn.pipeline import Pipeline

    from skpercept import demo
    from skpercept.datasets import load_omi
    from skpercept.pairs import PairFeatures
    from skpercept.report import markdown_table, reliability_curve, write_report

    start, cpu_start = time.perf_counter(), time.process_time()
    say = (lambda m: None) if args.no_progress else (lambda m: _log(args, m))
    settings = (demo.HeadSettings.quick if args.quick else demo.HeadSettings)(
        seed=args.seed, device=args.device
    )
    folds = 2 if args.quick and args.folds == 5 else args.folds
    omi = load_omi(args.attributes)
    if args.quick:
        omi = demo.subset_omi(omi, 40)
    names = ["lite0"]
    notes = []
    if args.no_dlib:
        notes.append("dlib face descriptors skipped (--no-dlib).")
    elif demo.dlib_available():
        names.append("dlib")
    else:
        notes.append("dlib face descriptors skipped: not installed (pip install 'skpercept[face]').")
    for note in notes:
        _log(args, note)
    cache = _cache_dir(args)
    backbones = demo.make_backbones(
        names, flip=not args.no_flip, cache_dir=cache, device=args.device, progress=not args.no_progress
    )
    images = omi.means["image"].to_numpy()
    _log(args, f"Embedding {len(images)} OMI faces with {' + '.join(names)} (cache: {cache or 'off'}) ...")
    t = time.perf_counter()
    Z, sizes = demo.embed_blocks(backbones, images)
    embed_s = time.perf_counter() - t
    _log(args, f"Embedded in {embed_s:.1f} s. Cross-validating ({folds} image-disjoint folds) ...")
    ceiling = demo.noise_ceiling_table(omi, seed=args.seed)
    t = time.perf_counter()
    result = demo.cross_validate(
        omi, Z, sizes, ["ridge", "ranker", "classifier"], folds=folds, settings=settings, progress=say
    )
    cv_s = time.perf_counter() - t
    table = demo.results_table(result, ceiling)
    print(f"\nOMI faces, {len(images)} images, {folds}-fold image-disjoint CV, features: {' + '.join(names)}")
    print(markdown_table(table))

    _log(args, "Fitting the final models on all faces ...")
    t = time.perf_counter()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    attributes = list(omi.attributes)
    featurizer = demo.make_featurizer(backbones, sizes)
    rows, y = demo.rating_rows(
        demo.long_ratings(omi), np.arange(len(images)), attributes, settings.ratings_per_face, settings.seed
    )
    # embeddings are cached by now, so these fits are head training: one torch thread (see HeadSettings)
    with demo.torch_threads(settings.threads):
        rating = Pipeline([("features", featurizer), ("head", demo.make_head("classifier", settings))])
        rating.fit(pd.Series(images[rows], name="image"), y)
        base = {"attributes": attributes, "backbone": "+".join(names), "users": False}
        _save(
            rating,
            {**base, "task": "rating", "head": "classifier", "levels": demo.RATING_LEVELS.tolist()},
            out / "rating_model.joblib",
        )
        pairs = demo.training_pairs(
            omi.means, attributes, settings.n_pairs, settings.seed, se=demo.standard_errors(omi)
        )
        ranker = Pipeline(
            [
                ("pairs", PairFeatures(item_transformer=demo.make_featurizer(backbones, sizes))),
                ("head", demo.make_head("ranker", settings)),
            ]
        )
        ranker.fit(pairs[list(PAIR_COLUMNS)], pairs[attributes].to_numpy(np.float32))
    _save(ranker, {**base, "task": "pairs"}, out / "ranker_model.joblib")
    final_s = time.perf_counter() - t

    means = omi.means[attributes].to_numpy()
    scatter = {a: (means[:, k], result.scores["ranker"][:, k]) for k, a in enumerate(attributes)}
    curves = {
        "PairwiseRanker: P(left preferred)": {
            a: reliability_curve(*result.pair_curves[a]) for a in attributes
        },
        "RatingClassifier: top class": {
            a: reliability_curve(*result.rating_curves[a], labels=demo.RATING_LEVELS) for a in attributes
        },
    }
    total = time.perf_counter() - start
    notes += [
        "pair_acc: accuracy of ordering two held-out faces as their mean ratings do (all pairs of "
        "test faces, ties skipped); spearman: rank correlation of model scores with mean ratings; "
        "headroom: (pair_acc - 0.5) / (ceiling - 0.5).",
        "Noise ceiling: split-half reliability of the mean ratings (Spearman-Brown) turned into the "
        "best achievable pair accuracy; its rating columns are each face's own modal class "
        "(an in-sample oracle).",
        "RatingClassifier: trained on individual 0-100 ratings binned to classes 1-4 "
        "([0,25), [25,50), [50,75), [75,100]), "
        f"{settings.ratings_per_face} ratings per face and attribute; scored on all individual "
        "ratings of test faces; its face score is the expected class. ECE: top-label ECE of its "
        "class probabilities; for PairwiseRanker, ECE of P(left preferred) on test pairs.",
        f"Timings (wall clock): embedding {embed_s:.1f} s, cross-validation {cv_s:.1f} s, final "
        f"fits {final_s:.1f} s, total {total:.1f} s; CPU time of this process "
        f"{time.process_time() - cpu_start:.1f} s. Cross-validation per model: "
        + ", ".join(f"{demo.MODEL_LABELS[m]} {sec:.1f} s" for m, sec in result.seconds.items())
        + ".",
        "Data: One Million Impressions (Peterson et al., 2022, PNAS), CC BY-NC-SA 4.0.",
    ]
    report = write_report(
        out,
        tables={"Results": table},
        title="skpercept demo: OMI face impressions",
        intro=f"{len(images)} faces, {folds}-fold image-disjoint cross-validation (no test face in "
        f"any training row), seed {args.seed}. Features: {' + '.join(names)}.",
        scatter=scatter,
        calibration=curves,
        notes=notes,
        scatter_ylabel="PairwiseRanker score (out of fold)",
    )
    print(f"\nModels: {out / 'ranker_model.joblib'}, {out / 'rating_model.joblib'}; report: {report}")
    print(f"Done in {total:.1f} s (CPU time {time.process_time() - cpu_start:.1f} s).")
    return 0


def _cache_dir(args):
    from skpercept.demo import default_cache_dir

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
    p.add_argument(
        "--cache-dir", help="embedding cache folder (default: ~/.cache/skpercept or $SKPERCEPT_CACHE_DIR)"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


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
        help="attribute columns (default: every column but image(s) and the user column)",
    )
    p.add_argument(
        "--head",
        choices=["classifier", "regressor"],
        help=f"rating head (default: classifier for integer levels, at most {_MAX_CLASS_LEVELS})",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skpercept`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"skpercept {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"skpercept {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
