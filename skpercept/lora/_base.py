"""Shared machinery of the LoRA estimators: build, train with skorch, predict, persist."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from skpercept._utils import resolve_device, seed_everything
from skpercept.embed.timm import SHIPPED_LITE0
from skpercept.lora import _backbone as bb
from skpercept.lora._images import (
    ImageBlockSampler,
    ImageCollate,
    ImageRows,
    ImageTable,
    check_augment,
    load_image,
    make_transform,
)
from skpercept.lora._module import LoRANet
from skpercept.model_selection import image_disjoint_train_test_split

USER_COLUMN = "user_id"
_PRECISIONS = ("fp32", "bf16", "fp16")


def _amp_net_class():
    from skorch import NeuralNet
    from skorch.dataset import unpack_data

    class _LoRANeuralNet(NeuralNet):
        """skorch net that optimizes only trainable tensors and scales fp16 gradients."""

        scaler_ = None

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
                self.history.record_batch(prefix + "_loss", step["loss"].item())
                self.history.record_batch(prefix + "_batch_size", len(batch[0]["index"]))
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


class LoRABase(BaseEstimator, metaclass=ABCMeta):
    """Parameters and machinery shared by :class:`LoRARatingClassifier` and
    :class:`LoRAPairwiseRanker` (see their docstrings)."""

    _image_columns: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        backbone: str = "timm:efficientnet_lite0",
        pretrained: str | None = "auto",
        image_size: int | None = None,
        r: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.1,
        target_modules="auto",
        last_n_targets: int | None = None,
        user_dim: int = 16,
        hidden_layer_sizes: tuple[int, ...] = (256,),
        head_dropout: float = 0.1,
        augment=True,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        batch_size: int = 32,
        max_epochs: int = 20,
        patience: int = 5,
        validation_fraction: float = 0.1,
        batching: str = "rows",
        callbacks=None,
        precision: str = "fp32",
        gradient_checkpointing: bool = False,
        merge: bool = False,
        save_base_weights="auto",
        image_root=None,
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.backbone = backbone
        self.pretrained = pretrained
        self.image_size = image_size
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = target_modules
        self.last_n_targets = last_n_targets
        self.user_dim = user_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.head_dropout = head_dropout
        self.augment = augment
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.batching = batching
        self.callbacks = callbacks
        self.precision = precision
        self.gradient_checkpointing = gradient_checkpointing
        self.merge = merge
        self.save_base_weights = save_base_weights
        self.image_root = image_root
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- subclasses provide ---------------------------------------------------------------
    @abstractmethod
    def _criterion(self):
        """The skorch criterion: a masked loss class (or partial) over the net's outputs."""

    @abstractmethod
    def _net_outputs(self) -> tuple[int, list[int] | None]:
        """Number of outputs, and the number of levels of each (None for pair scores)."""

    # -- input checks -----------------------------------------------------------------------
    def _check_frame(self, X, *, fit: bool) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"{type(self).__name__} takes a pandas DataFrame with column(s) "
                f"{list(self._image_columns)} (+ optional {USER_COLUMN!r}), got {type(X).__name__}."
            )
        missing = [c for c in self._image_columns if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks required column(s) {missing}; it has {list(X.columns)}.")
        if fit:
            validate_data(self, X, skip_check_array=True, reset=True)
        return X

    @staticmethod
    def _user_ids(X: pd.DataFrame) -> np.ndarray:
        ids = X[USER_COLUMN].to_numpy(dtype=object)
        if pd.isna(ids).any():
            row = int(np.flatnonzero(pd.isna(ids))[0])
            raise ValueError(
                f"Missing {USER_COLUMN!r} at row {row} (index label {X.index[row]!r}); give "
                "it an id (an id not seen in fit is predicted as the average person)."
            )
        return ids

    def _user_codes(self, X: pd.DataFrame) -> np.ndarray:
        if not self.users_.size or USER_COLUMN not in X.columns:
            return np.zeros(len(X), dtype=np.int64)
        ids = self._user_ids(X)
        lookup = {u: k + 1 for k, u in enumerate(self.users_.tolist())}
        return np.asarray([lookup.get(u, 0) for u in ids.tolist()], dtype=np.int64)

    def _check_params(self) -> None:
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}.")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}.")
        if self.batching not in ("rows", "images"):
            raise ValueError(f"batching must be 'rows' or 'images', got {self.batching!r}.")
        if self.save_base_weights not in ("auto", True, False):
            raise ValueError(
                f"save_base_weights must be 'auto', True or False, got {self.save_base_weights!r}."
            )

    def _resolve_pretrained(self) -> str | None:
        if self.pretrained != "auto":
            return self.pretrained
        if self.backbone == "timm:efficientnet_lite0":
            return SHIPPED_LITE0
        raise ValueError(
            f"pretrained='auto' only knows weights for 'timm:efficientnet_lite0'; for "
            f"{self.backbone!r} pass pretrained=<tag or local file>, or None for random init."
        )

    # -- building ---------------------------------------------------------------------------
    def _build_module(self, n_users: int) -> LoRANet:
        base, spec = bb.build_backbone(self.backbone, self._resolve_pretrained())
        size = int(self.image_size or spec.image_size)
        self.backbone_spec_ = spec
        self.image_size_ = size
        n_features = bb.feature_dim(base, size)
        self.module_features_ = n_features
        targets = bb.select_targets(base, self.target_modules)
        if self.last_n_targets is not None:
            if int(self.last_n_targets) < 1:
                raise ValueError(f"last_n_targets must be >= 1, got {self.last_n_targets!r}.")
            targets = targets[-int(self.last_n_targets) :]
        self.target_modules_ = targets
        tower = bb.add_lora(base, self.target_modules_, r=self.r, alpha=self.alpha, dropout=self.dropout)
        if self.gradient_checkpointing and not bb.set_gradient_checkpointing(tower, True):
            raise ValueError(f"{self.backbone!r} offers no gradient checkpointing.")
        n_outputs, n_classes = self._net_outputs()
        return LoRANet(
            tower,
            n_features=n_features,
            n_users=n_users,
            user_dim=self.user_dim,
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            dropout=self.head_dropout,
            n_outputs=n_outputs,
            n_classes=n_classes,
            precision=self.precision,
        )

    def _transform(self, train: bool):
        spec = self.backbone_spec_
        augment = check_augment(self.augment) if train else None
        return make_transform(self.image_size_, spec.mean, spec.std, augment)

    def _rows(self, X: pd.DataFrame, y) -> tuple[ImageTable, ImageRows]:
        table = ImageTable(X, list(self._image_columns))
        return table, ImageRows(table.codes, self._user_codes(X), y)

    def _split(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        positions = np.arange(len(X))
        if not self.validation_fraction:
            return positions, None
        try:
            _, _, train, valid = image_disjoint_train_test_split(
                X,
                positions,
                test_size=self.validation_fraction,
                item_columns=list(self._image_columns),
                random_state=self.random_state,
            )
        except ValueError as exc:
            raise ValueError(
                f"Cannot hold out validation_fraction={self.validation_fraction} of the images "
                f"for early stopping ({exc}); use validation_fraction=0 with few images."
            ) from exc
        return np.asarray(train), np.asarray(valid)

    def _make_net(self, X: pd.DataFrame, y: np.ndarray, device: str):
        from skorch.callbacks import EarlyStopping
        from skorch.helper import predefined_split

        train_pos, valid_pos = self._split(X)
        cache: dict = {}
        table, rows = self._rows(X, y)
        train_rows = ImageRows(rows.codes[train_pos], rows.users[train_pos], y[train_pos])
        kwargs = {
            "iterator_train__collate_fn": ImageCollate(
                train_rows,
                table.sources,
                self._transform(True),
                image_root=self.image_root,
                target_size=self.image_size_,
                cache=cache,
            ),
            "callbacks": [],
            "train_split": None,
        }
        if self.batching == "images":
            kwargs.update(
                iterator_train__batch_sampler=ImageBlockSampler(
                    train_rows.codes,
                    self.batch_size,
                    shuffle=True,
                    seed=0 if self.random_state is None else int(self.random_state),
                ),
                iterator_train__batch_size=1,
                iterator_train__shuffle=False,
            )
        else:
            kwargs["iterator_train__shuffle"] = True
        if valid_pos is not None:
            valid_rows = ImageRows(rows.codes[valid_pos], rows.users[valid_pos], y[valid_pos])
            kwargs.update(
                train_split=predefined_split(valid_rows),
                iterator_valid__collate_fn=ImageCollate(
                    valid_rows,
                    table.sources,
                    self._transform(False),
                    image_root=self.image_root,
                    target_size=self.image_size_,
                    cache=cache,
                ),
                callbacks=[
                    (
                        "early_stopping",
                        EarlyStopping(
                            patience=self.patience, load_best=True, sink=print if self.verbose else _silent
                        ),
                    )
                ],
            )
        for i, cb in enumerate(self.callbacks or []):
            kwargs["callbacks"].append(cb if isinstance(cb, tuple) else (f"user_callback_{i}", cb))
        net = _amp_net_class()(
            module=self.module_,
            criterion=self._criterion(),
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            device=device,
            verbose=self.verbose,
            **kwargs,
        )
        return net, train_rows

    def _fit_frame(self, X: pd.DataFrame, y: np.ndarray):
        self._check_params()
        device = resolve_device(self.device)
        seed_everything(self.random_state)
        users = self._user_ids(X) if USER_COLUMN in X.columns else np.empty(0, dtype=object)
        self.users_ = np.asarray(sorted(pd.unique(users), key=str), dtype=object)
        self.module_ = self._build_module(len(self.users_))
        net, train_rows = self._make_net(X, y, device)
        if self.precision == "fp16":
            net.scaler_ = torch.amp.GradScaler(torch.device(device).type)
        net.fit(train_rows, None)
        self.history_ = net.history
        self.module_ = net.module_.to("cpu").eval()
        self.device_ = device
        self._adapter_state = self._trainable_state()
        if self.merge:
            self._merge_adapters()
        return self

    # -- inference --------------------------------------------------------------------------
    def _merge_adapters(self) -> None:
        # Folding LoRA into the base weights removes the adapter matmuls at inference.
        self.module_.backbone = self.module_.backbone.merge_and_unload()

    def _features(self, table: ImageTable) -> torch.Tensor:
        """Tower features of every distinct image of ``table`` (each computed once)."""
        device = resolve_device(self.device)
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
        """Module outputs for every row of X, as NumPy on CPU."""
        check_is_fitted(self, "module_")
        X = self._check_frame(X, fit=False)
        table, rows = self._rows(X, None)
        features = self._features(table)
        index = torch.as_tensor(rows.codes, device=features.device)
        users = torch.as_tensor(rows.users, device=features.device)
        with torch.no_grad():
            out = self.module_.score(features[index[:, 0]], users)
            if index.shape[1] == 2:
                out = out - self.module_.score(features[index[:, 1]], users)
        self.module_.to("cpu")
        return out.float().cpu().numpy()

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
        return bb.fingerprint(
            {k: v for k, v in module.named_parameters() if not v.requires_grad and "lora_" not in k}
        )

    def _stores_base(self) -> bool:
        if self.save_base_weights == "auto":
            return not self.backbone_spec_.reloadable
        return bool(self.save_base_weights)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if "module_" not in state:
            return state
        module = state.pop("module_")
        saved = {"adapters": state.pop("_adapter_state"), "merged": self.merge}
        if self._stores_base():
            saved["full"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        else:
            unmerged = self._rebuild_unmerged() if self.merge else module
            saved["fingerprint"] = self._frozen_fingerprint(unmerged)
        state["_lora_saved"] = saved
        return state

    def _rebuild_unmerged(self) -> LoRANet:
        base = bb.rebuild_backbone(self.backbone_spec_)
        tower = bb.add_lora(base, self.target_modules_, r=self.r, alpha=self.alpha, dropout=self.dropout)
        n_outputs, n_classes = self._net_outputs()
        module = LoRANet(
            tower,
            n_features=self.module_features_,
            n_users=len(self.users_),
            user_dim=self.user_dim,
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            dropout=self.head_dropout,
            n_outputs=n_outputs,
            n_classes=n_classes,
            precision=self.precision,
        )
        return module.eval()

    def __setstate__(self, state: dict) -> None:
        saved = state.pop("_lora_saved", None)
        self.__dict__.update(state)
        if saved is None:
            return
        # Build from the reference only when the base is not in the file: nothing downloads
        # for random-init or stored bases, and a stored base never needs the original source.
        reference = self.backbone_spec_
        if "full" in saved:
            self.backbone_spec_ = replace(reference, pretrained=None)
        module = self._rebuild_unmerged()
        self.backbone_spec_ = reference
        if "full" in saved and saved["merged"]:
            module.backbone = module.backbone.merge_and_unload()
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


def _silent(*args, **kwargs) -> None:
    return None
