"""CLIPEmbedder: open_clip image (and text) embeddings as a scikit-learn transformer."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import open_clip
import torch
from sklearn.utils.validation import check_is_fitted

from skpercept._utils import estimator_parameters
from skpercept.embed.base import SHARED_PARAMETERS, NetworkEmbedder
from skpercept.embed.towers import create_open_clip_model, weights_identity


@estimator_parameters
class CLIPEmbedder(NetworkEmbedder):
    """Embed images with an open_clip model's image tower.

    Parameters
    ----------
    model_name : str, default='ViT-B-32'
        Any open_clip model name (``open_clip.list_models()``), including configs registered
        with ``open_clip.add_model_config``.
    pretrained : str, path-like or None, default='openai'
        An open_clip pretrained tag for ``model_name`` (``'openai'``, ``'laion2b_s34b_b79k'``,
        ...; fetched once by open_clip into its download cache), a local checkpoint file, or
        ``None`` for random initialisation (seeded by ``random_state``). Preprocessing is
        open_clip's own evaluation transform for the model.
    {shared_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of image columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Image column names, when ``fit`` got a DataFrame.
    embedding_dim_ : int
        Size of one image's embedding (512 for ViT-B-32).
    weights_id_ : str
        Identity of the weights: the tag, the local file's content hash, or the seed.

    Notes
    -----
    Persistence: with a tag or a local file the pickle holds only that reference (plus the
    file's content hash, checked when the model is rebuilt on the first ``transform`` after
    loading), so it is a few kB; the reloading machine needs the same file, or the tag's
    weights already in open_clip's cache (a tag never downloads again once cached, but a fresh
    machine would download it). ``bundle_weights=True`` stores the state dict instead (hundreds
    of MB for ViT-B-32: both towers' float32 parameters), reloadable anywhere offline.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept.embed import CLIPEmbedder
    >>> images = [np.full((40, 40, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    >>> emb = CLIPEmbedder(pretrained=None, device="cpu")  # random-init ViT-B-32
    >>> emb.fit_transform(images).shape
    (3, 512)
    >>> emb.embed_text(["a photo of a face"]).shape
    (1, 512)
    """

    _cpu_batch_size = 16

    model_name: str = "ViT-B-32"
    # A tag or a file: fit checks that the tag exists for ``model_name`` or the file exists.
    pretrained: str | os.PathLike | None = "openai"

    def _weights_identity(self) -> str:
        return weights_identity("open_clip", self.model_name, self.pretrained, self.random_state)

    def _create_model(self, load_weights: bool):
        # Bundled weights replace the reference, which may be absent on this machine.
        model, preprocess = create_open_clip_model(self.model_name, self.pretrained if load_weights else None)
        return model, preprocess, int(model.visual.output_dim)

    def _forward(self, model, batch):
        return model.encode_image(batch)

    def embed_text(self, texts: Iterable[str]) -> np.ndarray:
        """Embed text prompts with the model's text tower (e.g. for zero-shot scoring).

        Uses open_clip's tokenizer for ``model_name``. Text and image embeddings share one
        space; with ``normalize=True`` both are unit vectors, so ``images @ text.T`` are
        cosine similarities.

        Parameters
        ----------
        texts : iterable of str

        Returns
        -------
        embeddings : ndarray of shape (n_texts, embedding_dim), float32
        """
        check_is_fitted(self)
        self._validate_runtime_params()
        self._check_model_unchanged()
        if isinstance(texts, str):
            texts = [texts]
        texts = [str(t) for t in texts]
        if not texts:
            raise ValueError("embed_text needs at least one text.")

        model = self._ensure_model()
        if self.__dict__.get("_tokenizer") is None:
            self._tokenizer = open_clip.get_tokenizer(self.model_name)
        chunks = []
        step = self._batch_size()
        for start in range(0, len(texts), step):
            tokens = self._tokenizer(texts[start : start + step]).to(self._device)
            with torch.inference_mode(), self._autocast():
                chunks.append(model.encode_text(tokens).float().cpu().numpy())
        out = np.concatenate(chunks).astype(np.float32)
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


CLIPEmbedder.__doc__ = CLIPEmbedder.__doc__.replace("{shared_parameters}", SHARED_PARAMETERS)
