"""Ask the next best question: which pairs (or items) one person should judge next.

A head fitted with ``user_features`` scores an item for person ``u`` as
``s(x, u) = h(x)·(w + v_u) + b``: a shared trunk ``h``, shared weights ``w`` and the person's
deviation ``v_u``, shrunk toward 0 by the penalty ``user_alpha ||v_u||²``. With few
judgments ``v_u`` is uncertain, and some questions tell more about it than others.
:func:`suggest_pairs` ranks candidate pairs for a person, :func:`suggest_items` candidate items
to rate; both work on a fitted head or on a fitted :class:`~sklearn.pipeline.Pipeline` ending in
one, whose feature steps (embedder, :class:`~skpercept.preprocessing.PairFeatures`,
:class:`~skpercept.personal.UserEncoder`) then turn image paths and a person's id into features.

Strategies
----------
``'random'``
    Uniform among the candidates: the baseline.
``'uncertainty'``
    The questions the model is least sure about: pairs with ``P(left ≻ right)`` nearest 0.5
    (criterion ``p (1 − p)``); items whose predicted rating is least certain.
``'information'``
    The batch that most reduces the uncertainty of ``v_u`` (greedy D-optimal design). A
    Laplace approximation gives ``v_u`` a Gaussian posterior of precision
    ``A = P + Σ λ z zᵀ`` over the person's ``history``, with ``P`` the head's prior precision
    (:meth:`~skpercept.heads.PairwiseRanker.user_prior_precision`: ``2 user_alpha · I``
    for the penalty ``user_alpha ||v_u||²``, or the population's learned one with
    ``user_prior='learned'``, which steers questions toward the axes people differ along), with
    ``z = h(a) − h(b)`` the trunk's representations (:meth:`item_representation`) and
    ``λ = p (1 − p)``, the Fisher information of one Bradley–Terry judgment. A new question
    adds ``λ z zᵀ`` and gains ``log det`` by ``log(1 + λ zᵀ A⁻¹ z)``: large where the model is
    unsure (``λ`` near 1/4) *and* the pair differs along directions the history left
    unexplored. The batch is picked one question at a time, each update of ``A⁻¹`` a
    Sherman–Morrison step, so a batch does not repeat one direction. ``p`` is the model's
    current prediction for the person (their answers to the batch are not known yet). For an
    ensemble, ``p`` is the ensemble's and ``h`` its first member's.
``'variance'``
    The batch that most reduces the uncertainty of the person's *predictions* over the pool
    (greedy V-optimal design), rather than of ``v_u`` itself: with the same posterior
    precision ``A``, it minimizes ``trace(A⁻¹ M)``, the summed posterior variance of
    ``(h(a) − h(b))·v_u`` over every pair of the pool, with ``M = Σ_{a<b} λ_ab z_ab z_abᵀ``.
    Each pair of the pool counts with its own ``λ_ab = p_ab (1 − p_ab)``: an error in ``v_u``
    flips the predicted order of a pair near 0.5, not of one the model is sure about. (This
    weighting minus unweighted pairs, ``M ∝`` the covariance of ``h`` over the pool, in 3
    simulated worlds other than the benchmark's (seeds 5–7, learned prior): −0.1, +0.1 and
    +0.3 points of accuracy at 5, 10 and 20 answers.) A question ``z`` of weight ``λ`` lowers
    ``trace(A⁻¹ M)`` by ``λ zᵀA⁻¹MA⁻¹z / (1 + λ zᵀA⁻¹z)``: directions D-optimal design would explore but along
    which the pool's items hardly differ are not worth a question here. The cost is
    ``O(n_items³)`` once per call, then ``O(n_items²)`` per question, as ``'information'``.

A labelling loop: suggest, collect the person's answers, add them with
:func:`skpercept.personal.add_users` (or the head's ``fit_users``), and suggest again passing
every pair asked so far as ``history``. How many answers each strategy saves on simulated
people judging real faces: ``docs/benchmarks.md``, "Asking the next question".
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from skpercept._dataframes import as_pandas
from skpercept._utils import symmetric_expit
from skpercept.personal._users import UserEncoder
from skpercept.preprocessing import PairFeatures

_PAIR_STRATEGIES = ("information", "variance", "uncertainty", "random")


def _check_request(strategy: str, n: Any) -> None:
    """Reject an unknown strategy or a number of questions that is not a positive int."""
    if strategy not in _PAIR_STRATEGIES:
        raise ValueError(f"strategy must be one of {list(_PAIR_STRATEGIES)}; got {strategy!r}.")
    if not isinstance(n, Integral) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}.")


# -- the model: head, feature steps, rows for one person -----------------------------------------
def _split_model(model: Any) -> tuple[Any, Pipeline | None]:
    """The head and the feature steps before it (None for a bare head)."""
    if isinstance(model, Pipeline):
        head, features = model.steps[-1][1], model[:-1] if len(model.steps) > 1 else None
    else:
        head, features = model, None
    check_is_fitted(head, "net_")
    if not len(getattr(head, "user_features_", ())) or not hasattr(head, "item_representation"):
        raise ValueError(
            f"{type(head).__name__} was fitted without user_features: it has no person to ask "
            "about. Fit it with user_features='auto' (or the indices of the person columns)."
        )
    return head, features


def _find_step(features: Pipeline | None, kind: type) -> Any:
    """The first fitted step of type ``kind`` in ``features`` (also inside a ColumnTransformer)."""
    if features is None:
        return None
    for _, step in features.steps:
        if isinstance(step, kind):
            return step
        for _, inner, columns in getattr(step, "transformers_", []):
            if isinstance(inner, kind):
                return step, inner, columns
    return None


def _rows_bare(head: Any, items: Any, user: Any, width: int) -> np.ndarray:
    """Feature rows (one per item) of a bare head: item columns, then the person's block."""
    users = np.asarray(head.user_features_, dtype=int)
    others = np.setdiff1d(np.arange(width), users)
    X_items = np.asarray(items.to_numpy() if hasattr(items, "to_numpy") else items, dtype=np.float64)
    if X_items.ndim != 2 or X_items.shape[1] != len(others):
        raise ValueError(
            f"items must be item features of shape (n_items, {len(others)}): a row of the head's "
            f"input without its {len(users)} person column(s); got shape {X_items.shape}."
        )
    u = np.zeros(len(users)) if user is None else np.asarray(user, dtype=np.float64).ravel()
    if len(u) != len(users):
        raise ValueError(
            f"user must be the person's feature row of length {len(users)} (the head's user "
            f"columns), or None for the shared model; got length {len(u)}."
        )
    rows = np.empty((len(X_items), width))
    rows[:, others], rows[:, users] = X_items, u
    return rows


def _half_rows(model: Any, items: Any, user: Any) -> tuple[Any, np.ndarray]:
    """The ranker and one half-row per item for ``user`` (through the pipeline when there is one)."""
    head, features = _split_model(model)
    if not hasattr(head, "n_half_features_"):
        raise ValueError(f"suggest_pairs needs a pair model (PairwiseRanker); got {type(head).__name__}.")
    if features is None:
        return head, _rows_bare(head, items, user, head.n_half_features_)
    pf = _find_step(features, PairFeatures)
    if not isinstance(pf, PairFeatures) or pf.context_transformer_ is None:
        raise ValueError(
            "The pipeline must build its pairs with a PairFeatures step that has a "
            "context_transformer (e.g. UserEncoder()), so that a person's id becomes features."
        )
    left, right = pf.item_columns
    context = [pf.context_columns] if isinstance(pf.context_columns, str) else list(pf.context_columns)
    if not all(isinstance(c, str) for c in [left, right, *context]):
        raise ValueError("suggest_pairs needs a PairFeatures step whose item and context columns are names.")
    frame = pd.DataFrame({left: list(items), right: list(items)})
    frame = _with_user(frame, context, user)
    return head, np.asarray(features.transform(frame))[:, : head.n_half_features_]


def _with_user(frame: pd.DataFrame, columns: list, user: Any) -> pd.DataFrame:
    """``frame`` with the person's id (or ids, a dict per column) in ``columns``."""
    if user is None:
        raise ValueError("user is required with a pipeline: the person's id as its UserEncoder knows it.")
    values = user if isinstance(user, dict) else ({columns[0]: user} if len(columns) == 1 else None)
    if values is None or set(values) != set(columns):
        raise ValueError(f"user must give a value for each context column {columns}, e.g. a dict.")
    return frame.assign(**{str(c): [values[c]] * len(frame) for c in columns})


def _rating_rows(model: Any, items: Any, user: Any) -> tuple[Any, np.ndarray]:
    """The rating head and one feature row per item for ``user``."""
    head, features = _split_model(model)
    if hasattr(head, "n_half_features_"):
        raise ValueError("suggest_items is for rating heads; use suggest_pairs for a PairwiseRanker.")
    if features is None:
        return head, _rows_bare(head, items, user, head.n_features_in_)
    found = _find_step(features, UserEncoder)
    if not isinstance(found, tuple):
        raise ValueError(
            "The pipeline must encode the person with a UserEncoder inside a ColumnTransformer "
            "(e.g. ColumnTransformer([('image', embedder, 'image'), ('user', UserEncoder(), ['user_id'])]))."
        )
    columns = [found[2]] if isinstance(found[2], str) else list(found[2])
    if isinstance(items, pd.DataFrame):
        frame = items.reset_index(drop=True)
    else:
        inputs = [c for c in getattr(model, "feature_names_in_", []) if c not in columns]
        if len(inputs) != 1:
            raise ValueError(
                "Pass items as a DataFrame of the pipeline's input columns (without the user "
                f"columns {columns}); a plain list needs exactly one other input column, found {inputs}."
            )
        frame = pd.DataFrame({inputs[0]: list(items)})
    return head, np.asarray(features.transform(_with_user(frame, columns, user)))


def _output(head: Any, output: int | None, n_outputs: int) -> int:
    if output is None:
        if n_outputs > 1:
            raise ValueError(f"The model has {n_outputs} outputs (attributes); pass output=<index>.")
        return 0
    if not isinstance(output, Integral) or not 0 <= output < n_outputs:
        raise ValueError(f"output must be an int in [0, {n_outputs}); got {output!r}.")
    return int(output)


# -- pairs ----------------------------------------------------------------------------------------
def _item_positions(values: Any, lookup: dict, what: str) -> np.ndarray:
    """(m, 2) positions into ``items`` of the pairs in ``values``."""
    if isinstance(values, pd.DataFrame):
        missing = {"item_a", "item_b"} - set(values.columns)
        if missing:
            raise ValueError(f"{what} needs columns 'item_a' and 'item_b'; missing {sorted(missing)}.")
        values = values[["item_a", "item_b"]].to_numpy(dtype=object)
    pairs = np.asarray(values, dtype=object)
    if pairs.size == 0:
        return np.empty((0, 2), dtype=int)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"{what} must be pairs of items, shape (n_pairs, 2); got shape {pairs.shape}.")
    try:
        return np.array([[lookup[a], lookup[b]] for a, b in pairs], dtype=int).reshape(-1, 2)
    except KeyError as exc:
        raise ValueError(f"{what} names an item that is not in items: {exc.args[0]!r}.") from None


def _candidate_pairs(n_items: int, candidates: Any, lookup: dict, judged: set) -> np.ndarray:
    if candidates is None:
        i, j = np.triu_indices(n_items, k=1)
        pairs = np.column_stack([i, j])
    else:
        pairs = _item_positions(candidates, lookup, "candidates")
        if (pairs[:, 0] == pairs[:, 1]).any():
            raise ValueError("candidates contain a pair of an item with itself.")
        # the same unordered pair listed twice (in either order) is one candidate
        key = np.sort(pairs, axis=1)
        _, first = np.unique(key, axis=0, return_index=True)
        pairs = pairs[np.sort(first)]
    if judged:
        keep = [(min(a, b), max(a, b)) not in judged for a, b in pairs]
        pairs = pairs[np.asarray(keep, dtype=bool)]
    return pairs


def _lookup(items: Any) -> dict:
    try:
        lookup = {item: k for k, item in enumerate(items)}
    except TypeError:
        raise ValueError("items must be hashable (paths, ids) to name pairs by item.") from None
    if len(lookup) != len(items):
        raise ValueError("items contain duplicates; each item must appear once.")
    return lookup


def suggest_pairs(
    model: Any,
    items: Any,
    user: Any,
    n: int,
    strategy: str = "information",
    candidates: Any = None,
    history: Any = None,
    random_state: int | np.random.RandomState | None = None,
    output: int | None = None,
) -> pd.DataFrame:
    """The ``n`` pairs of ``items`` that person ``user`` should compare next.

    Parameters
    ----------
    model : PairwiseRanker or Pipeline
        A ranker fitted with ``user_features``, or a fitted Pipeline whose last step is one and
        whose :class:`~skpercept.preprocessing.PairFeatures` step has a context transformer (a
        :class:`~skpercept.personal.UserEncoder`): then ``items`` are what that step's item
        transformer takes (image paths, ids).
    items : sequence or array-like
        The pool. For a pipeline: the items themselves (hashable: paths, ids). For a bare
        ranker: item feature rows ``(n_items, n_half_features_ − n_user_features_)``, laid out
        as one half of the ranker's input without its person columns; pairs then name items
        by their position in the pool.
    user : object or array-like or None
        For a pipeline, the person's id (a dict ``{column: id}`` for several context
        columns); an id the encoder does not know is the average person, as at prediction.
        For a bare ranker, the person's feature row (length ``n_user_features_``); None is the
        shared model.
    n : int
        How many pairs to suggest.
    strategy : {'information', 'variance', 'uncertainty', 'random'}, default='information'
        See the module docstring.
    candidates : array-like of shape (m, 2), DataFrame or None, default=None
        The pairs to choose from, as items (positions for a bare ranker), or a DataFrame with
        ``item_a`` and ``item_b``. None: every pair of two distinct items of the pool.
    history : array-like of shape (k, 2), DataFrame or None, default=None
        The pairs this person has already judged (items of the pool, in any order). They are
        never suggested again, and ``'information'`` and ``'variance'`` count what they
        already told.
    random_state : int, RandomState or None, default=None
        Breaks ties and draws the ``'random'`` pairs; an int makes the result repeatable.
    output : int or None, default=None
        Which attribute of a multi-output ranker to ask about (required then).

    Returns
    -------
    pairs : DataFrame with columns ``item_a``, ``item_b``, ``p_left``, ``criterion``
        ``n`` distinct pairs of distinct items, best first. ``p_left`` is the model's
        ``P(item_a ≻ item_b)`` for this person; ``criterion`` is what the strategy maximized
        (``'information'``: the gain in ``log det`` of the posterior precision when the pair
        was added to the batch; ``'variance'``: the drop, when it was added, in the posterior
        variance of the person's score difference averaged over every pair of the pool with
        weights ``λ_ab``; ``'uncertainty'``: ``p (1 − p)``; ``'random'``: NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import PairwiseRanker
    >>> from skpercept.personal import suggest_pairs
    >>> rng = np.random.RandomState(0)
    >>> items, people = rng.normal(size=(20, 3)), np.eye(4)
    >>> a, b = rng.randint(0, 20, size=(2, 200))
    >>> u = rng.randint(0, 4, size=200)  # which of the 4 people judged
    >>> X = np.hstack([items[a], people[u], items[b], people[u]])
    >>> y = (items[a, 0] > items[b, 0]).astype(int)
    >>> ranker = PairwiseRanker(hidden_layer_sizes=(), user_features=[3, 4, 5, 6],
    ...                         max_epochs=20, random_state=0).fit(X, y)
    >>> asked = suggest_pairs(ranker, items, people[1], n=3, random_state=0)
    >>> asked.columns.tolist()
    ['item_a', 'item_b', 'p_left', 'criterion']
    >>> len(asked), bool((asked.item_a != asked.item_b).all())
    (3, True)
    """
    _check_request(strategy, n)
    # polars / pyarrow tables and columns: read by column name and iterated by row, as pandas
    items, candidates, history = as_pandas(items), as_pandas(candidates), as_pandas(history)
    rng = check_random_state(random_state)
    head, rows = _half_rows(model, items, user)
    # A bare ranker's items are feature rows: pairs name them by position.
    names = list(items) if _is_pipeline(model) else list(range(len(rows)))
    lookup = _lookup(names)
    past = _item_positions(history, lookup, "history") if history is not None else np.empty((0, 2), int)
    judged = {(min(a, b), max(a, b)) for a, b in past}
    pairs = _candidate_pairs(len(names), candidates, lookup, judged)
    if len(pairs) < n:
        raise ValueError(
            f"Only {len(pairs)} candidate pair(s) remain (history excluded); cannot suggest {n}."
        )
    scores = np.asarray(head.score_items(rows), dtype=np.float64).reshape(len(rows), -1)
    j = _output(head, output, scores.shape[1])
    s = scores[:, j]
    # a random order first: ties then break by it, and 'random' is its first n
    order = rng.permutation(len(pairs))
    pairs = pairs[order]
    p = symmetric_expit(s[pairs[:, 0]] - s[pairs[:, 1]])
    if strategy == "random":
        chosen, criterion = np.arange(n), np.full(n, np.nan)
    elif strategy == "uncertainty":
        value = p * (1.0 - p)
        chosen = np.argsort(-value, kind="stable")[:n]
        criterion = value[chosen]
    else:
        H = np.asarray(head.item_representation(rows), dtype=np.float64)
        p_past = symmetric_expit(s[past[:, 0]] - s[past[:, 1]])
        G = _posterior_gram(H, H[past[:, 0]] - H[past[:, 1]], p_past * (1.0 - p_past), _prior(head, j))
        target, total = _pair_target(s) if strategy == "variance" else (None, 1.0)
        chosen, criterion = _greedy_design(G, pairs[:, 0], pairs[:, 1], p * (1.0 - p), n, target)
        criterion = criterion / total if total > 0 else criterion  # 0: every pair is certain
    picked = pairs[chosen]
    return pd.DataFrame(
        {
            "item_a": [names[i] for i in picked[:, 0]],
            "item_b": [names[i] for i in picked[:, 1]],
            "p_left": p[chosen],
            "criterion": criterion,
        }
    )


def _is_pipeline(model: Any) -> bool:
    return isinstance(model, Pipeline) and len(model.steps) > 1


def _prior(head: Any, output: int | None) -> float | np.ndarray:
    """The head's prior precision of ``v_u``: a float ``c`` for ``c·I`` (the isotropic prior),
    else the learned ``(d, d)`` matrix (:meth:`user_prior_precision`)."""
    if getattr(head, "user_prior_", "isotropic") != "learned":
        return 2.0 * head._alpha(0)
    return head.user_prior_precision(output)


def _posterior_gram(
    H: np.ndarray, Z_past: np.ndarray, weights: np.ndarray, prior: float | np.ndarray
) -> np.ndarray:
    """``G = H A⁻¹ Hᵀ`` for the posterior precision ``A = P + Σ w z zᵀ`` over ``Z_past``.

    ``P`` is ``prior·I`` for a float, else the matrix ``prior``. With fewer past judgments
    than dimensions (an embedding of 1280 features and a handful of judgments) Woodbury's
    identity needs no ``d × d`` solve beyond ``S = P⁻¹``:
    ``A⁻¹ = S − S Bᵀ (I + B S Bᵀ)⁻¹ B S`` with ``B = diag(√w) Z``.
    """
    d = H.shape[1]
    B = Z_past * np.sqrt(weights)[:, None]
    if np.ndim(prior) == 0:
        if len(B) < d:
            HB = H @ B.T
            K = prior * np.eye(len(B)) + B @ B.T
            return (H @ H.T - HB @ np.linalg.solve(K, HB.T)) / prior
        A = prior * np.eye(d) + B.T @ B
        return H @ np.linalg.solve(A, H.T)
    S = np.linalg.inv(prior)
    HS, BS = H @ S, B @ S
    K = np.eye(len(B)) + BS @ B.T
    return HS @ H.T - (HS @ B.T) @ np.linalg.solve(K, BS @ H.T)


def _pair_target(s: np.ndarray) -> tuple[np.ndarray, float]:
    """The target of ``'variance'`` over every pair of the pool, as a matrix on the items.

    ``Σ_{a<b} ω_ab (g_a − g_b)² = gᵀ L g`` for the graph Laplacian ``L`` of the pair weights
    ``ω_ab``; returns ``L`` and ``Σ ω_ab`` (to report a mean). ``ω_ab = λ_ab = p_ab (1 − p_ab)``
    from the person's current predictions: an error in ``v_u`` flips the predicted order of a
    pair near 0.5, not of a pair the model is sure about.
    """
    p = symmetric_expit(s[:, None] - s[None, :])
    omega = p * (1.0 - p)
    np.fill_diagonal(omega, 0.0)
    return np.diag(omega.sum(axis=1)) - omega, float(omega.sum() / 2.0)


def _greedy_design(
    G: np.ndarray,
    a: np.ndarray,
    b: np.ndarray | None,
    weights: np.ndarray,
    n: int,
    target: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy batch of questions ``z = h_a − h_b`` (pairs), or ``z = h_a`` when ``b`` is None (items).

    ``G = H A⁻¹ Hᵀ`` over the pool holds every quadratic form the candidates need:
    ``q = zᵀ A⁻¹ z = G_aa + G_bb − 2 G_ab`` (``G_aa`` for an item). Adding a question of Fisher
    weight ``w`` adds ``w z zᵀ`` to ``A``, a rank-one Sherman–Morrison step on ``A⁻¹``, hence
    ``G ← G − c g gᵀ`` with ``g = H A⁻¹ z`` (a column difference of ``G``) and
    ``c = w / (1 + w q)``.

    Without ``target``: D-optimal, each pick maximizing its gain in ``log det A``,
    ``log(1 + w q)``. With ``target`` ``T`` (positive semi-definite, over the pool's items):
    V-optimal, each pick maximizing its reduction of ``trace(A⁻¹ Hᵀ T H)``, the posterior
    variance of the person's predictions that ``T`` sums, which is
    ``w zᵀA⁻¹HᵀTHA⁻¹z / (1 + w q) = w gᵀ T g / (1 + w q)``. ``C = G T G`` holds these
    numerators (``C_aa + C_bb − 2 C_ab``) and follows ``G`` exactly:
    ``C ← C − c (r gᵀ + g rᵀ) + c² (gᵀ T g) g gᵀ`` with ``r = G T g``, a column difference of
    ``C``. Cost: ``C`` once, ``O(n_items³)``, then ``O(n_items²)`` per pick, as ``G``.
    """
    C = None if target is None else G @ target @ G
    available = np.ones(len(a), dtype=bool)
    chosen, gains = [], []
    for _ in range(n):
        q = _quadratic(G, a, b)
        if C is None:
            gain = np.log1p(weights * q)
        else:
            numerator = _quadratic(C, a, b)
            gain = weights * numerator / (1.0 + weights * q)
        k = int(np.argmax(np.where(available, gain, -np.inf)))  # first maximum: the random order
        chosen.append(k)
        gains.append(float(gain[k]))
        available[k] = False
        c = weights[k] / (1.0 + weights[k] * q[k])
        g = G[:, a[k]] - (0.0 if b is None else G[:, b[k]])
        if C is not None:
            r = C[:, a[k]] - (0.0 if b is None else C[:, b[k]])
            C = C - c * (np.outer(r, g) + np.outer(g, r)) + c * c * numerator[k] * np.outer(g, g)
        G = G - c * np.outer(g, g)
    return np.asarray(chosen, dtype=int), np.asarray(gains)


def _quadratic(G: np.ndarray, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``eᵀ G e`` for ``e = 1_a − 1_b`` (``1_a`` when ``b`` is None), clipped at 0 (round-off)."""
    diagonal = np.diag(G)
    value = diagonal[a] if b is None else diagonal[a] + diagonal[b] - 2.0 * G[a, b]
    return np.maximum(value, 0.0)


# -- items ----------------------------------------------------------------------------------------
def suggest_items(
    model: Any,
    items: Any,
    user: Any,
    n: int,
    strategy: str = "information",
    history: Any = None,
    random_state: int | np.random.RandomState | None = None,
    output: int | None = None,
) -> pd.DataFrame:
    """The ``n`` items that person ``user`` should rate next.

    The rating counterpart of :func:`suggest_pairs`, for a :class:`~skpercept.heads.RatingClassifier`
    or :class:`~skpercept.heads.RatingRegressor` fitted with ``user_features``.
    ``'information'`` uses the Laplace posterior of the person's deviation as there, with
    ``z = h(x)`` and a per-item weight ``λ``: for a classifier, the variance of the predicted
    level index under ``predict_proba`` (the Fisher information of a shift of the person's
    score in an adjacent-category logit model, an approximation for the softmax and CORN
    heads); for a regressor ``λ = 1`` (unit noise variance on the head's output scale).
    ``'uncertainty'``: a classifier's least confident items (``1 − max_k p_k``), a regressor's
    largest posterior variance ``h(x)ᵀ A⁻¹ h(x)`` of the personal score. ``'variance'``: the
    items whose answers most reduce the posterior variance of the person's score of every item
    of the pool (rated or not), each weighted by its ``λ`` (uniform for a regressor), i.e.
    ``trace(A⁻¹ M)`` with ``M = Σ_x λ_x h(x) h(x)ᵀ``; its criterion is that drop averaged over
    the pool with those weights.

    Parameters
    ----------
    model : RatingClassifier, RatingRegressor or Pipeline
        A head fitted with ``user_features``, or a fitted Pipeline ending in one whose person
        is encoded by a :class:`~skpercept.personal.UserEncoder` in a ColumnTransformer.
    items : sequence, DataFrame or array-like
        For a pipeline: the items (e.g. image paths) when the pipeline has one input column
        besides the user's, else a DataFrame of those input columns. For a bare head: item
        feature rows without the person columns.
    user : object or array-like or None
        The person's id (pipeline) or feature row (bare head; None = shared model).
    n : int
        How many items to suggest.
    strategy : {'information', 'variance', 'uncertainty', 'random'}, default='information'
    history : sequence or None, default=None
        Items (positions for a bare head or a DataFrame pool) this person has already rated:
        never suggested again, and counted by ``'information'`` and ``'variance'``.
    random_state : int, RandomState or None, default=None
    output : int or None, default=None
        Which attribute of a multi-output head to ask about (required then).

    Returns
    -------
    items : DataFrame with columns ``item``, ``prediction``, ``criterion``
        Best first; ``prediction`` is the head's prediction for this person.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.heads import RatingRegressor
    >>> from skpercept.personal import suggest_items
    >>> rng = np.random.RandomState(0)
    >>> items, people = rng.normal(size=(30, 3)), np.eye(3)
    >>> i, u = rng.randint(0, 30, size=150), rng.randint(0, 3, size=150)
    >>> X, y = np.hstack([items[i], people[u]]), items[i, 0] + 0.5 * u * items[i, 1]
    >>> reg = RatingRegressor(hidden_layer_sizes=(), user_features=[3, 4, 5],
    ...                       max_epochs=20, random_state=0).fit(X, y)
    >>> asked = suggest_items(reg, items, people[2], n=4, history=[0, 1], random_state=0)
    >>> len(asked), bool(asked.item.isin([0, 1]).any())
    (4, False)
    """
    _check_request(strategy, n)
    items, history = as_pandas(items), as_pandas(history)  # polars / pyarrow: as in suggest_pairs
    rng = check_random_state(random_state)
    head, rows = _rating_rows(model, items, user)
    names = (
        list(items) if _is_pipeline(model) and not isinstance(items, pd.DataFrame) else list(range(len(rows)))
    )
    lookup = _lookup(names)
    try:
        past = np.array([lookup[item] for item in (history if history is not None else [])], dtype=int)
    except KeyError as exc:
        raise ValueError(f"history names an item that is not in items: {exc.args[0]!r}.") from None
    free = np.setdiff1d(np.arange(len(rows)), past)
    if len(free) < n:
        raise ValueError(f"Only {len(free)} unrated item(s) remain; cannot suggest {n}.")
    free = free[rng.permutation(len(free))]
    prediction, weights, confidence = _rating_weights(head, rows, output)
    if strategy == "random":
        chosen, criterion = np.arange(n), np.full(n, np.nan)
    elif strategy == "uncertainty" and confidence is not None:
        value = 1.0 - confidence[free]
        chosen = np.argsort(-value, kind="stable")[:n]
        criterion = value[chosen]
    else:
        H = np.asarray(head.item_representation(rows), dtype=np.float64)
        G = _posterior_gram(H, H[past], weights[past], _prior(head, output))
        if strategy == "uncertainty":  # a regressor: posterior variance of the personal score
            value = np.diag(G)[free]
            chosen = np.argsort(-value, kind="stable")[:n]
            criterion = value[chosen]
        else:
            # 'variance': every item of the pool, weighted as its own answer would be
            target = np.diag(weights) if strategy == "variance" else None
            chosen, criterion = _greedy_design(G, free, None, weights[free], n, target)
            total = weights.sum() if strategy == "variance" else 1.0
            criterion = criterion / total if total > 0 else criterion  # 0: every item is certain
    picked = free[chosen]
    return pd.DataFrame(
        {"item": [names[i] for i in picked], "prediction": prediction[picked], "criterion": criterion}
    )


def _rating_weights(head: Any, rows: np.ndarray, output: int | None):
    """Per-item prediction, Fisher weight ``λ`` and (classifiers) the top class probability."""
    if hasattr(head, "predict_proba"):
        proba = head.predict_proba(rows)
        proba = proba if isinstance(proba, list) else [proba]
        j = _output(head, output, len(proba))
        P = np.asarray(proba[j], dtype=np.float64)
        classes = head.classes_[j] if isinstance(head.classes_, list) else head.classes_
        levels = np.arange(P.shape[1], dtype=np.float64)
        mean = P @ levels
        return np.asarray(classes)[P.argmax(axis=1)], P @ levels**2 - mean**2, P.max(axis=1)
    pred = np.asarray(head.predict(rows), dtype=np.float64).reshape(len(rows), -1)
    j = _output(head, output, pred.shape[1])
    return pred[:, j], np.ones(len(rows)), None
