"""Shared machinery of the LoRA estimators: build, train with skorch, predict, persist."""

from __future__ import annotations

import numbers
import os
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.helper import predefined_split
from skorch.history import History
from torch import nn

from skpercept._compat import Interval, InvalidParameterError, StrOptions
from skpercept._dataframes import as_pandas
from skpercept._holdout import early_stopping_split
from skpercept._utils import (
    SavedFormatMixin,
    current_device,
    estimator_parameters,
    loaded_device,
    resolve_device,
    resolve_seed,
    seeded_torch,
    to_arrays,
    to_tensors,
    torch_generator,
)
from skpercept.embed.towers import build_tower, rebuild_tower, tower_feature_dim
from skpercept.finetune import _ddp as dist_
from skpercept.finetune._adapters import (
    LoRATower,
    add_lora,
    fingerprint,
    resolve_pretrained,
    select_targets,
    set_gradient_checkpointing,
)
from skpercept.finetune._images import (
    ImageBlockSampler,
    ImageCollate,
    ImageRows,
    ImageTable,
    check_augment,
    load_image,
    make_transform,
)
from skpercept.finetune._net import LoRANet
from skpercept.heads.base import (
    TRAINING_PARAMETER_CONSTRAINTS,
    FitRows,
    TrainingParameters,
    hidden_sizes,
    route_scoring,
    training_callbacks,
)
from skpercept.heads.calibration import resolve_calibration

USER_COLUMN = "user_id"


@contextmanager
def _kept_in_place(module: nn.Module) -> Iterator[None]:
    """Give ``module`` back on the device and in the mode it was in (on the CPU between calls
    after ``fit``; on its training device mid-fit, where a scoring callback predicts)."""
    device = next(module.parameters()).device
    training = module.training
    try:
        yield
    finally:
        module.to(device).train(training)


def _amp_net_class():
    class _LoRANeuralNet(NeuralNet):
        """skorch net that optimizes only trainable tensors, scales fp16 gradients and, given a
        ``world_``, trains its shard of each global batch inside DDP."""

        scaler_ = None
        world_ = None
        _step_stats = None
        penalty_weight_ = 0.0

        def _initialize_module(self, reason=None):
            super()._initialize_module(reason=reason)
            if self.world_ is not None:
                self.module_ = dist_.wrap_module(dist_.unwrap_module(self.module_), self.world_)
            return self

        def infer(self, x, **fit_params):
            if self.world_ is not None:
                x = {k: v for k, v in x.items() if k != dist_.REAL}
            return super().infer(x, **fit_params)

        def get_loss(self, y_pred, y_true, X=None, training=False):
            loss = super().get_loss(y_pred, y_true, X=X, training=training)
            if self.world_ is not None:
                loss, *self._step_stats = dist_.global_loss(loss, y_true, X[dist_.REAL], self.world_)
            if training and self.penalty_weight_:
                # the Gaussian prior on the personal parameters (user_alpha / n labels · ||θ||²)
                prior = self.penalty_weight_ * dist_.unwrap_module(self.module_).personal_penalty()
                loss = loss + prior
                if self.world_ is not None:  # the recorded global loss includes it, as on one process
                    self._step_stats[0] += float(prior.detach())
            return loss

        def get_all_learnable_params(self):
            for name, param in self.module_.named_parameters():
                if param.requires_grad:
                    yield name, param

        def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
            # skorch sizes a batch by its inputs' common length; ours holds U distinct images
            # and N rows, so the row count is recorded instead.
            if iterator is None:
                return
            batch_count = 0
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                step = step_fn(batch, **fit_params)
                if self.world_ is None:
                    loss, rows = step["loss"].item(), len(batch[0]["index"])
                else:
                    # The step's loss and rows over all ranks: the same history everywhere.
                    loss, rows = self._step_stats
                self.history.record_batch(prefix + "_loss", loss)
                self.history.record_batch(prefix + "_batch_size", rows)
                self.notify("on_batch_end", batch=batch, training=training, **step)
                batch_count += 1
            self.history.record(prefix + "_batch_count", batch_count)

        def train_step(self, batch, **fit_params):
            if self.scaler_ is None:
                return super().train_step(batch, **fit_params)
            # fp16 gradients underflow without loss scaling; skorch has no scaler of its own.
            self._set_training(True)
            self.optimizer_.zero_grad()
            Xi, yi = unpack_data(batch)
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
            self.scaler_.scale(loss).backward()
            self.scaler_.unscale_(self.optimizer_)
            self.notify(
                "on_grad_computed", named_parameters=list(self.get_all_learnable_params()), X=Xi, y=yi
            )
            self.scaler_.step(self.optimizer_)
            self.scaler_.update()
            return {"loss": loss, "y_pred": y_pred}

    return _LoRANeuralNet


@estimator_parameters
class LoRABase(SavedFormatMixin, LoRATower, TrainingParameters, BaseEstimator, metaclass=ABCMeta):
    """Parameters and machinery shared by :class:`LoRARatingClassifier` and
    :class:`LoRAPairwiseRanker` (see their docstrings); not used directly.

    The training parameters mean what they mean for the heads on features
    (:class:`skpercept.heads.base.SkorchHead`): ``dropout`` is the dropout of the MLP head,
    ``early_stopping`` / ``validation_fraction`` / ``patience`` hold out a share of the data
    and restore the best epoch, ``callbacks`` are named the same way, and ``random_state``
    seeds generators local to ``fit``.

    Subclasses implement the abstract hooks ``_criterion`` and ``_net_outputs``, set
    ``_image_columns``, and define ``fit`` (encode the targets, then ``_fit_frame``).
    """

    _image_columns: ClassVar[tuple[str, ...]] = ()

    _parameter_constraints: ClassVar[dict] = {
        **TRAINING_PARAMETER_CONSTRAINTS,
        **LoRATower._parameter_constraints,
        "user_features": [str, None],
        "user_rank": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "user_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "calibration": [StrOptions({"auto", "temperature"}), None],
        "augment": ["boolean", Mapping, None],
        "batching": [StrOptions({"rows", "images"})],
        "precision": [StrOptions({"fp32", "bf16", "fp16"})],
        "gradient_checkpointing": ["boolean"],
        "merge": ["boolean"],
        "save_base_weights": [StrOptions({"auto"}), "boolean"],
        "image_root": [str, os.PathLike, None],
        "distributed": ["boolean"],
    }

    _skorch_owners: ClassVar[dict[str, tuple[str, ...]]] = {
        **TrainingParameters._skorch_owners,
        "module": ("hidden_layer_sizes", "dropout", "lora_rank", "lora_alpha", "lora_dropout", "user_rank"),
        "iterator_train": ("batch_size", "batching"),
    }

    user_features: str | None = "auto"
    user_rank: int | None = 16
    user_alpha: float = 1.0
    calibration: str | None = "auto"
    hidden_layer_sizes: tuple[int, ...] = (256,)
    dropout: float = 0.1
    augment: bool | Mapping | None = True
    batch_size: int = 32
    max_epochs: int = 20
    patience: int = 5
    batching: str = "rows"
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    merge: bool = False
    save_base_weights: bool | str = "auto"
    image_root: str | os.PathLike | None = None
    device: str = "auto"
    distributed: bool = False
    random_state: int | np.random.RandomState | None = None

    # -- hooks ---------------------------------------------------------------------------------
    @abstractmethod
    def _criterion(self):
        """The skorch criterion: a masked loss class (or partial) over the net's outputs."""

    @abstractmethod
    @abstractmethod
    def _tempered(self, out: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        """Raw outputs ``out`` with the temperatures (one per attribute) applied."""

    @abstractmethod
    def _fit_temperatures(self, out: np.ndarray, y: np.ndarray) -> list[float]:
        """The temperatures, from raw outputs on held-out rows and their encoded targets."""

    def _net_outputs(self) -> tuple[int, list[int] | None]:
        """Number of outputs, and the number of levels of each (None for pair scores)."""

    # -- input checks -----------------------------------------------------------------------
    def _check_frame(self, X, *, fit: bool) -> pd.DataFrame:
        X = as_pandas(X)  # polars / pyarrow: the image and person columns are read by name
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"{type(self).__name__} takes a DataFrame (pandas, polars, pyarrow) with column(s) "
                f"{list(self._image_columns)} (+ the person's column, see user_features), got "
                f"{type(X).__name__}."
            )
        missing = [c for c in self._image_columns if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks required column(s) {missing}; it has {list(X.columns)}.")
        if fit:
            validate_data(self, X, skip_check_array=True, reset=True)
        return X

    def _user_column(self, X: pd.DataFrame) -> str | None:
        """The column of ``X`` naming the person (``user_features``); None: no personal part."""
        if self.user_features is None:
            return None
        if self.user_features == "auto":
            return USER_COLUMN if USER_COLUMN in X.columns else None
        if self.user_features not in X.columns:
            raise ValueError(
                f"user_features={self.user_features!r} names no column of X; its columns are "
                f"{list(X.columns)}."
            )
        return self.user_features

    @staticmethod
    def _user_ids(X: pd.DataFrame, column: str) -> np.ndarray:
        ids = X[column].to_numpy(dtype=object)
        if pd.isna(ids).any():
            row = int(np.flatnonzero(pd.isna(ids))[0])
            raise ValueError(
                f"Missing {column!r} at row {row} (index label {X.index[row]!r}); give "
                "it an id (an id not seen in fit is predicted by the shared model)."
            )
        return ids

    def _user_codes(self, X: pd.DataFrame) -> np.ndarray:
        column = self.user_column_
        if not self.users_.size or column not in X.columns:
            return np.zeros(len(X), dtype=np.int64)
        ids = self._user_ids(X, column)
        lookup = {u: k + 1 for k, u in enumerate(self.users_.tolist())}
        return np.asarray([lookup.get(u, 0) for u in ids.tolist()], dtype=np.int64)

    def _validate_params(self) -> None:
        # validation_fraction=0 used to switch early stopping off here; say what does now.
        fraction = self.validation_fraction
        if isinstance(fraction, numbers.Real) and not isinstance(fraction, bool) and fraction == 0:
            raise InvalidParameterError(
                f"The 'validation_fraction' parameter of {type(self).__name__} must be a float in "
                f"the range (0.0, 1.0). Got {fraction!r} instead. To train max_epochs without a "
                "validation split, pass early_stopping=False."
            )
        super()._validate_params()

    def _resolve_pretrained(self) -> str | None:
        return resolve_pretrained(self.model_name, self.pretrained)

    # -- building ---------------------------------------------------------------------------
    def _build_module(self, n_users: int) -> LoRANet:
        base, spec = build_tower(self.model_name, self._resolve_pretrained())
        size = int(self.image_size or spec.image_size)
        self.tower_spec_ = spec
        self.image_size_ = size
        n_features = tower_feature_dim(base, size)
        self.module_features_ = n_features
        targets = select_targets(base, self.target_modules)
        if self.last_n_targets is not None:
            targets = targets[-int(self.last_n_targets) :]
        self.target_modules_ = targets
        tower = self._adapt(base)
        if self.gradient_checkpointing and not set_gradient_checkpointing(tower, True):
            raise ValueError(f"{self.model_name!r} offers no gradient checkpointing.")
        return self._net(tower, n_features, n_users)

    def _adapt(self, base: nn.Module) -> nn.Module:
        """``base`` frozen, with LoRA adapters on ``target_modules_``."""
        return add_lora(
            base,
            self.target_modules_,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
        )

    def _net(self, tower: nn.Module, n_features: int, n_users: int) -> LoRANet:
        """The adapted tower with this estimator's head and people."""
        n_outputs, n_classes = self._net_outputs()
        return LoRANet(
            tower,
            n_features=n_features,
            n_users=n_users,
            user_rank=self.user_rank,
            hidden_layer_sizes=hidden_sizes(self.hidden_layer_sizes),
            dropout=self.dropout,
            n_outputs=n_outputs,
            n_classes=n_classes,
            precision=self.precision,
        )

    def _transform(self, train: bool):
        spec = self.tower_spec_
        augment = check_augment(self.augment) if train else None
        return make_transform(self.image_size_, spec.mean, spec.std, augment)

    def _rows(self, X: pd.DataFrame, y) -> tuple[ImageTable, ImageRows]:
        table = ImageTable(X, list(self._image_columns))
        return table, ImageRows(table.codes, self._user_codes(X), y)

    def _split(self, codes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Training and validation rows: the heads' item hold-out, with images as items."""
        self.n_straddling_ = 0
        if not self.early_stopping:
            return np.arange(len(codes)), None
        split = early_stopping_split(codes, self.validation_fraction, seed, what="images")
        self.n_straddling_ = split.n_straddling
        return split.train, split.valid

    def _loader(self, role: str, rows: ImageRows, table: ImageTable, cache: dict, seed: int, world):
        """Dataset and skorch ``iterator_<role>__*`` parameters of the training or validation rows.

        Training draws shuffled row batches or image blocks from generators seeded by ``seed``;
        a distributed fit gives each rank its share of every step, padded so that all ranks
        run the same number of steps.
        """
        train = role == "train"
        n = len(rows)
        if world is not None:
            rows = dist_.pad_rows(rows)
        collate = ImageCollate(
            rows,
            table.sources,
            self._transform(train),
            image_root=self.image_root,
            target_size=self.image_size_,
            cache=cache,
        )
        params: dict = {"collate_fn": collate if world is None else dist_.ShardCollate(collate, n)}
        by_sampler = {"batch_size": 1, "shuffle": False}
        if train and self.batching == "images":
            blocks = ImageBlockSampler(rows.codes[:n], self.batch_size, shuffle=True, seed=seed)
            sampler = blocks if world is None else dist_.ShardedBlocks(blocks, n, world)
            params.update(by_sampler, batch_sampler=sampler)
        elif train and world is None:
            params.update(shuffle=True, generator=torch_generator(seed))
        elif train:
            generator = torch_generator(seed)
            sampler = dist_.ShardedBatches(n, self.batch_size, world, generator)
            params.update(by_sampler, batch_sampler=sampler, generator=generator)
        elif world is not None:
            params.update(by_sampler, batch_sampler=dist_.ShardedBatches(n, self.batch_size, world))
        return rows, {f"iterator_{role}__{key}": value for key, value in params.items()}

    def _make_net(self, X: pd.DataFrame, y: np.ndarray, device: str, seed: int, world=None):
        cache: dict = {}
        table, rows = self._rows(X, y)
        if world is not None:
            world.check_same_data(dist_.data_fingerprint(rows, table.sources))
        train_pos, valid_pos = self._split(table.codes, seed)
        self._valid_positions = valid_pos  # the temperature's rows, once training is done
        self._start_at_marginal(self.module_, y[train_pos])
        train_rows = ImageRows(rows.codes[train_pos], rows.users[train_pos], y[train_pos])
        train_rows, kwargs = self._loader("train", train_rows, table, cache, seed, world)
        kwargs["train_split"] = None
        if valid_pos is not None:
            valid_rows = ImageRows(rows.codes[valid_pos], rows.users[valid_pos], y[valid_pos])
            valid_rows, valid_kwargs = self._loader("valid", valid_rows, table, cache, seed, world)
            kwargs.update(valid_kwargs, train_split=predefined_split(valid_rows))
        callbacks = training_callbacks(
            self.callbacks, early_stopping=self.early_stopping, patience=self.patience
        )
        # scoring callbacks score predict on the rows as given, against y as given (_fit_targets)
        targets = self.__dict__.pop("_fit_targets", None)
        rows = FitRows(X, targets, None if valid_pos is None else train_pos, valid_pos)
        kwargs["callbacks"] = route_scoring(
            callbacks,
            view=self._scoring_view,
            rows=rows,
            estimator=type(self).__name__,
            batches=world is None,
        )
        net = _amp_net_class()(
            module=self.module_,
            criterion=self._criterion(),
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            # user_alpha alone shrinks the personal parameters
            optimizer__param_groups=[("user_*", {"weight_decay": 0.0})],
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            device=device,
            # Only rank 0 of a distributed fit prints.
            verbose=self.verbose if world is None or world.rank == 0 else 0,
            **kwargs,
        )
        net.world_ = world
        labels = np.asarray(y[train_pos], dtype=np.float64)
        net.penalty_weight_ = float(self.user_alpha) / max(float(np.isfinite(labels).sum()), 1.0)
        return net, train_rows

    def _start_at_marginal(self, module: LoRANet, y: np.ndarray) -> None:
        """Set ``module``'s output bias so that, before training, it predicts what the training
        labels ``y`` say without the images (see ``SkorchHead._start_at_marginal``). Nothing by
        default."""

    def _scoring_view(self, net) -> LoRABase:
        """This estimator as scoring callbacks see it while ``net`` trains: predicting with the
        module in training, on the net's device."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.device = str(net.device)
        return view

    def _fit_frame(self, X: pd.DataFrame, y: np.ndarray):
        world = dist_.join_world(self.device) if self.distributed else None
        self.__dict__.pop("temperature_", None)  # predictions while training are raw
        net = self._train(X, y, world)
        self.history_ = net.history
        self.module_ = dist_.unwrap_module(net.module_).to("cpu").eval()
        self.device_ = net.device
        self._adapter_state = self._trainable_state()
        if self.merge:
            self._merge_adapters()
        self._calibrate(X, y, self.__dict__.pop("_valid_positions", None))
        return self

    def _calibrate(self, X: pd.DataFrame, y: np.ndarray, valid: np.ndarray | None) -> None:
        """``calibration``: the temperature of each attribute, fitted on the early-stopping
        hold-out's rows (all their images held out; every person's deviation was trained
        without them). Without early stopping it stays 1."""
        self.calibration_ = resolve_calibration(self.calibration, bool(len(self.users_)))
        self.temperature_ = np.ones(self.n_outputs_)
        if self.calibration_ is None or valid is None or not len(valid):
            return
        out = self._forward(X.iloc[valid]).astype(np.float64)
        self.temperature_ = np.asarray(self._fit_temperatures(out, y[valid]), dtype=np.float64)

    def _temperatures(self) -> np.ndarray:
        # ones while training, and for a model saved before calibration existed
        fitted = self.__dict__.get("temperature_")
        return np.ones(self.n_outputs_) if fitted is None else fitted

    def _train(self, X: pd.DataFrame, y: np.ndarray, world):
        """Build the module and the skorch net, and train; returns the trained net."""
        device = resolve_device(self.device) if world is None else world.device
        seed = resolve_seed(self.random_state)
        if world is not None:
            # random_state=None draws a seed per process: all ranks take rank 0's.
            seed = world.broadcast(seed)
        self.user_column_ = self._user_column(X)
        column = self.user_column_
        users = self._user_ids(X, column) if column is not None else np.empty(0, dtype=object)
        self.users_ = np.asarray(sorted(pd.unique(users), key=str), dtype=object)
        # Weight init, dropout and augmentation draw from a forked, seeded torch generator;
        # row order and image blocks from generators of their own. Ranks other than 0 draw
        # their dropout and augmentation from seeds of their own (their rows differ anyway).
        # The tower's own layers (timm, open_clip, peft) draw from torch's process-wide
        # generator, so the whole fit is one seeded block: seeded fits in other threads wait
        # for it (to build their nets) rather than share its stream.
        with seeded_torch(seed, device):
            self.module_ = self._build_module(len(self.users_))
            net, train_rows = self._make_net(X, y, device, seed, world)
            if self.precision == "fp16":
                net.scaler_ = torch.amp.GradScaler(torch.device(device).type)
            own = world is not None and world.rank > 0
            with seeded_torch(dist_.rank_seed(seed, world.rank), device) if own else nullcontext():
                net.fit(train_rows, None)
        return net

    # -- inference --------------------------------------------------------------------------
    def _merge_adapters(self) -> None:
        # Folding LoRA into the base weights removes the adapter matmuls at inference.
        self.module_.tower = self.module_.tower.merge_and_unload()

    def _features(self, table: ImageTable) -> torch.Tensor:
        """Tower features of every distinct image of ``table`` (each computed once), computed on
        the current device (the module rests on the CPU between calls)."""
        device = current_device(self)
        module = self.module_.to(device).eval()
        transform = self._transform(False)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(table.sources), self.batch_size):
                batch = [
                    transform(load_image(s, image_root=self.image_root, target_size=self.image_size_))
                    for s in table.sources[start : start + self.batch_size]
                ]
                chunks.append(module.embed(torch.stack(batch).to(device)))
        return torch.cat(chunks)

    def _forward(self, X: pd.DataFrame) -> np.ndarray:
        """Module outputs for every row of X (calibrated: the temperatures applied), as NumPy on CPU."""
        check_is_fitted(self, "module_")
        X = self._check_frame(X, fit=False)
        table, rows = self._rows(X, None)
        with _kept_in_place(self.module_):
            features = self._features(table)
            index = torch.as_tensor(rows.codes, device=features.device)
            users = torch.as_tensor(rows.users, device=features.device)
            with torch.no_grad():
                out = self.module_.score(features[index[:, 0]], users)
                if index.shape[1] == 2:
                    out = out - self.module_.score(features[index[:, 1]], users)
        return self._tempered(out.double().cpu().numpy(), self._temperatures())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # a DataFrame of image paths (+ user ids)
        tags.input_tags.string = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = self.device != "cpu"
        return tags

    # -- persistence ------------------------------------------------------------------------
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.module_.named_parameters() if v.requires_grad}

    def _frozen_fingerprint(self, module) -> str:
        return fingerprint(
            {k: v for k, v in module.named_parameters() if not v.requires_grad and "lora_" not in k}
        )

    def _stores_base(self) -> bool:
        if self.save_base_weights == "auto":
            return not self.tower_spec_.reloadable
        return bool(self.save_base_weights)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_fit_targets", None)  # left by a fit that failed
        if "module_" not in state:
            return state
        module = state.pop("module_")
        # weights as NumPy arrays and the history as a list: data only (joblib and skops alike)
        saved = {"adapters": to_arrays(state.pop("_adapter_state")), "merged": self.merge}
        if self._stores_base():
            saved["full"] = to_arrays(module.state_dict())
        else:
            unmerged = self._rebuild_unmerged() if self.merge else module
            saved["fingerprint"] = self._frozen_fingerprint(unmerged)
        state["_lora_saved"] = saved
        if "history_" in state:
            state["history_"] = to_arrays(state["history_"])
        return state

    def _rebuild_unmerged(self) -> LoRANet:
        tower = self._adapt(rebuild_tower(self.tower_spec_))
        return self._net(tower, self.module_features_, len(self.users_)).eval()

    def __setstate__(self, state: dict) -> None:
        saved = state.pop("_lora_saved", None)
        if "history_" in state:
            state["history_"] = History(state["history_"])
        super().__setstate__(state)
        if saved is None:
            return
        loaded_device(self)  # where it will predict, said now if this machine lacks the saved device
        saved = {k: to_tensors(v) if k in ("adapters", "full") else v for k, v in saved.items()}
        # Build from the reference only when the base is not in the file: nothing downloads
        # for random-init or stored bases, and a stored base never needs the original source.
        reference = self.tower_spec_
        if "full" in saved:
            self.tower_spec_ = replace(reference, pretrained=None)
        module = self._rebuild_unmerged()
        self.tower_spec_ = reference
        if "full" in saved and saved["merged"]:
            module.tower = module.tower.merge_and_unload()
            module.load_state_dict(saved["full"])
            self.module_ = module.eval()
            self._adapter_state = saved["adapters"]
            return
        if "full" in saved:
            module.load_state_dict(saved["full"])
        else:
            found = self._frozen_fingerprint(module)
            if found != saved["fingerprint"]:
                raise RuntimeError(
                    f"The base weights at {reference.pretrained!r} are not the ones this model "
                    "was trained on (fingerprint mismatch); refit, or save with "
                    "save_base_weights=True to carry the base weights in the file."
                )
            missing = module.load_state_dict(saved["adapters"], strict=False).unexpected_keys
            if missing:
                raise RuntimeError(f"Saved adapters do not fit the rebuilt model: {missing[:3]}.")
        self.module_ = module
        self._adapter_state = saved["adapters"]
        if saved["merged"]:
            self._merge_adapters()
