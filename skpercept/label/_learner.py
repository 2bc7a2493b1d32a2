"""The model behind the labelling app: which question to ask next, and what a person likes.

One model per attribute, always a scikit-learn Pipeline whose person columns come from a
:class:`~skpercept.personal.UserEncoder`: for pairs ``PairFeatures → PairwiseRanker``, for ratings
``ColumnTransformer(image, user) → RatingClassifier``, both with ``user_features`` (the shared
model plus one deviation per labeller). The images are embedded once, when the app starts
(with the embedding cache), and looked up by name from then on (:class:`EmbeddingLookup`).

Cold start: a model given to the app (a personal pairs or rating model saved by ``skpercept
fit``, see :meth:`LiveLearner.check_model`) asks its questions from the first click; without one
the first questions are random, and once the attribute has ``min_judgments`` judgments a linear
model is fitted on everyone's judgments (a pair model's early stopping holds out judgments
rather than images: the app ranks its own folder's images, and an image hold-out of a few
hundred pairs keeps a dozen). After that, each labeller's deviation is re-estimated
from their own judgments every ``update_every`` clicks with :func:`skpercept.personal.add_users`
(the shared part frozen: milliseconds), and a full refit runs again when the number of judgments
has doubled since the last one (never for a given model). All of it happens on one background
thread; a request only reads a queue of questions prepared there.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from skpercept._utils import SavedFormatMixin
from skpercept.heads import PairwiseRanker, RatingClassifier
from skpercept.personal import UserEncoder, add_users, suggest_items, suggest_pairs
from skpercept.preprocessing import PairFeatures

_log = logging.getLogger(__name__)
#: The strategies a labelling round may ask with (see :func:`skpercept.personal.suggest_pairs`).
STRATEGIES = ("information", "variance", "uncertainty", "random")


class EmbeddingLookup(SavedFormatMixin, TransformerMixin, BaseEstimator):
    """Rows of a precomputed embedding table, looked up by item name.

    Parameters
    ----------
    items : sequence of str
        The item names, one per row of ``embeddings``.
    embeddings : array-like of shape (n_items, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.label import EmbeddingLookup
    >>> lookup = EmbeddingLookup(["a.jpg", "b.jpg"], np.array([[0.0, 1.0], [2.0, 3.0]])).fit(None)
    >>> lookup.transform(["b.jpg", "a.jpg"]).tolist()
    [[2.0, 3.0], [0.0, 1.0]]
    """

    def __init__(self, items=(), embeddings=None) -> None:
        self.items = items
        self.embeddings = embeddings

    def fit(self, X, y=None) -> EmbeddingLookup:
        self.embeddings_ = np.asarray(self.embeddings, dtype=np.float32)
        self.index_ = {str(item): i for i, item in enumerate(self.items)}
        if len(self.index_) != len(self.embeddings_):
            raise ValueError(
                f"{len(self.embeddings_)} embeddings for {len(self.index_)} distinct items; one row per item."
            )
        self.n_features_out_ = self.embeddings_.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "index_")
        names = np.asarray(X, dtype=object).reshape(-1)
        try:
            rows = [self.index_[str(name)] for name in names]
        except KeyError as exc:
            raise ValueError(f"item {exc.args[0]!r} has no embedding.") from None
        return self.embeddings_[rows]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray([f"embedding{i}" for i in range(self.n_features_out_)], dtype=object)


def _output_of(model, attribute: str) -> tuple[int, int]:
    """Which output of a model saved by ``skpercept fit`` answers ``attribute``."""
    info = getattr(model, "skpercept_info_", None)
    if not isinstance(info, dict):
        return 0, 1
    names = list(info.get("attributes", []))
    if attribute not in names:
        raise ValueError(f"the model was fitted on {names}; it has no {attribute!r}.")
    return names.index(attribute), len(names)


def _check_given_model(info: dict, *, kind: str, levels: int, attributes) -> None:
    """See :meth:`LiveLearner.check_model`."""
    task = info.get("task")
    source = "comparisons" if kind == "pairs" else "ratings"
    if task != kind:
        raise ValueError(
            f"it is a {task} model; a {kind} project starts from a personal {kind} model "
            f"(`skpercept fit` on {source} with a user_id column)."
        )
    if not info.get("users") or not info.get("personal", True):
        raise ValueError(
            f"it was fitted without people; the app adds each labeller to a personal model "
            f"(`skpercept fit` on {source} with a user_id column)."
        )
    if kind == "rating":
        if info.get("output") != "classes" or not info.get("levels"):
            raise ValueError(
                f"its {info.get('head', 'rating')} head predicts ratings as numbers; the app needs rating "
                f"levels with their probabilities (`skpercept fit --head classifier --levels "
                f"{' '.join(str(v) for v in range(1, int(levels) + 1))}`)."
            )
        found = [float(v) for v in info["levels"]]
        wanted = [float(v) for v in range(1, int(levels) + 1)]
        if found != wanted:
            shown = ", ".join(f"{v:g}" for v in found)
            raise ValueError(
                f"it rates on levels {shown}; this project rates on {int(levels)} levels "
                f"({', '.join(f'{v:g}' for v in wanted)})."
            )
    missing = [a for a in attributes if a not in info.get("attributes", [])]
    if missing:
        raise ValueError(f"it has no attribute {missing}; it has {list(info.get('attributes', []))}.")


#: The input columns of the models fitted here (and of ``skpercept fit``'s).
_PAIR_COLUMNS = ("image_a", "image_b", "user_id")
_RATING_COLUMNS = ("image", "user_id")


def _input_columns(model, kind: str) -> tuple:
    """The input columns a personal pipeline reads: ``(item_a, item_b, person)`` for pairs (its
    PairFeatures step's), ``(image, person)`` for ratings (its ColumnTransformer's: the
    UserEncoder's column and the one other); the defaults where the pipeline does not say."""
    first = model.steps[0][1] if isinstance(model, Pipeline) else None
    if kind == "pairs":
        if isinstance(first, PairFeatures):
            context = first.context_columns
            context = [context] if isinstance(context, str) else list(context or [])
            if len(context) == 1:
                return (*first.item_columns, context[0])
        return _PAIR_COLUMNS
    if isinstance(first, ColumnTransformer):
        users, images = [], []
        for _, step, columns in getattr(first, "transformers_", first.transformers):
            if isinstance(step, str) and step == "drop":
                continue
            names = [columns] if isinstance(columns, str) else list(columns)
            (users if isinstance(step, UserEncoder) else images).extend(names)
        if len(users) == 1 and len(images) == 1 and all(isinstance(c, str) for c in users + images):
            return images[0], users[0]
    return _RATING_COLUMNS


def _pair_frame(
    judgments: pd.DataFrame, to_model: dict, columns: tuple = _PAIR_COLUMNS
) -> tuple[pd.DataFrame, np.ndarray]:
    left, right, person = columns
    X = pd.DataFrame(
        {
            left: judgments["item_a"].map(to_model).to_numpy(),
            right: judgments["item_b"].map(to_model).to_numpy(),
            person: judgments["labeller"].to_numpy(),
        }
    )
    return X, (judgments["value"].to_numpy() == 1).astype(int)


def _rating_frame(
    judgments: pd.DataFrame, to_model: dict, columns: tuple = _RATING_COLUMNS
) -> tuple[pd.DataFrame, np.ndarray]:
    image, person = columns
    X = pd.DataFrame(
        {image: judgments["item_a"].map(to_model).to_numpy(), person: judgments["labeller"].to_numpy()}
    )
    return X, judgments["value"].to_numpy().astype(int)


class LiveLearner:
    """Questions to ask and per-person models for a labelling project, kept up to date in the
    background.

    Parameters
    ----------
    store : LabelStore
        The project's database (read for the judgments to learn from).
    items : sequence of str
        The project's images (names relative to its folder).
    embeddings : array-like of shape (n_items, n_features) or None
        Their embeddings, for the model fitted here. None: only a given ``model`` (or random
        questions) is used.
    model : Pipeline or dict or None, default=None
        A fitted personal model to start from (one for every attribute, or a dict attribute →
        model), taking ``model_items`` in its image columns: for pairs a ``PairFeatures →
        PairwiseRanker`` pipeline, for ratings a ``ColumnTransformer(image, user) →
        RatingClassifier`` on the levels ``1..levels``, as ``skpercept fit`` saves them (its
        input column names are read from the pipeline; a model of several attributes answers
        each from its own output, see :meth:`check_model`). Its shared part is kept and never
        refitted; labellers are added to it with :func:`~skpercept.personal.add_users`.
    model_items : sequence or None, default=None
        What ``model`` takes for each item (e.g. absolute paths); None: the item names.
    strategy : {'information', 'variance', 'uncertainty', 'random'}, default='variance'
        How the model chooses its questions (see :func:`~skpercept.personal.suggest_pairs`).
        ``'variance'`` asks what most reduces the uncertainty of the labeller's scores over the
        whole folder; ``'information'`` what tells most about their deviation from the shared
        model, which picks pairs of unusual images when everyone's taste is much alike
        (``benchmarks/labelling.py`` measures both against random questions).
    update_every : int, default=4
        Re-estimate a labeller's deviation after this many of their judgments.
    min_judgments : int, default=8
        Judgments of an attribute (everyone's) before a model is fitted here.
    batch : int, default=8
        Questions prepared per update.
    explore : float, default=0.5
        Share of questions drawn at random, preferring those nobody has answered yet, even
        when the model has prepared some. Questions chosen only by the model concentrate on a
        few images, and with several labellers on the same ones, which starves the shared part
        of the model that everyone's answers train: ``benchmarks/labelling.py`` measures it.
    random_state : int, default=0
    background : bool, default=True
        Update on a background thread (False: at once, in the caller; for tests and scripts).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from skpercept.label import Judgment, LabelStore, LiveLearner
    >>> items = [f"{i}.jpg" for i in range(12)]
    >>> store = LabelStore(Path(tempfile.mkdtemp()) / "labels.sqlite")
    >>> store.configure(attributes=["bright"], kind="pairs", levels=2, items=items)
    >>> _ = store.add_labeller("ann")
    >>> learner = LiveLearner(store, items, np.random.RandomState(0).normal(size=(12, 4)),
    ...                       min_judgments=6, background=False)
    >>> for k in range(8):
    ...     a, b = learner.next_question("ann", "bright")
    ...     _ = store.record(Judgment(f"click-{k:04d}", "ann", "bright", "pairs", a, b, 1))
    ...     learner.judged("ann", "bright", a, b)
    >>> learner.has_model("bright")
    True
    >>> ranked = learner.ranking("ann", "bright")
    >>> len(ranked), list(ranked.columns[:3])
    (12, ['item', 'rank', 'score'])
    """

    def __init__(
        self,
        store,
        items,
        embeddings=None,
        *,
        model: Any = None,
        model_items=None,
        strategy: str = "variance",
        update_every: int = 4,
        min_judgments: int = 8,
        batch: int = 8,
        explore: float = 0.5,
        random_state: int = 0,
        background: bool = True,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}.")
        settings = store.settings()
        self.store = store
        self.items = [str(i) for i in items]
        self.kind = settings["kind"]
        self.levels = int(settings["levels"])
        self.attributes = list(settings["attributes"])
        self.strategy = strategy
        self.update_every = int(update_every)
        self.min_judgments = int(min_judgments)
        self.batch = int(batch)
        if not 0.0 <= float(explore) <= 1.0:
            raise ValueError(f"explore must be between 0 and 1, got {explore!r}.")
        self.explore = float(explore)
        self.random_state = random_state
        self.embeddings = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        if self.embeddings is not None and len(self.embeddings) != len(self.items):
            raise ValueError(f"{len(self.embeddings)} embeddings for {len(self.items)} items.")
        given = model if isinstance(model, dict) else dict.fromkeys(self.attributes, model)
        self.given = {a: m for a, m in given.items() if m is not None}
        for attribute, given_model in self.given.items():
            info = getattr(given_model, "skpercept_info_", None)
            if isinstance(info, dict):
                self.check_model(info, kind=self.kind, levels=self.levels, attributes=[attribute])
        # Which output of a given model answers each attribute: (index, number of outputs).
        self.outputs = {a: _output_of(m, a) for a, m in self.given.items()}
        # The input columns each given model reads (the models fitted here read the defaults).
        self.columns = {a: _input_columns(m, self.kind) for a, m in self.given.items()}
        model_items = self.items if model_items is None else [str(m) for m in model_items]
        self.to_model = dict(zip(self.items, model_items))
        self.from_model = dict(zip(model_items, self.items))
        self.models: dict[str, Any] = dict(self.given)
        self.fitted_on: dict[str, int] = {}
        self.rng = np.random.RandomState(random_state)
        self._lock = threading.RLock()  # guards the queues, counts and the models dict: held briefly
        self._model_lock = threading.RLock()  # a model being updated or read: never taken by a click
        self._asked: dict[str, dict] = defaultdict(
            lambda: defaultdict(int)
        )  # attribute -> question -> answers
        self._queues: dict[tuple[str, str], deque] = defaultdict(deque)
        self._redo: dict[tuple[str, str], deque] = defaultdict(deque)  # undone questions: asked again first
        self._judged: dict[tuple[str, str], set] = defaultdict(set)
        self._since_update: dict[tuple[str, str], int] = defaultdict(int)
        self._pending: set[tuple[str, str]] = set()
        self.background = background
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="skpercept-label") if background else None
        )
        self.updates = 0
        self.last_error: str | None = None
        for _, row in store.judgments().iterrows():
            question = self._key(row["item_a"], row["item_b"])
            self._judged[(row["labeller"], row["attribute"])].add(question)
            self._asked[row["attribute"]][question] += 1

    @staticmethod
    def check_model(info: dict, *, kind: str, levels: int, attributes) -> None:
        """Refuse, with a ValueError of one line, a model saved by ``skpercept fit`` (``info``: its
        ``skpercept_info_``) that cannot start a project of this ``kind``, ``levels`` and
        ``attributes``: a model of the other kind, one fitted without people, a rating model
        without levels (a regressor) or on other levels than ``1..levels``, one that lacks an
        attribute of the project (it may have more)."""
        _check_given_model(info, kind=kind, levels=levels, attributes=attributes)

    # -- the request path: cheap -------------------------------------------------------------
    @staticmethod
    def _key(a: str, b: str | None):
        return a if b is None else tuple(sorted((a, b)))

    def has_model(self, attribute: str) -> bool:
        with self._lock:
            return attribute in self.models

    def next_attribute(self, labeller: str) -> str:
        """The attribute this labeller has judged least (the project's order breaks ties)."""
        with self._lock:
            counts = [len(self._judged[(labeller, a)]) for a in self.attributes]
        return self.attributes[int(np.argmin(counts))]

    def next_question(self, labeller: str, attribute: str) -> tuple[str, str | None]:
        """The next pair ``(a, b)`` or image ``(a, None)`` to show; prepared in the background
        when a model exists, else drawn at random among those the labeller has not judged."""
        key = (labeller, attribute)
        with self._lock:
            queue, judged = self._queues[key], self._judged[key]
            while self._redo[key]:
                question = self._redo[key].popleft()
                if self._key(*question) not in judged:
                    return question
            explore = self.explore > 0 and self.rng.rand() < self.explore
            while queue and not explore:
                question = queue.popleft()
                if self._key(*question) not in judged:
                    if len(queue) < 2:
                        self._schedule(key)
                    return question
            if not queue and (attribute in self.models or self._ready(attribute)):
                self._schedule(key)
                queue = self._queues[key]  # prepared already when the update ran here (no background)
                while queue and not explore:
                    question = queue.popleft()
                    if self._key(*question) not in judged:
                        return question
            return self._random_question(judged, self._asked[attribute])

    def _random_question(self, judged: set, asked: dict) -> tuple[str, str | None]:
        """A question this labeller has not answered, preferring one nobody has."""
        n = len(self.items)
        if self.kind == "rating":
            free = [i for i in self.items if i not in judged]
            if not free:
                return self.items[self.rng.randint(n)], None  # every image rated: ask again
            fewest = min(asked.get(i, 0) for i in free)
            pool = [i for i in free if asked.get(i, 0) == fewest]
            return pool[self.rng.randint(len(pool))], None
        fallback = None
        for _ in range(200):
            a, b = self.rng.choice(n, size=2, replace=False)
            question = (self.items[a], self.items[b])
            if self._key(*question) in judged:
                continue
            if self._key(*question) not in asked:
                return question
            fallback = fallback or question
        if fallback is not None:
            return fallback
        a, b = self.rng.choice(n, size=2, replace=False)  # (nearly) every pair judged: ask again
        return self.items[a], self.items[b]

    def judged(self, labeller: str, attribute: str, item_a: str, item_b: str | None = None) -> None:
        """Tell the learner a judgment was stored; every ``update_every`` it updates the model."""
        key = (labeller, attribute)
        with self._lock:
            self._judged[key].add(self._key(item_a, item_b))
            self._asked[attribute][self._key(item_a, item_b)] += 1
            self._since_update[key] += 1
            due = self._since_update[key] >= self.update_every or not self._queues[key]
        if due and (attribute in self.models or self._ready(attribute)):
            self._schedule(key)

    def withdrawn(self, labeller: str, attribute: str, item_a: str, item_b: str | None = None) -> None:
        """Tell the learner a judgment was undone (the question may be asked again)."""
        key = (labeller, attribute)
        with self._lock:
            self._judged[key].discard(self._key(item_a, item_b))
            asked = self._asked[attribute]
            question = self._key(item_a, item_b)
            asked[question] -= 1
            if asked[question] <= 0:
                del asked[question]
            self._redo[key].appendleft((item_a, item_b))
            self._since_update[key] += 1

    def _ready(self, attribute: str) -> bool:
        return self.embeddings is not None and self._count(attribute) >= self.min_judgments

    def _count(self, attribute: str) -> int:
        with self._lock:
            return sum(len(v) for (_, a), v in self._judged.items() if a == attribute)

    def _schedule(self, key: tuple[str, str]) -> None:
        with self._lock:
            if key in self._pending:
                return
            self._pending.add(key)
        if self._executor is None:
            self._update(key)
        else:
            self._executor.submit(self._update, key)

    def wait(self, timeout: float | None = 60.0) -> None:
        """Block until the updates scheduled so far have run (for tests and scripts)."""
        if self._executor is not None:
            future: Future = self._executor.submit(lambda: None)
            future.result(timeout=timeout)

    def refresh(self, labeller: str, attribute: str) -> None:
        """Bring this labeller's model up to date with every judgment stored, now, in the caller
        (after the background updates already scheduled); raises RuntimeError if it fails."""
        self.wait(timeout=None)
        self.last_error = None
        self._update((labeller, attribute))
        if self.last_error:
            raise RuntimeError(f"the model of {attribute!r} could not be updated: {self.last_error}")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    # -- the background thread ---------------------------------------------------------------
    def _build(self, n_labellers: int):
        lookup = EmbeddingLookup(self.items, self.embeddings)
        width = self.embeddings.shape[1]
        settings = dict(hidden_layer_sizes=(), random_state=self.random_state, device="cpu")
        # One person column per labeller after the image's (UserEncoder: one column per id).
        people = np.arange(width, width + n_labellers)
        if self.kind == "pairs":
            # Early stopping holds out judgments, not images: the app ranks the images of its own
            # folder, and of a few hundred pairs of them an image hold-out keeps only the pairs
            # with both images held out (7-15 of 160-640 pairs of 150 images at 10 %) and drops
            # the pairs straddling the cut (a fifth of them).
            head = PairwiseRanker(user_features=people, validation_split="rows", **settings)
            return Pipeline(
                [
                    ("pairs", PairFeatures(item_transformer=lookup, context_transformer=UserEncoder())),
                    ("head", head),
                ]
            )
        features = ColumnTransformer([("image", lookup, "image"), ("user", UserEncoder(), ["user_id"])])
        head = RatingClassifier(
            classes=np.arange(1, self.levels + 1),
            user_features=people,
            **settings,
        )
        return Pipeline([("features", features), ("head", head)])

    def _columns(self, attribute: str | None) -> tuple:
        default = _PAIR_COLUMNS if self.kind == "pairs" else _RATING_COLUMNS
        return self.columns.get(attribute, default)

    def _frame(self, judgments: pd.DataFrame, attribute: str | None = None):
        make = _pair_frame if self.kind == "pairs" else _rating_frame
        X, y = make(judgments, self.to_model, self._columns(attribute))
        if attribute in self.outputs and self.outputs[attribute][1] > 1:
            k, n = self.outputs[attribute]
            wide = np.full((len(y), n), np.nan)  # the other attributes: not judged
            wide[:, k] = y
            y = wide
        return X, y

    def _update(self, key: tuple[str, str]) -> None:
        labeller, attribute = key
        try:
            with self._lock:
                self._pending.discard(key)
                self._since_update[key] = 0
            everyone = self.store.judgments(attribute=attribute)
            n_total = len(everyone)
            with self._lock:
                model = self.models.get(attribute)
            refit = (
                attribute not in self.given
                and self.embeddings is not None
                and n_total >= self.min_judgments
                and (model is None or n_total >= 2 * self.fitted_on.get(attribute, 0))
            )
            if refit:
                X, y = self._frame(everyone)
                fresh = self._build(everyone["labeller"].nunique()).fit(X, y)
                with self._lock:
                    self.models[attribute] = model = fresh
                    self.fitted_on[attribute] = n_total
            elif model is not None:
                own = everyone[everyone["labeller"] == labeller]
                if len(own):
                    X, y = self._frame(own, attribute)
                    with self._model_lock:
                        add_users(model, X, y)
            if model is None:
                return
            questions = self._suggest(model, labeller, attribute, everyone)
            with self._lock:
                self._queues[key] = deque(questions)
                self.updates += 1
        except Exception as exc:  # a failed update must not stop the labelling
            self.last_error = f"{type(exc).__name__}: {exc}"
            _log.exception("labelling model update failed for %s / %s", labeller, attribute)

    def _suggest(self, model, labeller: str, attribute: str, everyone: pd.DataFrame) -> list:
        own = everyone[everyone["labeller"] == labeller]
        items = [self.to_model[i] for i in self.items]
        with self._lock:  # the RandomState is shared with the request path
            seed = int(self.rng.randint(2**31 - 1))
        output = (
            self.outputs[attribute][0]
            if attribute in self.outputs and self.outputs[attribute][1] > 1
            else None
        )
        with self._model_lock:
            if self.kind == "pairs":
                history = own[["item_a", "item_b"]].apply(lambda c: c.map(self.to_model)).to_numpy()
                n_pairs = len(items) * (len(items) - 1) // 2
                n = max(1, min(self.batch, n_pairs - len(history)))
                if n_pairs - len(history) <= 0:
                    return []
                asked = suggest_pairs(
                    model,
                    items,
                    labeller,
                    n,
                    strategy=self.strategy,
                    history=history,
                    random_state=seed,
                    output=output,
                )
                return [(self.from_model[a], self.from_model[b]) for a, b in zip(asked.item_a, asked.item_b)]
            history = [self.to_model[i] for i in own["item_a"]]
            n = min(self.batch, len(items) - len(set(history)))
            if n <= 0:
                return []
            asked = suggest_items(
                model,
                items,
                labeller,
                n,
                strategy=self.strategy,
                history=history,
                random_state=seed,
                output=output,
            )
            return [(self.from_model[i], None) for i in asked["item"]]

    # -- what the person's model says --------------------------------------------------------
    def ranking(self, labeller: str, attribute: str) -> pd.DataFrame:
        """Every item ranked by this labeller's model (the shared model for someone it does
        not know yet): ``item, rank, score`` and, for ratings, ``predicted`` (the most probable
        level), ``confidence`` (its probability) and ``p_<level>`` per level. Empty without a
        model."""
        with self._lock:
            model = self.models.get(attribute)
        if model is None:
            return pd.DataFrame(columns=["item", "rank", "score"])
        with self._model_lock:
            items = [self.to_model[i] for i in self.items]
            if self.kind == "pairs":
                pairs, head = model[0], model[-1]
                half = np.asarray(
                    pairs.item_transformer_.transform(pd.Series(items, name="item")), dtype=np.float64
                )
                if pairs.n_context_features_:
                    who = pd.DataFrame({self._columns(attribute)[2]: [labeller] * len(items)})
                    context = pairs.context_transformer_.transform(who)
                    context = context.toarray() if hasattr(context, "toarray") else np.asarray(context)
                    half = np.hstack([half, context])
                column = self.outputs[attribute][0] if attribute in self.outputs else 0
                score = np.asarray(head.score_items(half), dtype=np.float64).reshape(len(items), -1)[
                    :, column
                ]
                extra = {}
            else:
                image, person = self._columns(attribute)
                proba = model.predict_proba(pd.DataFrame({image: items, person: [labeller] * len(items)}))
                if isinstance(proba, list):  # a model of several attributes: this one's output
                    proba = proba[self.outputs[attribute][0] if attribute in self.outputs else 0]
                proba = np.asarray(proba, dtype=np.float64)
                levels = np.arange(1, self.levels + 1)
                score = proba @ levels
                extra = {"predicted": levels[proba.argmax(axis=1)], "confidence": proba.max(axis=1)}
                extra.update({f"p_{level}": proba[:, k] for k, level in enumerate(levels)})
        table = pd.DataFrame({"item": self.items, "score": score, **extra})
        table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
        table.insert(1, "rank", np.arange(1, len(table) + 1))
        return table
