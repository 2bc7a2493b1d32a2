"""``skpercept compare``: backbones × heads on the user's own table, image-disjoint CV.

Each backbone embeds every image once (timed); each head is then fitted on the training rows of
every fold of :class:`~skpercept.model_selection.ImageDisjointSplit` (no test image in any
training row; the backbones' block scaling is fitted on training images only) and scored on the
test rows: rating accuracy (exact level; predictions of numbers rounded to the nearest level)
and MAE for ratings, pairwise accuracy for comparisons. People are pooled: the heads model the
images, which is what a backbone changes. The heads are the registered ones
(:func:`skpercept.heads.head_names`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept._io import atomic_write
from skpercept._utils import torch_threads
from skpercept.cli._common import (
    BackboneChoice,
    HeadChoice,
    Loaded,
    Runtime,
    TableCommand,
    add_backbone_options,
    add_head_options,
    add_runtime_options,
    add_table_options,
    check_face_upsample,
    finite_number,
    image_errors,
    load_input,
    log,
    make_backbones_for,
    whole_number,
)
from skpercept.cli._heads import DEFAULT_HEADS, choose_rating_head
from skpercept.cli._models import check_pair_labels
from skpercept.cli._outputs import (
    check_outputs,
    compare_outputs,
    table_inputs,
    weights_inputs,
    written_together,
)
from skpercept.cli._tables import (
    CLIError,
    check_training_attributes,
    describe_skipped,
    pick_attributes,
    refuse_self_comparisons,
)
from skpercept.embed import parse_backbones
from skpercept.heads import HeadSettings, get_head, head_names, make_head
from skpercept.metrics import pairwise_accuracy
from skpercept.model_selection import ImageDisjointSplit
from skpercept.preprocessing import BlockScaler
from skpercept.recipes import embed_blocks
from skpercept.report import markdown_table, write_report

_REFERENCE_LEVELS = (1.0, 2.0, 3.0, 4.0)  # the reference schema's rating scale


@dataclass(frozen=True)
class CompareOptions(TableCommand):
    """``skpercept compare``'s options as typed values."""

    backbones: str
    pretrained: tuple[str, ...]
    flip: bool
    face_upsample: int
    heads: tuple[str, ...] | None
    task: str | None
    attributes: tuple[str, ...] | None
    levels: tuple[float, ...] | None
    folds: int
    head_choice: HeadChoice
    output: Path | None

    @classmethod
    def _own_options(cls, options: argparse.Namespace) -> dict:
        heads = tuple(h.strip() for h in options.heads.split(",")) if options.heads else None
        check_face_upsample(options.face_upsample, options.backbones.split(","), "--backbones")
        return dict(
            backbones=options.backbones,
            pretrained=tuple(options.pretrained or ()),
            flip=not options.no_flip,
            face_upsample=options.face_upsample,
            heads=heads,
            task=options.task,
            attributes=tuple(options.attributes) if options.attributes else None,
            levels=tuple(options.levels) if options.levels else None,
            folds=options.folds,
            head_choice=HeadChoice.from_options(options),
            output=Path(options.output) if options.output else None,
        )


def _specs(options: CompareOptions) -> list[BackboneChoice]:
    """Each ``--backbones`` entry with the weights of its family parts.

    ``--pretrained`` gives one value per distinct family backbone (``timm:`` / ``open_clip:``), in
    order of first appearance across the list.
    """
    entries = [entry.strip() for entry in options.backbones.split(",")]
    if not all(entries):
        raise CLIError(f"--backbones {options.backbones!r} has an empty entry; separate backbones with ','.")
    custom: list[str] = []
    for entry in entries:
        for part in entry.split("+"):
            if ":" in part and part.strip() not in custom:
                custom.append(part.strip())
    values = list(options.pretrained)
    if len(values) != len(custom):
        raise CLIError(
            f"--pretrained was given {len(values)} time(s); compare needs one value per distinct timm:/open_clip: "
            f"backbone of --backbones, in order: {len(custom)} ({', '.join(custom) or 'none'})."
        )
    sources = dict(zip(custom, values))
    specs = []
    for entry in entries:
        given = tuple(sources[p.strip()] for p in entry.split("+") if ":" in p)
        try:
            parse_backbones(entry, given)
        except ValueError as exc:
            raise CLIError(f"--backbones {entry}: {exc}") from exc
        specs.append(BackboneChoice(entry, given, options.flip, options.face_upsample))
    return specs


def _heads(options: CompareOptions, task: str, levels) -> list[str]:
    allowed = head_names(task, command=True)
    if not options.heads:
        if task == "pairs":
            return allowed
        return ["ridge", DEFAULT_HEADS["classes"] if levels is not None else DEFAULT_HEADS["values"]]
    bad = [h for h in options.heads if h not in allowed]
    if bad:
        raise CLIError(f"--heads {bad} cannot fit a {task} table; choose from {', '.join(allowed)}.")
    classes = [h for h in options.heads if get_head(h).output == "classes"]
    if classes and levels is None:
        raise CLIError(f"--heads {classes[0]} needs whole-number ratings on a few levels (or --levels).")
    return list(options.heads)


def _embed(
    choice: BackboneChoice, runtime: Runtime, images: pd.Series
) -> tuple[np.ndarray, list[int], float]:
    backbones, _ = make_backbones_for(choice, runtime, option="--backbones")
    start = time.perf_counter()
    Z, sizes = embed_blocks(backbones, images)
    return Z, sizes, time.perf_counter() - start


def _fit_predict(head_name, settings, levels, X_train, y_train, X_test, pairs: bool):
    """Fit one head on (scaled) training features; its predictions for the test features.

    A skpercept head learns every attribute at once (NaN = not judged); any other head is fitted
    once per attribute on that attribute's judged rows, for pairs on the pairs with a winner, in
    both orders (the model of a difference is then antisymmetric).
    """
    spec = get_head(head_name)
    n_out = y_train.shape[1]
    if not spec.skpercept_head:
        out = np.full((len(X_test), n_out), np.nan)
        for j in range(n_out):
            keep = ~np.isnan(y_train[:, j])
            model = make_head(head_name, settings)
            if pairs:
                hard = keep & (y_train[:, j] != 0.5)
                X = np.vstack([X_train[hard], -X_train[hard]])
                y = np.r_[y_train[hard, j] > 0.5, y_train[hard, j] <= 0.5]
                out[:, j] = model.fit(X, y).predict_proba(X_test)[:, 1]
            else:
                out[:, j] = model.fit(X_train[keep], y_train[keep, j]).predict(X_test)
        return out
    head = make_head(head_name, settings)
    if spec.output == "classes":
        head.set_params(classes=levels)
    target = y_train if n_out > 1 else y_train[:, 0]
    with torch_threads(settings.threads):
        head.fit(X_train, target)
        if pairs:
            proba = head.predict_proba(X_test)
            proba = proba if isinstance(proba, list) else [proba]
            return np.column_stack([p[:, 1] for p in proba])
        return np.asarray(head.predict(X_test), dtype=np.float64).reshape(len(X_test), n_out)


def _row_features(scaled: np.ndarray, codes: np.ndarray, difference: bool) -> np.ndarray:
    """Rows' features: the image's, a pair's two halves side by side, or their difference."""
    parts = [scaled[codes[:, k]] for k in range(codes.shape[1])]
    return parts[0] - parts[1] if difference else np.hstack(parts)


def _scores(pred: np.ndarray, truth: np.ndarray, pairs: bool, levels) -> dict:
    if pairs:
        accs = []
        for j in range(truth.shape[1]):
            keep = ~np.isnan(truth[:, j])
            accs.append(pairwise_accuracy(truth[keep, j], pred[keep, j]) if keep.any() else np.nan)
        return {"per_attribute": accs}
    grid = np.asarray(levels if levels is not None else np.unique(truth[~np.isnan(truth)]), dtype=np.float64)
    nearest = grid[np.abs(pred[..., None] - grid).argmin(axis=-1)]
    accs, maes = [], []
    for j in range(truth.shape[1]):
        keep = ~np.isnan(truth[:, j])
        accs.append(float(np.mean(nearest[keep, j] == truth[keep, j])))
        maes.append(float(np.mean(np.abs(pred[keep, j] - truth[keep, j]))))
    return {"per_attribute": accs, "mae": float(np.mean(maes))}


def run_compare(
    options: CompareOptions,
    table: pd.DataFrame,
    task: str,
    attributes: list[str],
    levels: tuple[float, ...] | None,
    embed: Callable[[BackboneChoice, pd.Series], tuple[np.ndarray, list[int], float]],
) -> pd.DataFrame:
    """The comparison table: one row per (backbone, head)."""
    pairs = task == "pairs"
    columns = ["image_a", "image_b"] if pairs else ["image"]
    if not pairs:
        kind, levels, _ = choose_rating_head(table, attributes, options.source.path, None, levels)
        levels = levels if get_head(kind).output == "classes" else None
    heads = _heads(options, task, levels)
    specs = _specs(options)
    settings: HeadSettings = options.head_choice.settings(options.runtime)
    images = pd.Series(pd.unique(table[columns].to_numpy().ravel()), name="image")
    position = pd.Series(np.arange(len(images)), index=images.to_numpy())
    codes = np.column_stack([position.loc[table[c].to_numpy()].to_numpy() for c in columns])
    truth = table[attributes].to_numpy(np.float64)
    seed = options.runtime.seed
    try:
        folds = list(ImageDisjointSplit(n_splits=options.folds, random_state=seed).split(table[columns]))
    except ValueError as exc:
        raise CLIError(f"{options.source.path}: {exc}") from exc
    rows = []
    for choice in specs:
        Z, sizes, embed_seconds = embed(choice, images)
        log(f"{choice.spec}: embedded {len(images)} images in {embed_seconds:.1f} s ({Z.shape[1]} features)")
        for head_name in heads:
            fold_accs, fold_maes, per_attribute, start = [], [], [], time.perf_counter()
            difference = pairs and not get_head(head_name).skpercept_head
            for train, test in folds:
                train_images = np.unique(codes[train])
                scaled = BlockScaler(block_sizes=sizes).fit(Z[train_images]).transform(Z)
                X_train, X_test = (_row_features(scaled, codes[rows_], difference) for rows_ in (train, test))
                pred = _fit_predict(head_name, settings, levels, X_train, truth[train], X_test, pairs)
                scores = _scores(pred, truth[test], pairs, levels)
                per_attribute.append(scores["per_attribute"])
                fold_accs.append(float(np.nanmean(scores["per_attribute"])))
                if "mae" in scores:
                    fold_maes.append(scores["mae"])
            metric = "pair_acc" if pairs else "accuracy"
            row = {
                "backbone": choice.spec,
                "head": head_name,
                metric: np.mean(fold_accs),
                "fold_sd": np.std(fold_accs),
            }
            if fold_maes:
                row.update(mae=np.mean(fold_maes), mae_sd=np.std(fold_maes))
            if len(attributes) > 1:
                row.update(
                    {f"{metric}_{a}": v for a, v in zip(attributes, np.nanmean(per_attribute, axis=0))}
                )
            row.update(embed_s=embed_seconds, fit_s=time.perf_counter() - start)
            rows.append(row)
            log(f"{choice.spec} / {head_name}: {metric} {row[metric]:.3f} ± {row['fold_sd']:.3f}")
    return pd.DataFrame(rows).set_index(["backbone", "head"])


def compare(options: CompareOptions) -> int:
    """Cross-validate every backbone × head; print the table, write the report with ``--output``."""
    loaded: Loaded = load_input(options.source, options.task, attributes=options.attributes)
    table, task, attributes = loaded.table, loaded.task, loaded.attributes
    levels = options.levels
    path = options.source.path
    if attributes is None:
        attributes, skipped = pick_attributes(table, path, options.attributes, exclude=["user_id"])
        if skipped:
            log(f"Columns not used as attributes: {describe_skipped(skipped)}.")
    elif task == "rating" and levels is None:
        levels = _REFERENCE_LEVELS
    check_training_attributes(table, attributes, path, task, inferred=options.attributes is None)
    if task == "pairs":
        refuse_self_comparisons(table, path)
        check_pair_labels(table, attributes, path)
    check_outputs(
        compare_outputs(options.output),
        [
            *table_inputs(loaded, ["image_a", "image_b"] if task == "pairs" else ["image"]),
            *weights_inputs(options.pretrained, options.backbones.replace(",", "+")),
        ],
    )

    def embed(choice: BackboneChoice, images: pd.Series):
        with image_errors(loaded):
            return _embed(choice, options.runtime, images)

    frame = run_compare(options, table, task, attributes, levels, embed)
    print(markdown_table(frame))
    if options.output is not None:
        _write_outputs(options, frame, len(table), task, attributes)
    return 0


def _write_outputs(options: CompareOptions, frame: pd.DataFrame, n_rows: int, task: str, attributes) -> None:
    output = options.output
    cached = (
        "no cache"
        if options.runtime.cache_dir is None
        else "embeddings read from the cache where present (use --no-cache to time them)"
    )
    with written_together(output, "comparison"):
        write_report(
            output,
            tables={"Backbones × heads": frame},
            title="skpercept compare",
            intro=(
                f"`{options.source.path}`: {n_rows} {task} rows, attributes {', '.join(attributes)}; "
                f"{options.folds}-fold image-disjoint cross-validation (seed {options.runtime.seed}). fold_sd = "
                f"spread of the folds' scores; embed_s = embedding time of all images ({cached}); fit_s = "
                "fitting and scoring over all folds."
            ),
        )
        with atomic_write(output / "compare.csv", "w", encoding="utf-8", newline="") as file:
            frame.to_csv(file)
    log(f"Wrote {output / 'report.md'} and {output / 'compare.csv'}.")


def add_parser(subparsers) -> None:
    """Add ``compare`` to the command's subparsers."""
    rating = ", ".join(head_names("rating", command=True))
    pair = ", ".join(head_names("pairs", command=True))
    p = subparsers.add_parser(
        "compare",
        help="cross-validate several backbones and heads on your table: one table of accuracy, spread and time",
        description="Embed the table's images with each backbone (timed), then fit each head on image-disjoint "
        "folds and score the held-out rows: accuracy and MAE for ratings, pair accuracy for comparisons, with "
        "the spread over folds. Printed, and written as OUTPUT/report.md and OUTPUT/compare.csv.",
    )
    add_table_options(p)
    add_runtime_options(p)
    p.add_argument("--backbones", required=True, help="comma-separated backbones, e.g. lite0,dlib,lite0+dlib")
    add_backbone_options(p, single=False)
    p.add_argument(
        "--heads",
        help=f"comma-separated heads (ratings: {rating}; pairs: {pair}); default ridge + classifier (or "
        "regressor) / every pair head",
    )
    p.add_argument("--task", choices=["rating", "pairs"], help="as in fit")
    p.add_argument("--attributes", nargs="+", help="as in fit")
    p.add_argument("--levels", nargs="+", type=finite_number(), help="as in fit")
    p.add_argument("--folds", type=whole_number(2), default=5, help="image-disjoint folds (default 5)")
    add_head_options(p, "the MLP heads")
    p.add_argument("--output", help="folder for report.md and compare.csv")
    p.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    """Run ``compare`` with the parsed command line."""
    return compare(CompareOptions.from_options(options))
