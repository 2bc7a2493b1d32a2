"""Labelling: a local web app that collects judgments, asks the most useful question next and
learns each labeller's taste as they click (``skpercept label FOLDER``).

The parts, each usable alone: :class:`LabelStore` (the judgments in SQLite or PostgreSQL, each
committed before it is acknowledged, each click stored once), :class:`LiveLearner` (the next
question from :func:`~skpercept.personal.suggest_pairs` / :func:`~skpercept.personal.suggest_items`
and each labeller's model, updated on a background thread), :class:`LabelProject` (a folder,
its database, its model and its outputs), :func:`create_app` (the Flask app) and the exports
(:func:`export_reference`, :func:`export_tables`) and :func:`import_judgments`.
The web side needs the ``label`` extra (``pip install skpercept[label]``).
"""

from skpercept.label._export import REFERENCE_FILES, export_reference, export_tables, import_judgments
from skpercept.label._learner import STRATEGIES, EmbeddingLookup, LiveLearner
from skpercept.label._project import (
    LabelProject,
    UnsafePathError,
    default_workspace,
    project_images,
    resolve_image,
)
from skpercept.label._store import KINDS, Judgment, JudgmentError, LabelStore, database_url


def __getattr__(name: str):
    # The web side imports Flask (the ``label`` extra) only when it is asked for.
    if name == "create_app":
        from skpercept.label._app import create_app

        return create_app
    raise AttributeError(f"module 'skpercept.label' has no attribute {name!r}")


__all__ = [
    "KINDS",
    "REFERENCE_FILES",
    "STRATEGIES",
    "EmbeddingLookup",
    "Judgment",
    "JudgmentError",
    "LabelProject",
    "LabelStore",
    "LiveLearner",
    "UnsafePathError",
    "create_app",
    "database_url",
    "default_workspace",
    "export_reference",
    "export_tables",
    "import_judgments",
    "project_images",
    "resolve_image",
]
