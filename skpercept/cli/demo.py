"""``skpercept demo``: the main job on the shipped OMI faces, offline (:func:`skpercept.recipes.run_demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from skpercept.cli._common import Runtime, add_face_upsample_option, add_runtime_options, log, whole_number
from skpercept.cli._outputs import check_outputs, demo_outputs, written_together
from skpercept.cli._tables import CLIError
from skpercept.datasets import OMI_DIR
from skpercept.recipes import DEFAULT_ATTRIBUTES, run_demo


def add_parser(subparsers) -> None:
    """Add ``demo`` to the command's subparsers."""
    p = subparsers.add_parser("demo", help="cross-validate and fit models on the shipped OMI faces (offline)")
    add_runtime_options(p)
    p.add_argument("--output", default="skpercept-demo", help="output folder (default ./skpercept-demo)")
    p.add_argument("--attributes", nargs="+", default=list(DEFAULT_ATTRIBUTES), help="OMI attributes")
    p.add_argument("--folds", type=whole_number(2), default=5, help="image-disjoint folds (default 5)")
    p.add_argument("--no-dlib", action="store_true", help="skip dlib's face descriptor and landmarks")
    add_face_upsample_option(p)
    p.add_argument(
        "--no-flip",
        action="store_true",
        help="no flip averaging of lite0 features (halves lite0's embedding time)",
    )
    p.add_argument("--quick", action="store_true", help="tiny run for smoke tests: few faces, tiny heads")
    p.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    """Cross-validate and fit on the shipped OMI faces; print, save models and a report."""
    if options.face_upsample and options.no_dlib:
        raise CLIError(
            f"--face-upsample {options.face_upsample} sets dlib's face detector, which --no-dlib leaves out; "
            "drop one of the two."
        )
    runtime = Runtime.from_options(options)
    output = Path(options.output)
    check_outputs(
        demo_outputs(output), [(path, "a file of the shipped OMI data") for path in OMI_DIR.rglob("*")]
    )
    with written_together(output, "demo's models and report"):
        _run(options, runtime)
    return 0


def _run(options: argparse.Namespace, runtime: Runtime) -> None:
    run_demo(
        options.output,
        attributes=list(options.attributes),
        folds=2 if options.quick and options.folds == 5 else options.folds,
        seed=runtime.seed,
        device=runtime.device,
        dlib=not options.no_dlib,
        flip=not options.no_flip,
        face_upsample=options.face_upsample,
        quick=options.quick,
        cache_dir=runtime.cache_dir,
        progress=runtime.progress,
        log=log,
    )
