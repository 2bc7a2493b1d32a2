"""The shared parameter and attribute text of the skorch-trained heads' docstrings.

A head's docstring holds ``{common_params}``, ``{common_attrs}`` and ``{midtraining}``;
:func:`fill_doc` puts this text in, so every head documents the shared parameters alike.
"""

from __future__ import annotations

import re

COMMON_PARAMS_DOC = """hidden_layer_sizes : int or tuple of int, default=(64,)
        Hidden widths of the MLP trunk; ``()`` gives a linear model on the input features.
        The default is small on purpose: frozen image embeddings carry mostly linear signal
        about perception, and studies have hundreds to thousands of images, so a wider or
        deeper trunk memorizes items (measurements: ``docs/benchmarks.md``, "Heads").
    activation : {'relu', 'gelu', 'silu', 'tanh', 'leaky_relu', 'elu', 'identity'}, default='relu'
        ``'identity'`` makes the trunk linear: with ``hidden_layer_sizes=(r,)`` and
        ``user_features``, people's deviations then lie in an ``r``-dimensional space.
    dropout : float in [0, 1), default=0.3
        Dropout after each hidden layer of the MLP.
    batch_norm : bool, default=False
        BatchNorm before each hidden activation.
    lr : float, default=1e-3
        Learning rate.
    weight_decay : float, default=1e-2
        Weight decay. Decoupled for ``optimizer='adamw'``; a plain L2 penalty
        ``weight_decay / 2 * ||w||²`` on the mean loss for ``'adam'`` and ``'sgd'``.
    optimizer : {'adamw', 'adam', 'sgd'}, default='adamw'
        ``'sgd'`` uses momentum 0.9.
    batch_size : int or 'auto', default='auto'
        Mini-batch size for training and prediction. ``'auto'``: training batches of
        ``min(256, max(8, ceil(n_train / 8)))`` rows (at least 8 optimizer steps per epoch,
        so a few dozen labelled images are not trained by one step per epoch), prediction in
        batches of 256 (why: ``docs/benchmarks.md``, "Batch size").
    max_epochs : int, default=200
        Upper bound on training epochs (early stopping usually ends training sooner).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the items (seeded by ``random_state``; see
        ``validation_split``), stop when ``valid_loss`` has not improved for ``patience``
        epochs and restore the weights of the best epoch. When False, train for exactly
        ``max_epochs`` on all rows.
    validation_fraction : float in (0, 1), default=0.1
        Share of the items (or rows) held out for early stopping.
    validation_split : {'auto', 'items', 'rows'}, default='auto'
        ``'items'``: hold out items, not rows, so that validation measures what the model
        does for new images. Items are the ``groups`` given to ``fit``, or else recognized
        from the features: rows (for pairs, half-rows) equal in their descriptive columns
        are one item, where columns equal in both halves of every pair row (context such as
        a user one-hot) and, when other columns exist, columns holding only 0/1 (one-hot
        codes) do not count, so an image rated or judged by several users stays one item.
        Validation rows have all their items held out, training rows none; rows straddling
        the cut are left out of both (counted in ``n_straddling_``). ``'rows'``: a random
        share of rows (stratified by level for a single-output classifier), which for rows
        sharing items rewards memorizing them. ``'auto'``: ``'items'``, except when ``groups``
        is not given and the items are identity codes (every column that tells them apart
        holds only 0/1, e.g. one-hot item ids): no model scores an unseen identity, so new
        judgments of known items (``'rows'``) are what validation should measure.
    patience : int, default=10
        Epochs without a lower ``valid_loss`` before training stops.
    n_ensemble : int, default=1
        Number of nets trained (a deep ensemble). Member ``i`` is the fit a single head makes
        with ``random_state = seed + i`` (``seed``: the int ``random_state`` resolves to,
        ``ensemble_seeds_``): its own initialization, batch order, dropout and early-stopping
        hold-out, so every item trains most members. Predictions average the members' raw
        outputs (see the head's Notes); training and prediction cost ``n_ensemble`` times as much.
    user_features : {'auto'}, array-like of int, bool or str, or None, default=None
        Which input columns identify the person judging (as a one-hot
        :class:`~skpercept.personal.UserEncoder` block): indices within one rating row, or
        within ONE HALF of a pair row (the same columns in both halves); a boolean mask of
        that length; or feature names (``X`` a DataFrame; for pairs, the left half's names).
        ``'auto'``: for pairs, the columns equal in both halves of every training row and
        not constant (the context :class:`~skpercept.preprocessing.PairFeatures` appends); for
        ratings, the columns named like UserEncoder output (``user_id_<id>``, also behind a
        ``<prefix>__``), which needs feature names. The trunk then sees the other columns
        only, ``h(x)``, and each person gets a deviation from the shared linear head:
        ``s(x, u) = h(x)·(w + V u) + b``; rating heads also learn a per-person offset
        ``c·u`` and log-scale ``a·u`` per attribute (lenient or harsh, steady or erratic
        raters): ``exp(a·u)·(h(x)·(w + V u) + b) + c·u`` (logits for the classifier). An
        all-zero block, the unknown person of a UserEncoder, gives exactly the shared model
        (cold start). With ``hidden_layer_sizes=()``, one-hot items and a one-hot person,
        the ranker is a hierarchical Bradley–Terry model. ``fit_users`` fits (new) people
        alone. None: no personal part; person columns, if any, are ordinary inputs.
    user_alpha : float > 0 or 'auto', default='auto'
        Strength of the Gaussian prior (of precision ``2 · user_alpha``) shrinking the
        personal parameters ``θ = (V, c, a)`` toward 0: training minimizes
        ``(Σ w·loss + user_alpha·||θ||²) / Σ w`` (sums over the observed training labels,
        ``w`` the sample weights, the loss a negative log-likelihood), so ``user_alpha`` is
        counted in judgments and does not fade as the data grow. ``weight_decay`` does not
        apply to ``θ``. ``'auto'`` (with one-hot person columns): the shared part trains
        alone, every person's ``θ`` held at 0 (trained beside deviations that chase a few
        judgments each, it stopped early and under-trained); then, with it frozen,
        every person is re-fitted under each strength of 0.1, 0.3, …, 1000 and the one whose
        fits predict held-out judgments of the training people best is kept: 3-fold
        cross-validation over the people's judgments (item-disjoint folds where the
        early-stopping hold-out is by items: a fold's items are never in the rows its people
        are fitted on), and the rows training never saw (the early-stopping hold-out and the
        pairs straddling it) when they hold at least 10 labels; each of the two has half the
        say (its mean loss per label), as only the second shows images the shared part has
        not memorized. A weak prior lets a person's deviation chase their few judgments and the
        model says "92 % sure" where it is right three times in four; the chosen strength
        (``user_alpha_``) is as sure as held-out judgments allow. It needs one-hot person
        columns (else training starts at 1 and keeps it, deviations and shared part
        together). A number fixes the strength and trains both together (tune it
        like any parameter, ``head__user_alpha`` in a search).
    user_prior : {'learned', 'isotropic'}, default='learned'
        The prior over a person's parameters ``θ_u`` for the personal fit. ``'isotropic'``:
        the ``user_alpha`` penalty above. ``'learned'`` (empirical Bayes): people's tastes
        are correlated (they differ along a few shared axes), so after training, with the
        shared part frozen, a few EM rounds estimate the population covariance ``Σ`` of the
        ``θ_u`` (Laplace approximation, shrunk toward a scaled identity by Ledoit–Wolf) and
        re-fit every person under the penalty ``½ θ_uᵀ Σ⁻¹ θ_u``; :meth:`fit_users` fits new
        people under it, and :mod:`skpercept.personal` asks questions under it. ``Σ`` takes
        its shape from the people and its strength from ``user_alpha`` (its mean variance
        along the directions the judgments measure is the isotropic prior's ``1 / (2 ·
        user_alpha)``: EM's own estimate of the spread is biased low for people with a few
        binary judgments each). Its mean stays 0, so an unknown person still gets exactly
        the shared model, and the shared model is the same as with ``'isotropic'``. It needs
        one-hot person columns (no covariates among ``user_features``), judgments from at
        least 20 people and at most 512 personal parameters per person (``d × n_outputs``
        head weights, plus a rating head's offsets and log-scales); otherwise ``fit`` falls
        back to the isotropic prior (``user_prior_`` says which prior is in use,
        ``user_prior_reason_`` why). What it gives: ``docs/benchmarks.md``, "One person's
        taste".
    choose_trunk : bool or 'auto', default='auto'
        Whether ``fit`` also trains the linear trunk (``hidden_layer_sizes=()``) and keeps
        whichever of the two predicts held-out judgments better: the loss that chose
        ``user_alpha='auto'`` at its choice (folds of the training people's judgments and the
        rows training never saw, each source's mean per label, averaged), else the loss on
        the rows training never saw (the
        early-stopping hold-out and the rows straddling it), after the people's fit and the
        temperature, summed over the members; a tie keeps the linear one.
        ``'auto'``: for a model of people (``user_features``) whose items have no more
        columns than the last hidden layer has units (the linear trunk is then the smaller
        model; with wide embeddings a person's linear deviation would have one weight per
        column): when the items carry little
        beyond their identity, or people have a few judgments each, the hidden layer mostly
        memorizes (on Topmodel2007 with 5 judgments per person the 64-unit trunk trailed the
        hierarchical Bradley–Terry model by 1–3 points). Needs early stopping (the held-out
        rows); fitting takes about twice as long; callbacks see both trainings.
        ``hidden_layer_sizes_`` is the trunk kept, ``trunk_losses_`` the two losses.
    device : str, default='auto'
        ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'`` (CUDA when visible). Outputs are
        always NumPy arrays on the CPU. Set on a fitted model (``set_params``), it moves there
        at the next call, without refitting; a model saved for a GPU runs on the CPU of a
        machine without one (with a ``DeviceFallbackWarning``).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, batch order, dropout and the validation split through
        generators local to ``fit``; the caller's global ``random``, NumPy and torch generators
        are neither re-seeded nor advanced. With an int, two fits on CPU give identical
        predictions; ``None`` draws a fresh seed per fit.
    verbose : int, default=0
        skorch's per-epoch log when > 0.
    callbacks : list or None, default=None
        Extra skorch callbacks (instances or ``(name, callback)`` tuples) appended to the
        net's callbacks, e.g. a pruning callback from :mod:`skpercept.model_selection`; a bare callback
        is named ``user_callback_<i>_<ClassName>``. The estimator can be evaluated from inside
        a callback: see "Evaluating mid-training" below. {callbacks_skorch}"""

CALLBACKS_DOC = """skorch's scoring callbacks score the
        estimator, not the net's raw outputs and encoded targets: ``EpochScoring(scoring)``
        gives its scorer the estimator as it predicts at that epoch (``predict``,
        ``predict_proba``, ``decision_function`` and ``score`` as after ``fit``; of an ensemble,
        the member in training, alone) with the rows' ``X`` and their ``y`` as given to ``fit``:
        the early-stopping hold-out (``on_train=False``, which needs ``early_stopping=True``) or
        the training rows (``on_train=True``). A scorer name (``'r2'``, ``'accuracy'``) or a
        scikit-learn scorer scores each attribute (column of ``y``) on its observed labels and
        averages over attributes, as ``score`` does with NaN; a callable ``scoring(estimator,
        X, y)`` gets ``y`` whole (NaN included); ``scoring=None`` is ``score``. A scorer the
        estimator cannot answer (``'neg_log_loss'`` of a regressor, ``'accuracy'`` of soft
        labels) is a ValueError saying so. ``BatchScoring`` scores the validation batches
        alike; it refuses ``on_train=True`` (training batches are shuffled, pairs swapped).
        The score is recorded in the net's history under the callback's name, for other
        callbacks (an ``EarlyStopping(monitor=name)``) and after ``fit``. Nested parameters work as
        on a skorch net: ``set_params(callbacks__<name>__<param>=value)`` sets a parameter of
        the callback of that name (``callbacks__<name>=cb`` replaces it, None removes it),
        ``get_params()`` lists them, and a search (``GridSearchCV``) can tune them.
        ``optimizer__lr`` and ``optimizer__weight_decay`` set ``lr`` and ``weight_decay``; the net
        is built from the estimator's parameters in ``fit``, so other nested names of its parts
        (``module__*``, ``criterion__*``, ``iterator_train__*``, ``iterator_valid__*``) are a
        ValueError naming the parameter to set instead, and callbacks the estimator builds
        (``early_stopping``, skorch's defaults) are set through its parameters."""

COMMON_PARAMS_DOC = COMMON_PARAMS_DOC.replace("{callbacks_skorch}", CALLBACKS_DOC)

COMMON_ATTRS_DOC = """net_ : skorch.NeuralNet
        The trained net (the first member of an ensemble). ``net_.history[:, 'train_loss']``
        holds the per-epoch training loss and, with early stopping,
        ``net_.history[:, 'valid_loss']`` the validation loss.
    nets_ : list of skorch.NeuralNet
        All ``n_ensemble`` trained nets, ``nets_[0] is net_``.
    ensemble_seeds_ : ndarray of shape (n_ensemble,)
        The seed of each member: refitting a single head with ``random_state=ensemble_seeds_[i]``
        reproduces member ``i``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    n_outputs_ : int
        Number of attributes (columns of ``y``; 1 for 1-D ``y``).
    user_features_ : ndarray of int
        The person columns (within a row, or within a half for pairs); empty without
        ``user_features``. Grows when ``fit_users`` meets new people.
    n_user_features_ : int
    user_prior_ : str
        With ``user_features``: the prior in use, ``'isotropic'`` or ``'learned'`` (see
        ``user_prior``); ``user_prior_reason_`` says why ``'learned'`` was not possible.
    user_precision_ : ndarray of shape (n_ensemble, p, p)
        With ``user_prior_ == 'learned'``: each member's learned prior precision ``Σ⁻¹`` of
        a person's ``p`` personal parameters (``V_u`` flattened row-major, then the offsets
        and log-scales), at the strength ``user_alpha_``. See :meth:`user_prior_precision`.
    hidden_layer_sizes_ : tuple of int
        The trunk in use: ``hidden_layer_sizes``, or ``()`` when ``choose_trunk`` kept the
        linear one.
    trunk_losses_ : dict
        Only when ``fit`` chose a trunk: the held-out loss of each (``{'linear': …,
        'hidden': …}``).
    user_alpha_ : ndarray of shape (n_ensemble,)
        With ``user_features``: each member's prior strength (``user_alpha``, or the one
        ``'auto'`` chose; ``user_alpha_reason_`` says on what).
    n_straddling_ : int
        Training rows left out of both sides of the item hold-out because their items fall on
        both sides of the cut (0 without early stopping or with ``validation_split='rows'``);
        of the first member's hold-out for an ensemble."""

MIDTRAINING_DOC = """Evaluating mid-training: ``fit`` sets ``net_`` and all other fitted attributes before
    the first epoch, so a skorch callback holding a reference to this estimator can call its
    ``predict``/``predict_proba``/``score`` in ``on_epoch_end`` and gets the current weights.
    With ``n_ensemble > 1`` the members train one after another, each through the same
    callbacks (epochs restart at 1 for every member); predictions then average the members
    trained so far and the one in training."""


def _parameter_blocks(text: str) -> dict[str, str]:
    """The text of each parameter of a numpydoc Parameters section, by name."""
    blocks: dict[str, str] = {}
    name = None
    for line in text.splitlines(keepends=True):
        match = re.match(r"^(?:    )?(\w+) : ", line)
        if match:
            name = match.group(1)
            blocks[name] = ""
        blocks[name] += line
    return blocks


def fill_doc(cls: type | None = None, *, overrides: dict[str, str] | None = None):
    """Insert the shared parameter/attribute text into a head's docstring.

    ``overrides`` replaces the shared text of some parameters (name -> its numpydoc entry) for
    a head whose default or meaning differs. Use as ``@fill_doc`` or
    ``@fill_doc(overrides={...})``.

    Examples
    --------
    >>> from skpercept.heads.base import fill_doc
    >>> @fill_doc(overrides={"dropout": "    dropout : float, default=0.0\\n        No dropout here."})
    ... class MyHead:
    ...     '''A head.
    ...
    ...     Parameters
    ...     ----------
    ...     {common_params}
    ...
    ...     Attributes
    ...     ----------
    ...     {common_attrs}
    ...     '''
    >>> "    hidden_layer_sizes : int or tuple of int, default=(64,)" in MyHead.__doc__
    True
    >>> "No dropout here." in MyHead.__doc__, "{common_attrs}" in MyHead.__doc__
    (True, False)
    """

    def fill(cls: type) -> type:
        blocks = _parameter_blocks(COMMON_PARAMS_DOC)
        for name, text in (overrides or {}).items():
            blocks[name] = text.rstrip("\n") + "\n"
        params = "".join(blocks.values()).rstrip("\n")
        cls.__doc__ = (
            cls.__doc__.replace("{common_params}", params)
            .replace("{common_attrs}", COMMON_ATTRS_DOC)
            .replace("{midtraining}", MIDTRAINING_DOC)
        )
        return cls

    return fill if cls is None else fill(cls)
