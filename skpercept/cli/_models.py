"""The models of the ``skpercept`` command: build, tune a decision threshold, load, predict.

A saved model is a scikit-learn ``Pipeline`` with a ``skpercept_info_`` dict: the task, the
attributes, the rating levels, the backbone, the people it was trained on (and how many
judgments each gave), and any decision threshold chosen at fit time.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import open_clip
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from skpercept._io import InputFileError, check_input_file
from skpercept._utils import PICKLE_FORMAT, SavedFormatError
from skpercept.cli._heads import choose_rating_head
from skpercept.cli._tables import PAIR_COLUMNS, CLIError, rows_text
from skpercept.embed import BaseEmbedder
from skpercept.heads import HeadSettings, get_head, head_names, make_head
from skpercept.model_selection import ImageDisjointSplit
from skpercept.persistence import SAFE_SUFFIX, ModelFileError
from skpercept.persistence import load_model as load_saved_model
from skpercept.personal import UserEncoder
from skpercept.preprocessing import PairFeatures

#: What a model description (``skpercept_info_``) must hold.
MODEL_INFO_KEYS = ("format", "task", "users", "attributes", "head", "output")
#: The user id that no model was trained on: the average person (UserEncoder's all-zero row).
AVERAGE_PERSON = "(average person)"
# First bytes of the files joblib writes: a pickle (protocol >= 2) or one of its compressors.
_JOBLIB_MAGIC = (b"\x80", b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd")
_THRESHOLD_SPEC = re.compile(r"^(recall|precision)=(0?\.\d+|1(\.0*)?)$|^f1$")


def image_columns(task: str) -> list[str]:
    return list(PAIR_COLUMNS) if task == "pairs" else ["image"]


def check_pair_labels(table: pd.DataFrame, attributes: Sequence[str], path) -> None:
    for column in attributes:
        values = table[column]
        bad = (values.notna() & ((values < 0) | (values > 1))).to_numpy()
        if bad.any():
            found = sorted(set(values[bad].tolist()))[:5]
            raise CLIError(
                f"{path}: pair labels must be 1 (image_a preferred), 0 (image_b) or a share in "
                f"between; column {column!r} has {found} at {rows_text(table.index[bad])}. If your "
                "table says 1/2 for first/second image, convert it first (e.g. 2 - value when 1 means "
                "image_a) — skpercept does not guess which way round it is. A folder of the reference "
                "schema is converted for you with --one-means."
            )


def _personal(head, users: bool, task: str) -> bool:
    """Give the head per-person deviations on the user columns, where the head supports them.

    Pair halves name their person columns by layout ('auto'); a rating row's are given as
    indices at fit time (:func:`fit_model`), since the image features carry no names.
    """
    if users and "user_features" in head.get_params():
        if task == "pairs":
            head.set_params(user_features="auto")
        return True
    return False


def fit_model(model, X, y, info: dict):
    """Fit a pipeline of :func:`build_model`; a personal rating head learns on the user block.

    The rating row is ``[image features | one column per person of X]`` (the ColumnTransformer's
    order; UserEncoder makes one column per distinct id).
    """
    if info.get("personal") and info["task"] == "rating":
        width = int(sum(model.named_steps["features"].transformers[0][1].named_steps["scale"].block_sizes))
        n_people = int(X["user_id"].nunique())
        model.set_params(head__user_features=np.arange(width, width + n_people))
    return model.fit(X, y)


def build_model(
    task: str,
    table: pd.DataFrame,
    attributes: Sequence[str],
    *,
    featurizer,
    users: bool,
    settings: HeadSettings,
    path,
    head: str | None = None,
    levels: Sequence[float] | None = None,
    class_weight: str | None = None,
    threshold_for: str | None = None,
):
    """The unfitted pipeline for a user table, the info dict saved with it, and why this head.

    ``head`` is a registered head that ``skpercept fit`` offers (None: the table decides).
    """
    info = {"format": PICKLE_FORMAT, "task": task, "users": users}
    if head is not None and get_head(head).task != task:
        raise CLIError(
            f"{path}: --head {head} learns from {get_head(head).task} tables; this one holds "
            f"{'pairs' if task == 'pairs' else 'ratings'} (heads for it: {', '.join(fit_heads(task))})."
        )
    if task == "pairs":
        if levels:
            raise CLIError(f"{path}: --levels are for rating tables; this one holds pairs.")
        if class_weight or threshold_for:
            raise CLIError(
                f"{path}: --class-weight and --threshold-for are for two-level rating tables; this one "
                "holds pairs."
            )
        check_pair_labels(table, attributes, path)
        pairs = PairFeatures(
            item_transformer=featurizer, context_transformer=UserEncoder() if users else None
        )
        name = head or "ranker"
        estimator = make_head(name, settings)
        info["head"] = name
        info["output"] = get_head(name).output
        info["personal"] = _personal(estimator, users, task)
        pipeline = Pipeline([("pairs", pairs), ("head", estimator)])
        why = f"--head {name}" if head else "the table holds pairwise comparisons"
        return pipeline, info, f"{name} ({why})"
    name, levels, reason = choose_rating_head(table, attributes, path, head, levels)
    estimator = make_head(name, settings)
    if get_head(name).output == "classes":
        estimator.set_params(classes=levels)
        info["levels"] = levels.tolist()
        if class_weight:
            if "class_weight" not in estimator.get_params():
                raise CLIError(f"--class-weight: the {name} head has no class_weight parameter.")
            estimator.set_params(class_weight=class_weight)
            info["class_weight"] = class_weight
        if threshold_for and len(levels) != 2:
            raise CLIError(
                f"{path}: --threshold-for is for two-level ratings (keep/delete); the ratings have "
                f"{len(levels)} levels."
            )
    else:
        if class_weight or threshold_for:
            raise CLIError("--class-weight and --threshold-for need a classifier head (two-level ratings).")
        y = table[list(attributes)].to_numpy(np.float64)
        low, high = (levels[0], levels[-1]) if levels is not None else (np.nanmin(y), np.nanmax(y))
        info["range"] = [float(low), float(high)]
    info["head"] = name
    info["output"] = get_head(name).output
    info["personal"] = _personal(estimator, users, task)
    features = featurizer
    if users:
        features = ColumnTransformer([("image", featurizer, "image"), ("user", UserEncoder(), ["user_id"])])
    return Pipeline([("features", features), ("head", estimator)]), info, f"{name} ({reason})"


def fit_heads(task: str) -> list[str]:
    """The registered heads ``skpercept fit`` offers for a table of ``task``."""
    return head_names(task, command=True, skpercept_only=True)


def model_input(table: pd.DataFrame, info: dict, task: str) -> pd.DataFrame | pd.Series:
    if task == "pairs":
        return table[list(PAIR_COLUMNS) + (["user_id"] if info["users"] else [])]
    if info["users"]:
        return table[["image", "user_id"]]
    return table["image"]


# -- decision thresholds ------------------------------------------------------------------------
def parse_threshold_spec(text: str) -> tuple[str, float | None]:
    """``'recall=0.9'`` -> ('recall', 0.9); ``'f1'`` -> ('f1', None)."""
    match = _THRESHOLD_SPEC.match(text.strip().lower())
    if not match:
        raise CLIError(
            f"--threshold-for {text!r}: write recall=TARGET, precision=TARGET (a share, e.g. recall=0.9) or f1."
        )
    return (match.group(1), float(match.group(2))) if match.group(1) else ("f1", None)


def choose_threshold(y: np.ndarray, p: np.ndarray, metric: str, target: float | None) -> float:
    """The threshold on P(positive) that meets a recall / precision target or maximises F1.

    ``recall=r``: the highest threshold whose recall is at least r (the most precise such
    rule); ``precision=r``: the lowest threshold whose precision is at least r (the most
    sensitive such rule); ``f1``: the best F1. Ties and an unreachable precision target fall
    back to the best F1 and 0.5 respectively.
    """
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    positives = max(int(y.sum()), 1)
    tp = np.cumsum(y_sorted)
    predicted = np.arange(1, len(p) + 1)
    last = np.r_[p_sorted[1:] != p_sorted[:-1], True]  # one candidate per distinct probability
    candidates, recall, precision = p_sorted[last], tp[last] / positives, tp[last] / predicted[last]
    if metric == "recall":
        return float(candidates[np.argmax(recall >= target)])
    if metric == "precision":
        ok = np.flatnonzero(precision >= target)
        return float(candidates[ok[-1]]) if ok.size else 0.5
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(candidates[int(np.argmax(f1))])


def tune_thresholds(model, X, y: np.ndarray, info: dict, spec: str, folds: int, seed: int, log) -> dict:
    """Per attribute, a threshold chosen on out-of-fold probabilities of image-disjoint folds."""
    metric, target = parse_threshold_spec(spec)
    images = X["image"] if isinstance(X, pd.DataFrame) else X
    n_folds = min(folds, pd.unique(images).size)
    if n_folds < 2:
        raise CLIError("--threshold-for needs at least two different images to cross-validate on.")
    Y = y.reshape(len(y), -1)
    oof = np.full(Y.shape, np.nan)
    cv = ImageDisjointSplit(n_splits=n_folds, random_state=seed)
    for k, (train, test) in enumerate(cv.split(X, groups=np.asarray(images))):
        fold = fit_model(clone(model), X.iloc[train], y[train], info)
        proba = fold.predict_proba(X.iloc[test])
        for j, p in enumerate(proba if isinstance(proba, list) else [proba]):
            oof[test, j] = p[:, 1]
        log(f"threshold fold {k + 1}/{n_folds} done")
    positive = info["levels"][-1]
    thresholds = {}
    for j, attribute in enumerate(info["attributes"]):
        keep = ~np.isnan(Y[:, j])
        thresholds[attribute] = choose_threshold(
            (Y[keep, j] == positive).astype(float), oof[keep, j], metric, target
        )
    return {"threshold_for": spec, "thresholds": thresholds, "threshold_folds": n_folds}


# -- loading ------------------------------------------------------------------------------------
def register_open_clip_configs(info: dict) -> None:
    """Register the open_clip configs a model was built from (the registry is per process)."""
    configs = info.get("open_clip_configs") or {}
    if not configs:
        return
    for name, text in configs.items():
        if name not in open_clip.list_models():
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"{name}.json"
                path.write_text(text)
                open_clip.add_model_config(path)


def _head(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(64)


#: ``--model`` of the commands that read a model.
MODEL_HELP = (
    "a model saved by `skpercept fit`: NAME.skops (the safe format) or a checked pickle (NAME.joblib; "
    "only load pickles you made or trust)"
)


def load_model(path, log=None):
    """A model saved by ``skpercept fit`` / ``demo`` and its info dict; errors name the file.

    ``log`` receives a one-line note when the file is a pickle (which runs code when loaded).
    """
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"--model {path} is a folder, not a model file.")
    if not path.exists():
        raise CLIError(f"Model file not found: {path}")
    try:
        check_input_file(path)
    except InputFileError as exc:
        raise CLIError(f"--model {exc}.") from exc
    head = _head(path)
    safe = head.startswith(b"PK\x03\x04")
    if not safe and not head.startswith(_JOBLIB_MAGIC):
        shown = head[:40].decode("utf-8", "replace").splitlines()[0] if head.strip() else "nothing"
        raise CLIError(
            f"{path} is not a model file (it starts with {shown!r}); pass the .joblib or .skops file "
            "written by `skpercept fit`."
        )
    if not safe and log is not None:
        log(
            f"note: {path.name} is a pickle, which runs code when it is loaded: load only models you made "
            f"or trust (`skpercept fit --model NAME{SAFE_SUFFIX}` saves in the safe format)."
        )
    try:
        model = load_saved_model(path)
    except (SavedFormatError, ModelFileError) as exc:
        message = str(exc)
        raise CLIError(message if message.startswith(str(path)) else f"{path}: {message}") from exc
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("skpercept"):
            raise
        raise CLIError(
            f"{path} was saved by a skpercept whose modules were laid out differently (it names "
            f"{exc.name}, a module of a format from before versioned formats); this skpercept reads "
            f"pickle format {PICKLE_FORMAT}. Fit the model again with this version."
        ) from exc
    info = getattr(model, "skpercept_info_", None)
    if not isinstance(info, dict):
        raise CLIError(f"{path} is not a model saved by `skpercept fit` or `skpercept demo`.")
    if info.get("format") != PICKLE_FORMAT:
        raise CLIError(
            f"{path}: its model description is in format {info.get('format')!r}; this skpercept reads "
            f"format {PICKLE_FORMAT}. Fit the model again with this version."
        )
    missing = [key for key in MODEL_INFO_KEYS if key not in info]
    if info.get("output") == "classes" and not info.get("levels"):
        missing.append("levels")
    if missing or info["task"] not in ("rating", "pairs") or not info["attributes"]:
        raise CLIError(
            f"{path}: its model description (skpercept_info_) lacks {missing}; the file was edited or "
            "not written by `skpercept fit`. Fit the model again."
        )
    register_open_clip_configs(info)
    return model, info


def use_runtime(model, cache_dir, progress: bool, device: str) -> None:
    """Run a loaded model's embedders with this run's cache, progress bars and device (the
    cache of the machine that fitted the model is not this one's, and --no-cache means none)."""
    for estimator in _estimators_in(model):
        if isinstance(estimator, BaseEmbedder):
            estimator.set_params(cache_dir=cache_dir, progress=progress, device=device)


def _estimators_in(obj, seen=None):
    """Every estimator reachable from ``obj``: steps, fitted transformers, nested pipelines."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, BaseEstimator):
        yield obj
        children = vars(obj).values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif isinstance(obj, dict):
        children = obj.values()
    else:
        return
    for child in children:
        if isinstance(child, (BaseEstimator, list, tuple, dict)):
            yield from _estimators_in(child, seen)


# -- predictions --------------------------------------------------------------------------------
def head_output(info: dict) -> str:
    """How a rating model's head answers: 'classes' (levels with probabilities) or 'values'."""
    return info["output"]


def _single_image_scores(model, info: dict, table: pd.DataFrame) -> np.ndarray:
    """A pair model's score of each image, for the row's person (average person without one)."""
    pairs, head = model[0], model[-1]
    half = np.asarray(pairs.item_transformer_.transform(table["image"]), dtype=np.float64)
    if pairs.n_context_features_:
        ids = table["user_id"] if "user_id" in table.columns else pd.Series(AVERAGE_PERSON, index=table.index)
        context = pairs.context_transformer_.transform(ids.rename("user_id").to_frame())
        half = np.hstack([half, np.asarray(context.toarray() if hasattr(context, "toarray") else context)])
    return np.asarray(head.score_items(half)).reshape(len(table), -1)


def predict_table(model, info: dict, table: pd.DataFrame, task: str) -> pd.DataFrame:
    """Predictions as columns named so they never pass for labels.

    ``pred_<attr>`` (most probable level, or the level the saved decision threshold picks, or
    the regressor's rating), ``pred_<attr>_expected`` and ``p_<attr>_<level>`` (classifier);
    ``p_<attr>_a`` (P(image_a preferred)) for pairs; ``pred_<attr>_score`` for single images
    scored by a pair model (for the row's person when the model knows people).
    """
    attributes = info["attributes"]
    out = pd.DataFrame(index=table.index)
    if info["task"] == "pairs" and task == "rating":
        scores = _single_image_scores(model, info, table)
        for k, attribute in enumerate(attributes):
            out[f"pred_{attribute}_score"] = scores[:, k]
        return out
    if info["task"] == "pairs":
        proba = model.predict_proba(model_input(table, info, task))
        proba = proba if isinstance(proba, list) else [proba]
        for attribute, p in zip(attributes, proba):
            out[f"p_{attribute}_a"] = p[:, 1]
        return out
    if task == "pairs":
        raise CLIError("This is a rating model; it predicts from a table with an 'image' column, not pairs.")
    X = model_input(table, info, task)
    if head_output(info) == "classes":
        proba = model.predict_proba(X)
        proba = proba if isinstance(proba, list) else [proba]
        levels = np.asarray(info["levels"], dtype=np.float64)
        thresholds = info.get("thresholds") or {}
        for attribute, p in zip(attributes, proba):
            if attribute in thresholds:
                out[f"pred_{attribute}"] = np.where(p[:, 1] >= thresholds[attribute], levels[1], levels[0])
            else:
                out[f"pred_{attribute}"] = levels[p.argmax(axis=1)]
            out[f"pred_{attribute}_expected"] = p @ levels
            for k, level in enumerate(levels):
                out[f"p_{attribute}_{level:g}"] = p[:, k]
        return out
    pred = np.asarray(model.predict(X)).reshape(len(table), -1)
    for k, attribute in enumerate(attributes):
        out[f"pred_{attribute}"] = pred[:, k]
    return out
