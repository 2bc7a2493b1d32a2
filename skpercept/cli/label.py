"""``skpercept label``: a local web app to label a folder of images, learning each labeller live.

``skpercept label FOLDER --attributes trustworthy`` embeds the folder's images once (with the
embedding cache), opens the project's database (``FOLDER-labels/labels.sqlite`` unless
``--db``), makes a private link for each ``--labellers`` id that has none yet and an admin link,
prints them, and serves the app on 127.0.0.1 until Ctrl-C. ``--export``, ``--import`` and
``--apply`` do their job on the project's database and exit without serving. The photo folder is
only ever read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from skpercept.cli._common import (
    BackboneChoice,
    Runtime,
    add_backbone_options,
    add_runtime_options,
    featurizer_for,
    finite_number,
    log,
    whole_number,
)
from skpercept.cli._models import load_model, use_runtime
from skpercept.cli._outputs import check_outputs
from skpercept.cli._tables import CLIError

_DEFAULT_PORT = 8765


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _project_options(options: argparse.Namespace) -> dict:
    kind, levels, names = options.kind, options.levels, _names(options.level_names)
    attributes = _names(options.attributes)
    if options.keep_delete:
        kind, levels, names = "rating", 2, names or ["delete", "keep"]
        attributes = attributes or ["keep"]
    if not attributes:
        raise CLIError("--attributes: name what to ask about (e.g. --attributes trustworthy,attractive).")
    if names and len(names) != levels:
        raise CLIError(f"--level-names: {len(names)} names for {levels} levels.")
    return {"attributes": attributes, "kind": kind, "levels": levels, "level_names": names or None}


def _embeddings(folder: Path, items: list[str], options: argparse.Namespace, runtime: Runtime) -> np.ndarray:
    choice = BackboneChoice.from_options(options)
    featurizer, _ = featurizer_for(choice, runtime)
    log(f"Embedding {len(items)} images with {choice.spec} (cached for next time)…")
    return np.asarray(featurizer.fit_transform([str(folder / item) for item in items]), dtype=np.float32)


def given_trunk_note(model) -> str | None:
    """A one-line note when a given pairs model's people act on a hidden layer, else None.

    A labeller is added to a given model through the representation its people were fitted with
    (``h(x)·(w + V u)``); a hidden layer trained on many people keeps mostly the direction their
    tastes share, so a labeller whose taste differs barely moves it (``docs/benchmarks.md``,
    "Labelling in a browser": +0.002 to +0.042 after 80 pairs against +0.038 to +0.063 with the
    linear trunk; measured on pairs, so ``label`` says it for pairs projects). The app's own
    models are linear.
    """
    head = model.steps[-1][1] if hasattr(model, "steps") else model
    sizes = tuple(getattr(head, "hidden_layer_sizes_", ()) or ())
    if not sizes:
        return None
    shown = ", ".join(str(int(n)) for n in sizes)
    layers = "hidden layer" if len(sizes) == 1 else "hidden layers"
    return (
        f"note: --model's people act on its {layers} ({shown} units), which keeps mostly the taste "
        "its people share: labellers who differ will move it little. For a model labellers are added to, "
        "fit it linear: `skpercept fit TABLE --hidden --model FILE` (--hidden with no sizes)."
    )


def run(options: argparse.Namespace) -> int:
    """Run ``label`` with the parsed command line."""
    from skpercept.label import (
        LabelProject,
        LiveLearner,
        create_app,
        export_reference,
        export_tables,
        import_judgments,
        project_images,
    )

    try:
        import flask  # noqa: F401 - the web side
    except ModuleNotFoundError:
        raise CLIError("skpercept label needs the label extra: pip install 'skpercept[label]'.") from None
    folder = Path(options.folder)
    if not folder.is_dir():
        raise CLIError(f"{folder} is not a folder.")
    runtime = Runtime.from_options(options)
    settings = _project_options(options)
    try:
        items = project_images(folder)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from exc
    if len(items) < 2:
        raise CLIError(f"{folder}: {len(items)} image(s) found; labelling needs at least two.")
    serving = not (options.export or options.import_from or options.apply)
    if options.export:
        _check_export(folder, items, Path(options.export), options)
    if options.db:
        _check_db(options.db)
    model, embeddings = None, None
    if serving or options.apply:
        if options.model:
            model, info = load_model(Path(options.model), log)
            try:
                LiveLearner.check_model(
                    info, kind=settings["kind"], levels=settings["levels"], attributes=settings["attributes"]
                )
            except ValueError as exc:
                raise CLIError(f"--model {options.model}: {exc}") from exc
            use_runtime(model, runtime.cache_dir, runtime.progress, runtime.device)
            note = given_trunk_note(model) if settings["kind"] == "pairs" else None
            if note:
                log(note)
        else:
            embeddings = _embeddings(folder, items, options, runtime)
    try:
        project = LabelProject(
            folder,
            settings["attributes"],
            kind=settings["kind"],
            levels=settings["levels"],
            level_names=settings["level_names"],
            db=options.db,
            workspace=options.workspace,
            embeddings=embeddings,
            model=model,
            items=items,
            strategy=options.strategy,
            update_every=options.update_every,
            explore=options.explore,
            random_state=runtime.seed,
            background=serving,
        )
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    try:
        if options.import_from:
            try:
                added = import_judgments(
                    project.store, folder, options.import_from, one_means=options.one_means
                )
            except ValueError as exc:
                raise CLIError(str(exc)) from exc
            log(f"Imported {added} new judgments from {options.import_from}.")
        if options.export:
            out = Path(options.export)
            files = [
                *export_tables(project.store, folder, out).values(),
                *export_reference(project.store, folder, out / "reference").values(),
            ]
            log("Wrote " + ", ".join(str(p) for p in files) + ".")
        if options.apply:
            return _apply(project, options)
        if not serving:
            return 0
        return _serve(project, create_app(project), options)
    finally:
        project.close()


def _check_db(db: str) -> None:
    """Before any work: ``--db`` is a database that opens (a URL SQLAlchemy reads, with its driver
    installed, a server that answers, an SQLite file that can be created); else one line why."""
    from skpercept.label import LabelStore

    try:
        LabelStore(db).close()
    except (ValueError, OSError) as exc:
        raise CLIError(f"--db {exc}") from exc


def _check_export(folder: Path, items: list[str], out: Path, options: argparse.Namespace) -> None:
    """Before any work: ``--export`` writes outside the photo folder and onto none of the run's inputs."""
    from skpercept.label import REFERENCE_FILES

    if out.resolve().is_relative_to(folder.resolve()):
        raise CLIError(
            f"--export {out} is inside the photo folder {folder}, which is only read; export elsewhere."
        )
    outputs = {out / name: f"--export {out}" for name in ("pairs.csv", "ratings.csv")}
    outputs.update({out / "reference" / name: f"--export {out}" for name in REFERENCE_FILES.values()})
    inputs = [(folder / item, "an image of the folder") for item in items]
    if options.import_from:
        source = Path(options.import_from)
        found = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else [source]
        inputs += [(p, "--import") for p in found]
    if options.db and "://" not in options.db:
        inputs.append((Path(options.db), "--db"))
    check_outputs(outputs, inputs)


def _apply(project, options: argparse.Namespace) -> int:
    labeller = options.apply
    if labeller not in project.store.labellers():
        raise CLIError(f"--apply {labeller}: no such labeller; the project has {project.store.labellers()}.")
    for attribute in project.attributes:
        try:
            project.learner.refresh(labeller, attribute)  # from every judgment stored
        except RuntimeError as exc:
            raise CLIError(f"--apply: {exc}") from exc
    try:
        files = project.apply(labeller, options.output, copy_keepers=options.copy_keepers)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    log("Wrote " + ", ".join(str(p) for p in files.values()) + ". No photo was moved or deleted.")
    skipped = getattr(project, "skipped_copies", [])
    if skipped:
        log(f"--copy-keepers: {len(skipped)} already there, not overwritten: {', '.join(skipped[:5])}")
    return 0


def _serve(project, app, options: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    store = project.store
    known = set(store.labellers())
    base = f"http://{options.host}:{options.port}"
    links = {}
    for labeller in _names(options.labellers):
        if labeller not in known:
            try:
                links[labeller] = f"{base}/l/{store.add_labeller(labeller)}/"
            except ValueError as exc:
                raise CLIError(f"--labellers: {exc}") from exc
    admin = store.add_labeller("admin", admin=True)
    if options.host not in ("127.0.0.1", "localhost", "::1"):
        log(
            f"warning: listening on {options.host}: anyone who can reach this machine and has a link can label."
        )
    log(
        f"{len(project.items)} images, {project.kind}, attributes {', '.join(project.attributes)}; "
        f"database {store.shown_url}; outputs in {project.workspace}."
    )
    for labeller, link in links.items():
        log(f"  {labeller}: {link}")
    if known:
        log(
            f"  {len(known)} labeller(s) from before keep their links ({', '.join(sorted(known))}); the admin page "
            "makes new ones."
        )
    log(f"  admin: {base}/admin/{admin}/")
    log("Ctrl-C stops the app; every judgment is already in the database.")
    server = make_server(options.host, options.port, app, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log("Stopped.")
    finally:
        server.server_close()
    return 0


def add_parser(subparsers) -> None:
    """Add ``label`` to the command's subparsers."""
    p = subparsers.add_parser(
        "label",
        help="label a folder of images in a browser: pairs or ratings, the next question chosen by the model",
        description="Serve a local labelling app for the images under FOLDER: each labeller opens a private "
        "link and answers 'which of these two is more X' or rates images 1-N (keyboard shortcuts, undo); the "
        "next question is the one their model is least sure about, and the model learns from their answers in "
        "the background. Judgments are committed to a database (SQLite, or PostgreSQL by URL) before the page "
        "says saved. --export writes them as the plain tables `skpercept fit` reads and as the reference "
        "system's four Excel tables; --apply writes a labeller's ranking (and keep/delete) as CSV and a contact "
        "sheet. The photo folder is never written to.",
    )
    p.add_argument("folder", help="folder of images (searched recursively)")
    p.add_argument("--attributes", help="what to ask about, comma-separated (e.g. trustworthy,attractive)")
    p.add_argument(
        "--kind", choices=("pairs", "rating"), default="pairs", help="which of two (default) or ratings"
    )
    p.add_argument("--levels", type=whole_number(2), default=4, help="rating levels 1..N (default 4)")
    p.add_argument("--level-names", help="names of the rating levels, comma-separated (e.g. delete,keep)")
    p.add_argument(
        "--keep-delete",
        action="store_true",
        help="a keep/delete project: two-level ratings named delete,keep of the attribute 'keep'",
    )
    p.add_argument(
        "--labellers", help="labeller ids, comma-separated: a private link is printed for each new one"
    )
    p.add_argument(
        "--db",
        help="database: an SQLite file or a SQLAlchemy URL such as postgresql+psycopg://user@host/db "
        "(default WORKSPACE/labels.sqlite)",
    )
    p.add_argument(
        "--workspace",
        help="folder for the database, exports and results (default FOLDER-labels beside FOLDER)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument(
        "--port", type=whole_number(1), default=_DEFAULT_PORT, help=f"port (default {_DEFAULT_PORT})"
    )
    p.add_argument(
        "--model",
        help="a personal model from `skpercept fit` (on a table with a user_id column) to ask its questions "
        "from the start: a pairs model for a pairs project, a rating classifier on the levels 1..N for a "
        "rating project; it must know every --attributes (one of several is fine). Labellers are added to it; "
        "it is never refitted",
    )
    p.add_argument(
        "--strategy",
        choices=("information", "variance", "uncertainty", "random"),
        default="variance",
        help="how the model chooses the next question (default variance: what most reduces the uncertainty of "
        "the labeller's scores over the folder; information: what tells most about how they differ from the "
        "others; random for comparison)",
    )
    p.add_argument(
        "--explore",
        type=finite_number(0, 1),
        default=0.5,
        help="share of questions drawn at random (preferring ones nobody answered) even when the model has "
        "prepared some (default 0.5; see benchmarks/labelling.py)",
    )
    p.add_argument(
        "--update-every",
        type=whole_number(1),
        default=4,
        help="update a labeller's model after this many of their answers (default 4)",
    )
    p.add_argument(
        "--export",
        metavar="DIR",
        help="write every judgment to DIR (pairs.csv or ratings.csv, and "
        "DIR/reference/ in the reference schema) and exit",
    )
    p.add_argument(
        "--import",
        dest="import_from",
        metavar="TABLE_OR_FOLDER",
        help="add judgments from a table `skpercept fit` reads or a reference-schema folder, and exit",
    )
    p.add_argument(
        "--one-means",
        choices=("first", "second"),
        help="for --import of a reference folder: what the value 1 of a comparison says",
    )
    p.add_argument("--apply", metavar="LABELLER", help="write LABELLER's ranking (and keep/delete) and exit")
    p.add_argument("--output", help="folder for --apply's files (default WORKSPACE/results)")
    p.add_argument(
        "--copy-keepers",
        metavar="DIR",
        help="with --apply on a keep/delete project: copy the photos "
        "predicted keep into DIR (never overwriting; nothing is moved or deleted)",
    )
    add_backbone_options(p)
    add_runtime_options(p)
    p.set_defaults(run=run)
