"""``skpercept compare``: backbones × heads on the user's own table, image-disjoint CV.

Each backbone embeds every image once (timed); each head is then fitted on the training rows of
every fold of :class:`~skpercept.model_selection.ImageDisjointSplit` (no test image in any
training row; the backbones' block scaling is fitted on training images only) and scored on the
test rows: rating accuracy (exact level; ridge and regressor predictions rounded to the nearest
level) and MAE for ratings, pairwise accuracy for comparisons. People are pooled: the heads
model the images, which is what a backbone changes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept._cli_tables import CLIError

RATING_HEADS = ("ridge", "classifier", "regressor")
PAIR_HEADS = ("logistic", "ranker")


def _specs(args) -> list[tuple[str, dict]]:
    """Each ``--backbones`` entry and the weights of its timm:/open_clip: parts.

    ``--pretrained`` gives one value per distinct timm:/open_clip: backbone, in order of first
    appearance across the list.
    """
    from skpercept.presets import parse_backbones

    entries = [entry.strip() for entry in args.backbones.split(",")]
    if not all(entries):
        raise CLIError(f"--backbones {args.backbones!r} has an empty entry; separate backbones with ','.")
    custom: list[str] = []
    for entry in entries:
        for part in entry.split("+"):
            if ":" in part and part.strip() not in custom:
                custom.append(part.strip())
    values = list(args.pretrained or ())
    if len(values) != len(custom):
        raise CLIError(
            f"--pretrained was given {len(values)} time(s); compare needs one value per distinct timm:/open_clip: "
            f"backbone of --backbones, in order: {len(custom)} ({', '.join(custom) or 'none'})."
        )
    sources = dict(zip(custom, values))
    specs = []
    for entry in entries:
        try:
            parsed = parse_backbones(entry, [sources[p.strip()] for p in entry.split("+") if ":" in p])
        except ValueError as exc:
            raise CLIError(f"--backbones {entry}: {exc}") from exc
        specs.append((entry, {k: v for k, v in parsed.items() if v is not None}))
    return specs


def _heads(args, task: str, levels) -> list[str]:
    allowed = PAIR_HEADS if task == "pairs" else RATING_HEADS
    if not args.heads:
        if task == "pairs":
            return list(PAIR_HEADS)
        return ["ridge", "classifier" if levels is not None else "regressor"]
    heads = [h.strip() for h in args.heads.split(",")]
    bad = [h for h in heads if h not in allowed]
    if bad:
        raise CLIError(f"--heads {bad} cannot fit a {task} table; choose from {', '.join(allowed)}.")
    if "classifier" in heads and levels is None:
        raise CLIError("--heads classifier needs whole-number ratings on a few levels (or --levels).")
    return heads


def _embed(args, spec: str, sources: dict, images: pd.Series) -> tuple[np.ndarray, list[int], float]:
    from skpercept import presets

    try:
        backbones = presets.make_backbones(
            [part.strip() for part in spec.split("+")],
            flip=not args.no_flip,
            cache_dir=None
            if args.no_cache
            else (Path(args.cache_dir) if args.cache_dir else presets.default_cache_dir()),
            device=args.device,
            progress=not args.no_progress,
            **({"pretrained": sources} if sources else {}),
        )
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(f"--backbones {spec}: {exc}") from exc
    start = time.perf_counter()
    Z, sizes = presets.embed_blocks(backbones, images)
    return Z, sizes, time.perf_counter() - start


def _fit_predict(head_name, settings, levels, X_train, y_train, X_test, pairs: bool):
    """Fit one head on (scaled) training features; its predictions for the test features."""
    from sklearn.linear_model import LogisticRegression

    from skpercept.presets import make_head, torch_threads

    n_out = y_train.shape[1]
    if head_name in ("ridge", "logistic"):  # sklearn heads: one per attribute, on its judged rows
        out = np.full((len(X_test), n_out), np.nan)
        for j in range(n_out):
            keep = ~np.isnan(y_train[:, j])
            if pairs:
                hard = keep & (y_train[:, j] != 0.5)
                # both orders of each pair: the model of a difference is then antisymmetric
                X = np.vstack([X_train[hard], -X_train[hard]])
                y = np.r_[y_train[hard, j] > 0.5, y_train[hard, j] <= 0.5]
                model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
                out[:, j] = model.predict_proba(X_test)[:, 1]
            else:
                out[:, j] = make_head("ridge").fit(X_train[keep], y_train[keep, j]).predict(X_test)
        return out
    head = make_head(head_name, settings)
    if head_name == "classifier":
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
    from skpercept.metrics import pairwise_accuracy

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


def run_compare(args, table: pd.DataFrame, task: str, attributes: list[str], log) -> pd.DataFrame:
    """The comparison table: one row per (backbone, head)."""
    from skpercept._cli_models import head_settings
    from skpercept._cli_tables import choose_rating_head
    from skpercept.model_selection import ImageDisjointSplit
    from skpercept.preprocessing import BlockScaler

    pairs = task == "pairs"
    columns = ["image_a", "image_b"] if pairs else ["image"]
    levels = None
    if not pairs:
        kind, levels, _ = choose_rating_head(table, attributes, args.table, None, args.levels, 10)
        levels = levels if kind == "classifier" else None
    heads = _heads(args, task, levels)
    specs = _specs(args)
    settings = head_settings(args)
    images = pd.Series(pd.unique(table[columns].to_numpy().ravel()), name="image")
    position = pd.Series(np.arange(len(images)), index=images.to_numpy())
    codes = np.column_stack([position.loc[table[c].to_numpy()].to_numpy() for c in columns])
    truth = table[attributes].to_numpy(np.float64)
    try:
        folds = list(ImageDisjointSplit(n_splits=args.folds, random_state=args.seed).split(table[columns]))
    except ValueError as exc:
        raise CLIError(f"{args.table}: {exc}") from exc
    rows = []
    for spec, sources in specs:
        Z, sizes, embed_seconds = args.embed(spec, sources, images)
        log(f"{spec}: embedded {len(images)} images in {embed_seconds:.1f} s ({Z.shape[1]} features)")
        for head_name in heads:
            fold_accs, fold_maes, per_attribute, start = [], [], [], time.perf_counter()
            for train, test in folds:
                train_images = np.unique(codes[train])
                scaled = BlockScaler(block_sizes=sizes).fit(Z[train_images]).transform(Z)

                difference = pairs and head_name == "logistic"
                X_train, X_test = (_row_features(scaled, codes[rows], difference) for rows in (train, test))
                pred = _fit_predict(head_name, settings, levels, X_train, truth[train], X_test, pairs)
                scores = _scores(pred, truth[test], pairs, levels)
                per_attribute.append(scores["per_attribute"])
                fold_accs.append(float(np.nanmean(scores["per_attribute"])))
                if "mae" in scores:
                    fold_maes.append(scores["mae"])
            metric = "pair_acc" if pairs else "accuracy"
            row = {
                "backbone": spec,
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
            log(f"{spec} / {head_name}: {metric} {row[metric]:.3f} ± {row['fold_sd']:.3f}")
    return pd.DataFrame(rows).set_index(["backbone", "head"])


def cmd_compare(args) -> int:
    from skpercept import cli
    from skpercept._cli_tables import describe_skipped, pick_attributes, refuse_self_comparisons
    from skpercept._io import atomic_write
    from skpercept.report import markdown_table, write_report

    table, _, task, attributes = cli._load_input(args, args.task, attributes=args.attributes)
    if attributes is None:
        attributes, skipped = pick_attributes(table, args.table, args.attributes, exclude=["user_id"])
        if skipped:
            cli._log(args, f"Columns not used as attributes: {describe_skipped(skipped)}.")
    elif task == "rating" and args.levels is None:
        args.levels = [1.0, 2.0, 3.0, 4.0]
    if task == "pairs":
        refuse_self_comparisons(table, args.table)
        cli.check_pair_labels(table, attributes, args.table)

    def embed(spec, sources, images):
        with cli._image_errors(args, table, task):
            return _embed(args, spec, sources, images)

    args.embed = embed
    frame = run_compare(args, table, task, attributes, lambda m: cli._log(args, m))
    print(markdown_table(frame))
    if args.output:
        output = Path(args.output)
        cached = (
            "no cache"
            if args.no_cache
            else "embeddings read from the cache where present (use --no-cache to time them)"
        )
        try:
            write_report(
                output,
                tables={"Backbones × heads": frame},
                title="skpercept compare",
                intro=(
                    f"`{args.table}`: {len(table)} {task} rows, attributes {', '.join(attributes)}; "
                    f"{args.folds}-fold image-disjoint cross-validation (seed {args.seed}). fold_sd = spread of "
                    f"the folds' scores; embed_s = embedding time of all images ({cached}); fit_s = "
                    "fitting and scoring over all folds."
                ),
            )
            with atomic_write(output / "compare.csv", "w", encoding="utf-8", newline="") as file:
                frame.to_csv(file)
        except OSError as exc:
            raise CLIError(
                f"cannot write to {args.output}: {exc.strerror or exc}; files already there were kept whole."
            ) from exc
        cli._log(args, f"Wrote {output / 'report.md'} and {output / 'compare.csv'}.")
    return 0


def add_compare_parser(sub, common, backbone_options) -> None:
    from skpercept._cli_models import add_head_options

    p = sub.add_parser(
        "compare",
        help="cross-validate several backbones and heads on your table: one table of accuracy, spread and time",
        description="Embed the table's images with each backbone (timed), then fit each head on image-disjoint "
        "folds and score the held-out rows: accuracy and MAE for ratings, pair accuracy for comparisons, with "
        "the spread over folds. Printed, and written as OUTPUT/report.md and OUTPUT/compare.csv.",
    )
    common(p)
    p.add_argument("--backbones", required=True, help="comma-separated backbones, e.g. lite0,dlib,lite0+dlib")
    backbone_options(p, single=False)
    p.add_argument(
        "--heads",
        help=f"comma-separated heads (ratings: {', '.join(RATING_HEADS)}; pairs: {', '.join(PAIR_HEADS)}); "
        "default ridge + classifier (or regressor) / logistic + ranker",
    )
    p.add_argument("--task", choices=["rating", "pairs"], help="as in fit")
    p.add_argument("--attributes", nargs="+", help="as in fit")
    p.add_argument("--levels", nargs="+", type=float, help="as in fit")
    p.add_argument("--folds", type=int, default=5, help="image-disjoint folds (default 5)")
    add_head_options(p, "the MLP heads")
    p.add_argument("--output", help="folder for report.md and compare.csv")
    p.set_defaults(func=cmd_compare)
