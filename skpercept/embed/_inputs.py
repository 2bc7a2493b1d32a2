"""What an embedder takes and gives: image tables in, the output array out, the shared parameters.

Kept apart from :mod:`skpercept.embed.base` (the pipeline) so that each file reads as one
concept: how X becomes columns of image cells, and how the unique images' vectors become the
``(n_samples, n_columns * dim)`` output without temporaries as large as the output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SHARED_PARAMETERS", "arrange_output", "object_table"]

SHARED_PARAMETERS = """image_root : str or path-like, default=None
        Folder that relative image paths are relative to.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the forward pass runs; ``'auto'`` picks the GPU when one is visible. Output is
        always a float32 NumPy array on the CPU. Set on a fitted model (``set_params``), it
        moves there at the next call, without refitting; a model saved for a GPU runs on the
        CPU of a machine without one (with a ``DeviceFallbackWarning``).
    batch_size : int or 'auto', default='auto'
        Images per forward pass. ``'auto'``: 64 on a GPU; on the CPU a size that suits the
        model family (4 for timm, 16 for CLIP, 8 for dlib), since a CPU's caches favour small
        batches of convolution feature maps while transformers gain from larger matrix
        products (``benchmarks/embed_throughput.py`` measures both).
    num_workers : int, default=4
        Threads that read, decode and preprocess images ahead of the forward pass (PIL and
        torchvision release the GIL, so decoding overlaps with compute without the start-up
        and pickling cost of worker processes). ``0`` decodes in the calling thread. Images
        much larger than the model's input are decoded at reduced scale (JPEG draft mode,
        then an integer box filter; see :func:`~skpercept.embed.load_image`).
    decode : {'auto', 'cpu', 'gpu'}, default='auto'
        Where JPEG files are decoded. ``'cpu'``: with PIL in the worker threads. ``'gpu'``:
        the threads only read the files; each batch's JPEGs are decoded together on the GPU
        (``torchvision.io.decode_jpeg``, nvJPEG) and resized, cropped and normalised there,
        while other files (PNG, WebP, CMYK JPEGs, in-memory images) still decode with PIL in
        the threads; needs ``device='cuda'`` and a model whose evaluation transform is
        resize / centre crop / normalise (timm and open_clip models). ``'auto'``: ``'gpu'``
        when the model runs on CUDA and its transform allows it, else ``'cpu'``. The two
        decoders' embeddings agree to a cosine similarity above 0.99 (their resamplers differ
        in rounding).
    torch_compile : bool, default=False
        Run the forward pass through ``torch.compile`` (compiled on the first batch, which
        takes a while; pays off on long runs on a GPU).
    precision : {'fp32', 'fp16', 'bf16'}, default='fp32'
        Autocast precision of the forward pass. ``'fp16'`` needs CUDA; ``'bf16'`` runs on CPU
        and on GPUs that support it.
    normalize : bool, default=True
        L2-normalise each image's embedding.
    tta : bool, default=False
        Average the embedding of each image and of its horizontal mirror (on the preprocessed,
        centre-cropped tensor). Doubles compute (what it adds: ``docs/benchmarks.md``).
    cache_dir : str or path-like, default=None
        Folder of a persistent cache keyed on each image's content hash plus the model,
        weights, preprocessing, precision and ``tta``: a renamed or copied file is a hit, an
        edited file a miss. Entries are written atomically, so an interrupted run never leaves
        a corrupt entry and a rerun only computes what is missing. ``None`` disables it.
    on_error : {'raise', 'nan'}, default='raise'
        What a missing, unreadable, corrupt, truncated or oversized image does. ``'raise'``:
        an :class:`ImageLoadError` naming the file, row, column and reason. ``'nan'``: that
        image's output columns are NaN (rows are never dropped or shifted) and one
        :class:`BadImageWarning` lists the files.
    progress : {'auto', True, False}, default='auto'
        A tqdm progress bar over the images being computed (images served by the cache are
        not counted). ``'auto'``: shown when a person is watching (standard error is a
        terminal, or a Jupyter notebook), silent in pipes, log files and tests; ``True``:
        always; ``False``: never.
    bundle_weights : {'auto', True, False}, default='auto'
        Whether pickling stores the model's weights inside the pickle. ``False`` stores only a
        reference (a pretrained tag, or a local file path plus its content hash, checked on
        reload): small pickles, but the reloading machine needs the same file or cached tag.
        ``True`` stores the state dict, so the pickle reloads anywhere with no file and no
        network, at the cost of its size. ``'auto'`` bundles only randomly initialised models,
        which no reference can rebuild exactly. Either way the model is rebuilt lazily on the
        first ``transform`` after loading, never during unpickling.
    random_state : int >= 0 or None, default=0
        Seed for randomly initialised weights (``pretrained=None``); unused otherwise."""


def object_table(X: Any) -> np.ndarray:
    """2-D object array of image cells from a list / tuple / ndarray input."""
    if isinstance(X, np.ndarray) and X.dtype != object and X.dtype.kind not in "USO":
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported: X must hold images.")
        if X.ndim == 2 and X.shape[1] == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
            )
        if X.ndim == 4 or X.ndim == 3:
            # A stack of N images (N x H x W x C, or N x H x W grayscale).
            table = np.empty((X.shape[0], 1), dtype=object)
            for i in range(X.shape[0]):
                table[i, 0] = X[i]
            return table
        raise ValueError(
            f"X is a numeric array of shape {X.shape}; image embedders take images (file "
            "paths, PIL images, HxWxC arrays, or an N x H x W x C stack), not feature vectors."
        )
    if isinstance(X, np.ndarray):
        items = list(X) if X.ndim == 1 else None
        if X.ndim == 2:
            return X.astype(object)
        if items is None:
            raise ValueError(f"X of strings/objects must be 1-D or 2-D, got shape {X.shape}.")
    else:
        try:
            items = list(X)
        except TypeError:
            raise ValueError(
                f"X must be a sequence of images, a Series or a DataFrame, got {type(X).__name__}."
            ) from None
    if items and all(isinstance(row, (list, tuple)) for row in items):
        widths = {len(row) for row in items}
        if len(widths) != 1:
            raise ValueError(f"Rows of X have different numbers of images: {sorted(widths)}.")
        table = np.empty((len(items), widths.pop()), dtype=object)
        for i, row in enumerate(items):
            for j, cell in enumerate(row):
                table[i, j] = cell
        return table
    table = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        table[i, 0] = item
    return table


def arrange_output(
    vectors: np.ndarray, inverse: np.ndarray, n_columns: int, n_rows: int, chunk: int
) -> np.ndarray:
    """The (n_rows, n_columns * dim) output from the unique images' vectors.

    The common case (one column, no repeated image) returns ``vectors`` itself; otherwise the
    output is filled in place chunk by chunk, so memory is the output plus a bounded buffer.
    """
    if n_columns == 1 and len(vectors) == n_rows and np.array_equal(inverse, np.arange(n_rows)):
        return vectors
    dim = vectors.shape[1]
    out = np.empty((n_rows, n_columns * dim), dtype=np.float32)
    for column in range(n_columns):
        for start in range(0, n_rows, chunk):
            stop = min(start + chunk, n_rows)
            rows = inverse[column * n_rows + start : column * n_rows + stop]
            out[start:stop, column * dim : (column + 1) * dim] = vectors[rows]
    return out
