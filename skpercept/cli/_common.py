"""What every command shares: its options as typed values, the input table, users, images, writing.

A command's ``run(options)`` turns the argparse namespace into the typed values below once
(:class:`Runtime`, :class:`TableSource`, :class:`BackboneChoice`, :class:`HeadChoice`); nothing
past that point reads the namespace.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from skpercept._utils import resolve_device
from skpercept.cli._folder import TABLE_OPTIONS, load_folder
from skpercept.cli._models import AVERAGE_PERSON, image_columns
from skpercept.cli._tables import (
    CLIError,
    image_rows,
    infer_task,
    leading_zero_notes,
    match_user_ids,
    read_table,
    resolve_images,
    rows_text,
    user_ids,
)
from skpercept.embed import (
    DlibFaceEmbedder,
    ImageLoadError,
    backbone_names,
    default_cache_dir,
    get_backbone,
    make_backbones,
    parse_backbones,
)
from skpercept.heads import HeadSettings
from skpercept.recipes import make_featurizer

_EMBEDDER_ROW = re.compile(r" \(row \d+(, column [^)]*)?\)$")


def log(message: str) -> None:
    """Status for the person at the terminal: stderr, so that stdout holds only results."""
    print(message, file=sys.stderr, flush=True)


# -- typed options ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Runtime:
    """The options every command takes: the embedding cache, the device, progress bars, the seed."""

    cache_dir: Path | None
    device: str
    progress: bool
    seed: int
    debug: bool

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> Runtime:
        if options.no_cache:
            cache = None
        else:
            cache = Path(options.cache_dir) if options.cache_dir else default_cache_dir()
            if cache.exists() and not cache.is_dir():
                raise CLIError(f"--cache-dir {cache} is a file; give a folder for the embedding cache.")
        try:
            resolve_device(options.device)  # a device this machine lacks fails here, before any work
        except (ValueError, RuntimeError) as exc:
            raise CLIError(f"--device {options.device}: {exc}") from exc
        return cls(cache, options.device, not options.no_progress, options.seed, options.debug)


@dataclass(frozen=True)
class TableSource:
    """Where the judgments come from: a table file, or a folder of the reference schema's tables."""

    path: Path
    sheet: str | None
    image_root: Path | None
    sep: str | None
    encoding: str
    one_means: str | None
    files: Mapping[str, str | None]

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> TableSource:
        files = {kind: getattr(options, _dest(option)) for kind, (option, _) in TABLE_OPTIONS.items()}
        return cls(
            path=Path(options.table),
            sheet=options.sheet,
            image_root=Path(options.image_root) if options.image_root else None,
            sep=options.sep,
            encoding=options.encoding,
            one_means=options.one_means,
            files=files,
        )

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()


@dataclass(frozen=True)
class BackboneChoice:
    """``--backbone`` (or one entry of ``--backbones``), its ``--pretrained`` values, flip averaging
    and ``--face-upsample``."""

    spec: str
    pretrained: tuple[str, ...]
    flip: bool
    face_upsample: int = 0

    @classmethod
    def from_options(cls, options: argparse.Namespace, spec: str | None = None) -> BackboneChoice:
        spec = spec or options.backbone
        check_face_upsample(options.face_upsample, [spec], "--backbone")
        return cls(spec, tuple(options.pretrained or ()), not options.no_flip, options.face_upsample)


@dataclass(frozen=True)
class HeadChoice:
    """``--epochs``, ``--hidden`` and ``--ensemble``: the MLP head settings ``fit`` and ``compare`` take."""

    epochs: int | None
    hidden: tuple[int, ...] | None
    ensemble: int | None

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> HeadChoice:
        hidden = tuple(options.hidden) if options.hidden is not None else None
        return cls(options.epochs, hidden, options.ensemble)

    def settings(self, runtime: Runtime) -> HeadSettings:
        """The preset head settings with these options applied."""
        settings = HeadSettings(seed=runtime.seed, device=runtime.device)
        if self.epochs is not None:
            settings.max_epochs = self.epochs
        if self.hidden is not None:
            settings.hidden = self.hidden
        if self.ensemble is not None:
            settings.n_ensemble = self.ensemble
        return settings


@dataclass(frozen=True)
class TableCommand:
    """The typed options of a command that reads a table: its source and the runtime, then the
    command's own (``_own_options``)."""

    source: TableSource
    runtime: Runtime

    @classmethod
    def from_options(cls, options: argparse.Namespace):
        return cls(
            source=TableSource.from_options(options),
            runtime=Runtime.from_options(options),
            **cls._own_options(options),
        )

    @classmethod
    def _own_options(cls, options: argparse.Namespace) -> dict:
        return {}


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


# -- values checked where they enter ------------------------------------------------------------
def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (an error names the value)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def finite_number(low: float | None = None, high: float | None = None, *, above: bool = False):
    """An argparse type: a finite number in ``[low, high]`` (``above``: strictly above ``low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if low is not None and (value <= low if above else value < low):
            raise argparse.ArgumentTypeError(
                f"must be {'above' if above else 'at least'} {low:g}, got {value:g}"
            )
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:g}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse


# -- options on the parser ----------------------------------------------------------------------
def add_table_options(p: argparse.ArgumentParser) -> None:
    """The input table (or reference-schema folder) and how to read it."""
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
    group = p.add_argument_group("a folder of the reference system's Excel tables")
    group.add_argument(
        "--one-means",
        choices=["first", "second"],
        help="required to read comparisons: what the value 1 says (first = the pair's first image, im1, "
        "was chosen); never guessed",
    )
    for kind, (option, default) in TABLE_OPTIONS.items():
        group.add_argument(option, help=f"file name of the {kind} table in the folder (default {default})")


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """The cache, device, progress, seed and debug options of every command."""
    p.add_argument(
        "--cache-dir", help="embedding cache folder (default: ~/.cache/skpercept or $SKPERCEPT_CACHE_DIR)"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=whole_number(0), default=0, help="random seed (default 0)")
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback for input errors too (to report a bug)"
    )


def add_backbone_options(p: argparse.ArgumentParser, single: bool = True) -> None:
    """``--backbone`` (``compare`` takes ``--backbones`` instead), ``--pretrained``, ``--no-flip``,
    ``--face-upsample``."""
    if single:
        plain = ", ".join(backbone_names(family=False))
        families = " or ".join(f"{n}:<model>" for n in backbone_names(family=True))
        p.add_argument(
            "--backbone",
            default="lite0",
            help=f"image features: {plain} (registered backbones; lite0/lite2 are the shipped "
            f"EfficientNet-Lite0/-Lite2, dlib the face descriptor, landmarks the face's geometry; both need "
            f"skpercept[face]), or {families} (open_clip also takes a config.json), several joined by '+' "
            "(e.g. lite0+dlib+landmarks); default lite0",
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
    add_face_upsample_option(p)


def add_face_upsample_option(p: argparse.ArgumentParser) -> None:
    """``--face-upsample``: what a ``NoFaceWarning`` suggests trying."""
    p.add_argument(
        "--face-upsample",
        type=whole_number(0),
        default=0,
        metavar="N",
        help="times the dlib and landmarks backbones' face detector upsamples each image before "
        "searching: 1 finds smaller faces (about 4x slower per step); default 0",
    )


def check_face_upsample(upsample: int, specs: Sequence[str], option: str) -> None:
    """``--face-upsample`` needs a backbone with dlib's face detector among ``specs``."""
    if not upsample:
        return
    for spec in specs:
        for part in spec.split("+"):
            try:
                estimator = get_backbone(part.strip())[0].estimator
            except ValueError:  # an unknown name: parse_backbones names it
                continue
            if isinstance(estimator, type) and issubclass(estimator, DlibFaceEmbedder):
                return
    raise CLIError(
        f"--face-upsample {upsample} sets the face detector of the dlib and landmarks backbones, and "
        f"{option} {','.join(specs)} has neither; add one (e.g. {specs[0]}+dlib) or drop the option."
    )


def add_head_options(p: argparse.ArgumentParser, what: str = "the head") -> None:
    """``--epochs``, ``--hidden`` and ``--ensemble`` (see :class:`HeadChoice`)."""
    p.add_argument("--epochs", type=whole_number(1), help=f"maximum training epochs of {what}")
    p.add_argument(
        "--hidden",
        type=whole_number(1),
        nargs="*",
        help=f"hidden layer sizes of {what} (default 128; none: linear)",
    )
    p.add_argument(
        "--ensemble",
        type=whole_number(1),
        metavar="N",
        help=f"train N nets of {what} and average them (n_ensemble; default 1, the demo uses 5): better "
        "ordered and calibrated, N times the training time",
    )


# -- input --------------------------------------------------------------------------------------
@dataclass
class Loaded:
    """The judgments with resolved image paths, the table as read, its task and (folders) attributes."""

    table: pd.DataFrame
    raw: pd.DataFrame
    task: str
    attributes: list[str] | None
    source: TableSource

    @property
    def from_folder(self) -> bool:
        """Rows are judgments of a reference-schema folder, named by ``judgment_id``."""
        return self.source.is_folder

    def locate(self, index) -> str:
        """The rows of ``index`` as the user finds them: spreadsheet rows, or judgment ids."""
        if self.from_folder:
            return "judgment_id " + ", ".join(repr(j) for j in self.table.loc[index, "judgment_id"])
        return rows_text(index)


def load_input(
    source: TableSource, task: str | None = None, *, model_task: bool = False, attributes=None
) -> Loaded:
    """Read the table (or folder) of ``source``, resolve its image paths and tell its task."""
    if source.is_folder:
        table, task, found = load_folder(
            source.path, source.files, source.one_means, source.image_root, task, attributes, log=log
        )
        return Loaded(table, table.copy(), task, found, source)
    raw = read_table(source.path, source.sheet, sep=source.sep, encoding=source.encoding)
    task = infer_task(raw, source.path, task, model_task=model_task)
    root = source.image_root if source.image_root else source.path.resolve().parent
    if not root.is_dir():
        raise CLIError(f"--image-root {root} is not a folder.")
    return Loaded(resolve_images(raw, image_columns(task), root, source.path), raw, task, None, source)


def match_users(loaded: Loaded, info: dict, user: str | None = None) -> None:
    """Replace the user ids by the model's id form; warn (with counts) where they differ.

    ``user`` (``predict --user ID``) makes every row that person's; a table without a user column
    is predicted for the average person, which is said.
    """
    table, path = loaded.table, loaded.source.path
    if not info.get("users"):
        if user is not None:
            raise CLIError(f"--user {user}: this model was fitted without people (no user column).")
        if "user_id" in table.columns:
            log(f"note: this model was fitted without people; the 'user_id' column of {path} is not used.")
        return
    if user is not None:
        if "user_id" in table.columns:
            log(f"--user {user}: the table's 'user_id' column is replaced by this person.")
        table["user_id"] = str(user)
    if "user_id" not in table.columns:
        log(f"{path} has no 'user_id' column: predicting for the average person.")
        table["user_id"] = AVERAGE_PERSON
        return
    ids, kind = user_ids(table, path)
    table["user_id"] = ids
    if user is not None:
        if table["user_id"].iloc[0] not in set(info.get("user_ids", ())):
            log(f"--user {user}: the model never saw this person; predicting for the average person.")
        return
    for note in [*leading_zero_notes(ids, path), *match_user_ids(ids, kind, info, path, loaded.locate)]:
        log(f"warning: {note}")


@contextmanager
def image_errors(loaded: Loaded) -> Iterator[None]:
    """An image that fails to load becomes an error naming the table's row and column."""
    try:
        yield
    except ImageLoadError as exc:
        table = loaded.table
        rows, column = image_rows(table, image_columns(loaded.task), exc.source)
        if loaded.from_folder and rows:
            shown = ", ".join(repr(j) for j in table.loc[rows[:5], "judgment_id"])
            where = f" (judgment_id {shown}{' ...' if len(rows) > 5 else ''}, column {column!r})"
        else:
            where = f" {rows_text(rows)}, column {column!r}" if rows else ""
        # the embedder counts its own input's rows from 0; the table's rows are named instead
        reason = _EMBEDDER_ROW.sub("", exc.reason)
        raise CLIError(
            f"{loaded.source.path}{where}: cannot load image {exc.source}: {reason}. Replace the file or "
            "remove the row(s)."
        ) from exc


# -- features -----------------------------------------------------------------------------------
def make_backbones_for(
    choice: BackboneChoice, runtime: Runtime, option: str = "--backbone"
) -> tuple[dict, dict[str, str]]:
    """The embedders of a backbone choice and the weights given to its family backbones.

    A bad name or weights file is an error naming the option.
    """
    try:
        sources = parse_backbones(choice.spec, choice.pretrained)
        custom = {name: src for name, src in sources.items() if src is not None}
        backbones = make_backbones(
            list(sources),
            flip=choice.flip,
            cache_dir=runtime.cache_dir,
            device=runtime.device,
            progress=runtime.progress,
            pretrained=custom,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(f"{option} {choice.spec}: {exc}") from exc
    if choice.face_upsample:
        for embedder in backbones.values():
            if isinstance(embedder, DlibFaceEmbedder):
                embedder.set_params(upsample=choice.face_upsample)
    return backbones, custom


def featurizer_for(choice: BackboneChoice, runtime: Runtime):
    """The image featurizer of ``--backbone`` / ``--pretrained`` and the info it is saved with."""
    backbones, custom = make_backbones_for(choice, runtime)
    try:
        featurizer = make_featurizer(backbones)
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(f"--backbone {choice.spec}: {exc}") from exc
    info: dict = {"backbone": choice.spec}
    if custom:
        info["pretrained"] = custom
    configs = {}
    for name in backbones:
        library, _, model = name.partition(":")
        if library == "open_clip" and model.lower().endswith(".json"):
            configs[Path(model).stem] = Path(model).expanduser().read_text()
    if configs:
        info["open_clip_configs"] = configs
    return featurizer, info
