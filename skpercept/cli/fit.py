"""``skpercept fit``: fit a model on the user's table (or reference-schema folder) and save it.

A rating table gets a rating head chosen from its ratings (or ``--head``); a table of pairs a pair
head. With a user column the head learns each person's taste. The saved file is a scikit-learn
``Pipeline`` with a ``skpercept_info_`` dict (:mod:`skpercept.cli`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept._holdout import HoldOutError
from skpercept.cli._common import (
    BackboneChoice,
    HeadChoice,
    TableCommand,
    add_backbone_options,
    add_head_options,
    add_runtime_options,
    add_table_options,
    featurizer_for,
    finite_number,
    image_errors,
    load_input,
    log,
    whole_number,
)
from skpercept.cli._heads import MAX_CLASS_LEVELS
from skpercept.cli._models import (
    build_model,
    fit_heads,
    fit_model,
    image_columns,
    model_input,
    tune_thresholds,
)
from skpercept.cli._outputs import check_outputs, fit_outputs, table_inputs, weights_inputs, write_model
from skpercept.cli._tables import (
    CLIError,
    check_training_attributes,
    describe_skipped,
    leading_zero_notes,
    pick_attributes,
    refuse_self_comparisons,
    user_ids,
)
from skpercept.heads import get_head

_REFERENCE_LEVELS = (1.0, 2.0, 3.0, 4.0)  # the reference schema's rating scale


@dataclass(frozen=True)
class FitOptions(TableCommand):
    """``skpercept fit``'s options as typed values."""

    model: Path
    task: str | None
    attributes: tuple[str, ...] | None
    head: str | None
    levels: tuple[float, ...] | None
    user_column: str | None
    no_users: bool
    backbone: BackboneChoice
    head_choice: HeadChoice
    class_weight: str | None
    threshold_for: str | None
    folds: int

    @classmethod
    def _own_options(cls, options: argparse.Namespace) -> dict:
        return dict(
            model=Path(options.model),
            task=options.task,
            attributes=tuple(options.attributes) if options.attributes else None,
            head=options.head,
            levels=tuple(options.levels) if options.levels else None,
            user_column=options.user_column,
            no_users=options.no_users,
            backbone=BackboneChoice.from_options(options),
            head_choice=HeadChoice.from_options(options),
            class_weight=options.class_weight,
            threshold_for=options.threshold_for,
            folds=options.folds,
        )


def fit(options: FitOptions) -> int:
    """Fit the model the table calls for and save it to ``options.model``."""
    path = options.source.path
    loaded = load_input(options.source, options.task, attributes=options.attributes)
    table, task, attributes = loaded.table, loaded.task, loaded.attributes
    check_outputs(
        fit_outputs(options.model),
        [
            *table_inputs(loaded, image_columns(task)),
            *weights_inputs(options.backbone.pretrained, options.backbone.spec),
        ],
    )
    levels = options.levels
    if attributes is None:
        attributes, skipped = pick_attributes(
            table, path, options.attributes, exclude=[_user_column(options)]
        )
        if skipped:
            log(f"Columns not used as attributes: {describe_skipped(skipped)}.")
    elif (
        task == "rating"
        and levels is None
        and (options.head is None or get_head(options.head).output == "classes")
    ):
        levels = _REFERENCE_LEVELS
    check_training_attributes(table, attributes, path, task, inferred=options.attributes is None)
    if task == "pairs":
        refuse_self_comparisons(table, path)
    user_column = _people_column(options, table, attributes, path)
    users = user_column is not None
    info_users = {}
    if users:
        table = table.rename(columns={user_column: "user_id"})
        ids, kind = user_ids(table, path)
        table["user_id"] = ids  # canonical text, so that 12, 12.0 and '12' are one person (007 is not 7)
        for note in leading_zero_notes(ids, path):
            log(f"warning: {note}")
        judged = table[attributes].notna().sum(axis=1)
        counts = judged.groupby(ids).sum().astype(int)
        info_users = {
            "user_id_kind": kind,
            "user_ids": sorted(set(ids)),
            "user_counts": {str(k): int(v) for k, v in counts.items()},
        }
        _describe_people(counts)
    featurizer, info_backbone = featurizer_for(options.backbone, options.runtime)
    model, info, why = build_model(
        task,
        table,
        attributes,
        featurizer=featurizer,
        users=users,
        settings=options.head_choice.settings(options.runtime),
        path=path,
        head=options.head,
        levels=levels,
        class_weight=options.class_weight,
        threshold_for=options.threshold_for,
    )
    info.update(attributes=attributes, **info_backbone, **info_users)
    personal = " (per-person deviations on a shared model)" if info.get("personal") else ""
    log(
        f"Fitting a {task} model on {len(table)} rows of {path} "
        f"(attributes: {', '.join(attributes)}; user context: {'yes' + personal if users else 'no'}).\n"
        f"Head: {why}."
    )
    start = time.perf_counter()
    y = table[attributes].to_numpy(np.float64)
    y = y if len(attributes) > 1 else y[:, 0]
    X = model_input(table, info, task)
    with image_errors(loaded), _few_images(table, task, path):
        if options.threshold_for:
            info.update(
                tune_thresholds(
                    model, X, y, info, options.threshold_for, options.folds, options.runtime.seed, log
                )
            )
            for attribute, value in info["thresholds"].items():
                log(f"{attribute}: decision threshold {value:.3f} for {options.threshold_for}.")
        fit_model(model, X, y, info)
    model.skpercept_info_ = info
    write_model(options.model, model)
    log(f"Saved {options.model} ({time.perf_counter() - start:.1f} s).")
    return 0


@contextmanager
def _few_images(table, task: str, path) -> Iterator[None]:
    """Too few images to hold some out for early stopping: say so in the command's terms."""
    try:
        yield
    except HoldOutError as exc:
        n_images = pd.unique(table[image_columns(task)].to_numpy().ravel()).size
        raise CLIError(
            f"{path}: the judgments are of only {n_images} different image(s); training holds some images out "
            "to decide when to stop, and these are too few to split. Add judgments of more images."
        ) from exc


#: ``fit`` warns when most people have fewer judgments than this: too few to move them far from
#: the shared model (their deviations are shrunk toward it by a prior chosen on held-out data).
FEW_JUDGMENTS = 10


def _describe_people(counts: pd.Series) -> None:
    """Say how many people the model learns and how many judgments each has; warn when most
    have too few to differ from the shared model."""
    log(
        f"People: {len(counts)}, with {int(counts.median())} judgments each (median; fewest "
        f"{int(counts.min())}, most {int(counts.max())})."
    )
    few = int((counts < FEW_JUDGMENTS).sum())
    if few > len(counts) / 2:
        log(
            f"warning: {few} of {len(counts)} people have fewer than {FEW_JUDGMENTS} judgments: their "
            "personal models will stay close to the shared one (predictions for them are mostly the "
            "shared model's). Collect more judgments per person, or fit a shared model with --no-users."
        )


def _user_column(options: FitOptions) -> str:
    return options.user_column or "user_id"


def _people_column(options: FitOptions, table, attributes, path) -> str | None:
    """The column naming the person of each judgment, or None for a shared model.

    The default is ``user_id`` when the table has one; a ``--user-column`` the table lacks, or
    one that is also an attribute, is an error; ``--no-users`` says what it leaves out.
    """
    name = _user_column(options)
    if options.no_users:
        if name in table.columns:
            log(f"--no-users: the {name!r} column is not used; one shared model for everyone.")
        return None
    if name not in table.columns:
        if options.user_column is None:
            return None
        raise CLIError(
            f"{path}: --user-column {name!r} is not a column of the table; its columns are {list(table.columns)}."
        )
    if name in attributes:
        raise CLIError(
            f"{path}: --user-column {name!r} is also an attribute; the person's column cannot be learned."
        )
    if name != "user_id" and "user_id" in table.columns:
        raise CLIError(
            f"{path}: --user-column {name!r}, but the table also has a 'user_id' column; rename or drop one of "
            "them, or pass --user-column user_id."
        )
    return name


def add_parser(subparsers) -> None:
    """Add ``fit`` to the command's subparsers."""
    p = subparsers.add_parser(
        "fit", help="fit a model on your table (or reference-schema folder) of ratings or pairs"
    )
    add_table_options(p)
    add_runtime_options(p)
    p.add_argument(
        "--model",
        required=True,
        help="where to save the fitted model: NAME.skops is the safe format (loading it runs no code from "
        "the file: the one to share), any other name (NAME.joblib) a pickle with a checksum",
    )
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
    rating, pairs = fit_heads("rating"), fit_heads("pairs")
    p.add_argument(
        "--head",
        choices=[*rating, *pairs],
        help=f"the head (ratings: {', '.join(rating)}; pairs: {', '.join(pairs)}). Default for ratings: "
        f"classifier for whole-number ratings on at most {MAX_CLASS_LEVELS} levels, else regressor (the "
        "choice and why are printed); for pairs: ranker",
    )
    p.add_argument(
        "--levels",
        nargs="+",
        type=finite_number(),
        help="the rating scale, e.g. --levels 1 2 3 4; a rating outside it is an error "
        "(default: the levels found, which must have no gaps; 1 2 3 4 for a reference-schema folder)",
    )
    people = p.add_mutually_exclusive_group()
    people.add_argument(
        "--user-column",
        metavar="COLUMN",
        help="the column naming the person of each judgment: the model learns each person's taste "
        "(default: user_id when the table has one; a column the table lacks is an error)",
    )
    people.add_argument(
        "--no-users", action="store_true", help="one shared model, whatever person columns the table has"
    )
    add_backbone_options(p)
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
        "--folds",
        type=whole_number(2),
        default=5,
        help="image-disjoint folds for --threshold-for (default 5)",
    )
    p.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    """Run ``fit`` with the parsed command line."""
    return fit(FitOptions.from_options(options))
