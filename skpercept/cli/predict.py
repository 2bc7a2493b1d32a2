"""``skpercept predict``: every input column unchanged plus prediction columns, as a CSV file.

The prediction columns cannot pass for labels: ``pred_<attribute>`` (and
``pred_<attribute>_expected``, ``p_<attribute>_<level>`` for a head of classes),
``p_<attribute>_a`` (P(image_a preferred)) for pairs, ``pred_<attribute>_score`` for single
images scored by a pair model.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from skpercept.cli._common import (
    TableCommand,
    add_runtime_options,
    add_table_options,
    image_errors,
    load_input,
    log,
    match_users,
)
from skpercept.cli._models import MODEL_HELP, image_columns, load_model, predict_table, use_runtime
from skpercept.cli._outputs import check_outputs, predict_outputs, table_inputs, write_file
from skpercept.cli._tables import CLIError


@dataclass(frozen=True)
class PredictOptions(TableCommand):
    """``skpercept predict``'s options as typed values."""

    model: Path
    output: Path
    user: str | None

    @classmethod
    def _own_options(cls, options: argparse.Namespace) -> dict:
        return dict(model=Path(options.model), output=Path(options.output), user=options.user)


def predict(options: PredictOptions) -> int:
    """Write the model's predictions for the table to ``options.output``."""
    path = options.source.path
    model, info = load_model(options.model, log=log)
    loaded = load_input(options.source, info["task"] if options.source.is_folder else None)
    table, raw, task = loaded.table, loaded.raw, loaded.task
    check_outputs(
        predict_outputs(options.output),
        [*table_inputs(loaded, image_columns(task)), (options.model, "the model")],
    )
    runtime = options.runtime
    use_runtime(model, runtime.cache_dir, runtime.progress, runtime.device)
    match_users(loaded, info, user=options.user)
    with image_errors(loaded):
        predictions = predict_table(model, info, table, task)
    clash = [c for c in predictions.columns if c in raw.columns]
    if clash:
        raise CLIError(
            f"{path} already has column(s) {clash}, which predict writes; rename them (or predict "
            "from the table without them)."
        )
    if options.user is not None:
        raw = raw.assign(user_id=table["user_id"])
    result = pd.concat([raw, predictions], axis=1)  # every input column is kept, as read
    write_file(options.output, "predictions", lambda f: result.to_csv(f, index=False), "w", newline="")
    log(f"Wrote {len(result)} predictions to {options.output}.")
    return 0


def add_parser(subparsers) -> None:
    """Add ``predict`` to the command's subparsers."""
    p = subparsers.add_parser("predict", help="write predictions for a table of images or pairs")
    add_table_options(p)
    add_runtime_options(p)
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--output", default="predictions.csv", help="csv to write (default predictions.csv)")
    p.add_argument(
        "--user",
        metavar="ID",
        help="predict for this person (a model fitted with people; an id it never saw gets the average person)",
    )
    p.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    """Run ``predict`` with the parsed command line."""
    return predict(PredictOptions.from_options(options))
