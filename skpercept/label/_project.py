"""A labelling project: a folder of images, its database, its model, and what it writes.

The folder is only ever read. Everything the project writes (the database by default, exports,
the labellers' results) goes to its workspace, a folder of its own (``<FOLDER>-labels`` beside
the photos unless given), each file written atomically.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skpercept._io import atomic_write
from skpercept.label._learner import LiveLearner
from skpercept.label._store import LabelStore
from skpercept.photos import find_images


class UnsafePathError(ValueError):
    """A requested image name that is not one of the project's images (a path leaving the
    folder, an absolute path, a link pointing outside, or simply unknown).

    Examples
    --------
    >>> from skpercept.label import UnsafePathError
    >>> issubclass(UnsafePathError, ValueError)
    True
    """


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def project_images(folder: str | os.PathLike) -> list[str]:
    """The images under ``folder`` as names relative to it (POSIX separators, sorted), leaving
    out hidden files and links that lead outside the folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skpercept.label import project_images
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "trip").mkdir()
    >>> for name in ("a.jpg", "trip/b.png", "notes.txt"):
    ...     _ = (root / name).write_bytes(b"")
    >>> project_images(root)
    ['a.jpg', 'trip/b.png']
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder.")
    names = []
    for path in find_images(root):
        if _inside(path.resolve(), root):  # a link to a file outside the folder is not an image of it
            names.append(path.relative_to(root).as_posix())
    return sorted(names)


def resolve_image(folder: Path, name: str, items: set[str] | frozenset[str]) -> Path:
    """The file of one of the project's images, checked at the moment it is served.

    Refused with :class:`UnsafePathError`: a name that is not one of ``items`` (which covers
    ``..``, absolute paths and URL-decoded tricks, since names are compared as listed), and a
    file whose real path is now outside the folder (a link swapped in after the listing).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skpercept.label import UnsafePathError, resolve_image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.jpg").write_bytes(b"")
    >>> resolve_image(root, "a.jpg", {"a.jpg"}).name
    'a.jpg'
    >>> try:
    ...     resolve_image(root, "../a.jpg", {"a.jpg"})
    ... except UnsafePathError as exc:
    ...     print(exc)
    '../a.jpg' is not an image of this project.
    """
    if name not in items or name.startswith("/") or "\\" in name or ".." in Path(name).parts:
        raise UnsafePathError(f"{name!r} is not an image of this project.")
    root = folder.resolve()
    path = (root / name).resolve()
    if not _inside(path, root) or not path.is_file():
        raise UnsafePathError(f"{name!r} is not an image of this project.")
    return path


def default_workspace(folder: str | os.PathLike) -> Path:
    """``<FOLDER>-labels`` beside the folder: where a project writes unless told otherwise.

    Examples
    --------
    >>> from skpercept.label import default_workspace
    >>> default_workspace("/photos/trip").as_posix()
    '/photos/trip-labels'
    """
    folder = Path(folder).resolve()
    return folder.parent / f"{folder.name}-labels"


class LabelProject:
    """A folder of images being labelled: the images, the database, the live model, the outputs.

    Parameters
    ----------
    folder : path
        The images (read only; never written, moved or deleted).
    attributes : sequence of str
        What to ask about (e.g. ``['trustworthy']`` or ``['keep']``).
    kind : {'pairs', 'rating'}, default='pairs'
        Which of two, or a rating 1–``levels``.
    levels : int, default=2
        Rating levels (a keep/delete rating has 2: 1 = delete, 2 = keep).
    level_names : sequence of str or None, default=None
        What each level is called on the page (``['delete', 'keep']``); None: the numbers.
    db : str or path or None, default=None
        Database URL or SQLite file; None: ``labels.sqlite`` in the workspace. One that cannot
        be opened is a ValueError or OSError saying why (see :class:`LabelStore`).
    workspace : path or None, default=None
        Where exports and results go; None: :func:`default_workspace`.
    embeddings : array-like of shape (n_images, n_features) or None, default=None
        The images' embeddings, in :attr:`items` order (see ``skpercept label`` for how the
        command computes them). None with no ``model``: questions stay random.
    model : Pipeline or None, default=None
        A fitted personal model to start from, pairs or ratings as the project (see
        :class:`LiveLearner`); it takes absolute image paths.
    **learner_options
        Passed to :class:`LiveLearner` (``strategy``, ``update_every``, ``min_judgments``,
        ``batch``, ``random_state``, ``background``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skpercept.label import LabelProject
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "photos").mkdir()
    >>> for name in ("a.jpg", "b.jpg", "c.jpg"):
    ...     _ = (root / "photos" / name).write_bytes(b"")
    >>> project = LabelProject(root / "photos", ["keep"], kind="rating", levels=2,
    ...                        level_names=["delete", "keep"], background=False)
    >>> project.items, project.workspace.name
    (['a.jpg', 'b.jpg', 'c.jpg'], 'photos-labels')
    >>> project.close()
    """

    def __init__(
        self,
        folder,
        attributes: Sequence[str],
        *,
        kind: str = "pairs",
        levels: int = 2,
        level_names: Sequence[str] | None = None,
        db=None,
        workspace=None,
        embeddings=None,
        model=None,
        items: Sequence[str] | None = None,
        **learner_options,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.items = list(items) if items is not None else project_images(self.folder)
        if len(self.items) < 2:
            raise ValueError(f"{folder}: {len(self.items)} image(s); labelling needs at least two.")
        self._item_set = frozenset(self.items)
        self.workspace = (
            Path(workspace).resolve() if workspace is not None else default_workspace(self.folder)
        )
        if _inside(self.workspace, self.folder):
            raise ValueError(
                f"workspace {self.workspace} is inside the photo folder {self.folder}; the folder is "
                "only read. Choose a workspace outside it."
            )
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.store = LabelStore(db if db is not None else self.workspace / "labels.sqlite")
        names = list(level_names) if level_names else None
        if names is not None and kind == "rating" and len(names) != levels:
            raise ValueError(f"level_names: {len(names)} names for {levels} levels.")
        self.store.configure(attributes=list(attributes), kind=kind, levels=levels, items=self.items)
        settings = self.store.settings()
        self.kind, self.levels, self.attributes = settings["kind"], settings["levels"], settings["attributes"]
        self.level_names = names or [str(level) for level in range(1, self.levels + 1)]
        model_items = [str(self.folder / name) for name in self.items] if model is not None else None
        self.learner = LiveLearner(
            self.store, self.items, embeddings, model=model, model_items=model_items, **learner_options
        )

    def image_path(self, name: str) -> Path:
        """The file of image ``name``, refused (:class:`UnsafePathError`) unless it is one of ours."""
        return resolve_image(self.folder, name, self._item_set)

    def close(self) -> None:
        self.learner.close()
        self.store.close()

    # -- what a labeller's model says, written out --------------------------------------------
    def apply(
        self, labeller: str, out: str | os.PathLike | None = None, *, copy_keepers=None
    ) -> dict[str, Path]:
        """Write a labeller's ranking (and, for a rating project, keep/delete) of every image.

        For each attribute, ``<out>/<labeller>-<attribute>.csv`` (``path, item, rank, score``
        and, for ratings, ``predicted``, ``confidence``, ``p_<level>``; with two levels also
        ``keep``: predicted level 2) and ``<labeller>-<attribute>.html``, a contact sheet in rank
        order. No photo is deleted or moved. ``copy_keepers`` (rating projects with two levels)
        copies the photos predicted ``keep`` into that folder, which must be outside the photo
        folder; a file already there is never overwritten (the copy is skipped and listed).

        Returns the files written, by name.
        """
        from skpercept.label._export import contact_sheet

        out = Path(out).resolve() if out is not None else self.workspace / "results"
        if _inside(out, self.folder):
            raise ValueError(f"{out} is inside the photo folder {self.folder}; write results elsewhere.")
        if copy_keepers is not None and _inside(Path(copy_keepers).resolve(), self.folder):
            raise ValueError(
                f"--copy-keepers {Path(copy_keepers).resolve()} is inside the photo folder {self.folder}."
            )
        out.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for attribute in self.attributes:
            table = self.learner.ranking(labeller, attribute)
            if table.empty:
                raise ValueError(
                    f"{attribute}: no model yet ({len(self.store.judgments(attribute=attribute))} judgments; "
                    f"it starts at {self.learner.min_judgments})."
                )
            table.insert(0, "path", [str(self.folder / item) for item in table["item"]])
            if self.kind == "rating" and self.levels == 2:
                table["keep"] = table["predicted"] == 2
            csv_path = out / f"{labeller}-{attribute}.csv"
            with atomic_write(csv_path, "w", encoding="utf-8", newline="") as f:
                table.to_csv(f, index=False)
            html_path = out / f"{labeller}-{attribute}.html"
            with atomic_write(html_path, "w", encoding="utf-8") as f:
                f.write(contact_sheet(table, self, f"{attribute}: {labeller}'s ranking"))
            written[csv_path.name], written[html_path.name] = csv_path, html_path
            if copy_keepers is not None and "keep" in table:
                self._copy(table[table["keep"]]["item"], Path(copy_keepers))
        return written

    def _copy(self, items, target: Path) -> None:
        target = target.resolve()
        if _inside(target, self.folder):
            raise ValueError(f"--copy-keepers {target} is inside the photo folder {self.folder}.")
        self.skipped_copies: list[str] = []
        for item in items:
            destination = target / item
            if destination.exists():
                self.skipped_copies.append(item)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.image_path(item), destination)

    def progress(self) -> pd.DataFrame:
        """Judgments standing per labeller and attribute (a 0 for none yet)."""
        frame = self.store.judgments()
        people = self.store.labellers()
        counts = frame.groupby(["labeller", "attribute"]).size() if len(frame) else pd.Series(dtype=int)
        rows = [{"labeller": p, **{a: int(counts.get((p, a), 0)) for a in self.attributes}} for p in people]
        return pd.DataFrame(rows, columns=["labeller", *self.attributes])


def check_embeddings(embeddings, items: Sequence[str]) -> np.ndarray:
    """Embeddings as a float32 array with one finite row per item, or a ValueError saying why."""
    values = np.asarray(embeddings, dtype=np.float32)
    if values.ndim != 2 or len(values) != len(items):
        raise ValueError(f"embeddings of shape {values.shape} for {len(items)} images.")
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(f"embeddings of {[items[i] for i in np.flatnonzero(bad)[:5]]} are not finite.")
    return values
