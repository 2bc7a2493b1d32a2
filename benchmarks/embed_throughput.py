"""Image-embedding throughput: skpercept's embedders vs. the model alone vs. a naive loop.

Data: N images (default: the OMI faces, 256x256 JPEG — the package's embedded copy, else
``../shared/data/omi/images`` next to the repository), or any folder given as argument.
No split: every figure is a pass over the same N files. Hardware: whatever this runs on
(printed); CPU by default. Models: ``TimmEmbedder()`` (EfficientNet-Lite0, shipped ImageNet
weights) and ``CLIPEmbedder(pretrained=None)`` (random-init ViT-B-32: same FLOPs as trained).

Per embedder, in one process:

- ``model_only_img_s``: the forward pass alone on already decoded, preprocessed batches
  (decoding done outside the timer), same batch size and precision;
- ``end_to_end_img_s``: ``transform(paths)`` with no cache (read, decode, preprocess, batch,
  forward). This and ``model_only_img_s`` are timed alternately on the same chunks of
  2 x batch_size images, so that a shared machine's changing load hits both alike (the
  table also shows one ``transform`` call over all N);
- ``naive_loop_img_s``: one image per forward call with a full-resolution decode, as the
  reference system does;
- ``cached_speedup``: first ``transform`` with an empty cache (computing and writing it)
  divided by the second (all hits);
- ``peak_rss_mb``: peak resident memory of the process during the end-to-end pass (sampled
  every 10 ms). The table also shows how much that peak grew between passes over N/2 and N
  images, next to the growth of the output array itself.

Run: ``python benchmarks/embed_throughput.py [FOLDER] [--n 400] [--device cpu]``.
Ratios within one run are what count; absolute speeds depend on load and hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image

from skpercept.embed import CLIPEmbedder, TimmEmbedder

REPO = Path(__file__).resolve().parents[1]


def default_images() -> Path:
    embedded = REPO / "skpercept" / "datasets" / "data" / "omi" / "images"
    return embedded if embedded.is_dir() else REPO.parent / "shared" / "data" / "omi" / "images"


class RssSampler:
    """Peak resident set size of this process, sampled in a background thread."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def forward_seconds(embedder, paths: list[str], batch_size: int) -> float:
    """Seconds spent in back-to-back forward passes over batches decoded beforehand.

    Decoding runs in a helper thread, as in the embedder: done in the timing thread, its
    allocations interleave with the forward pass's buffers in one malloc arena and the
    forward then pays page faults that the embedder itself never pays.
    """

    def decode() -> list:
        return [
            torch.stack(
                [
                    embedder._preprocess(Image.open(p).convert("RGB"))
                    for p in paths[start : start + batch_size]
                ]
            )
            for start in range(0, len(paths), batch_size)
        ]

    with ThreadPoolExecutor(1) as pool:
        batches = pool.submit(decode).result()
    start = time.perf_counter()
    for batch in batches:
        embedder._run_batch(batch)
    return time.perf_counter() - start


def paired_timings(embedder, paths: list[str], batch_size: int) -> tuple[float, float]:
    """(end-to-end, model-only) seconds, measured alternately on the same chunks of images.

    On a shared machine the load changes from minute to minute; alternating chunk by chunk
    puts both measurements under the same conditions, so their ratio is meaningful.
    """
    chunk = 2 * batch_size
    e2e = forward = 0.0
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        e2e += timed(embedder.transform, part)[1]
        forward += forward_seconds(embedder, part, batch_size)
    return e2e, forward


def naive_loop(embedder, paths: list[str]) -> float:
    """The reference system's way: full decode, one image per forward call."""
    model, preprocess, device = embedder._model, embedder._preprocess, embedder._device
    start = time.perf_counter()
    with torch.no_grad():
        for path in paths:
            image = preprocess(Image.open(path).convert("RGB")).unsqueeze(0).to(device)
            embedder._forward(model, image).cpu().numpy()
    return time.perf_counter() - start


def measure(name: str, make, paths: list[str]) -> tuple[dict, dict]:
    n = len(paths)
    embedder = make(cache_dir=None).fit(paths)
    embedder.transform(paths[:1])  # builds the model: the device fixes the batch size
    batch_size = embedder._batch_size()
    embedder.transform(paths[: min(n, 2 * batch_size)])  # warm-up: allocator, kernels
    with RssSampler() as half_rss:
        embedder.transform(paths[: n // 2])
    with RssSampler() as full_rss:
        out, full_pass = timed(embedder.transform, paths)
    e2e, forward = paired_timings(embedder, paths, batch_size)
    naive = naive_loop(embedder, paths)
    with tempfile.TemporaryDirectory() as cache_dir:
        cached = make(cache_dir=cache_dir).fit(paths)
        _, first = timed(cached.transform, paths)
        _, second = timed(cached.transform, paths)
    figures = {
        "batch_size": batch_size,
        "end_to_end_img_s": round(n / e2e, 2),
        "model_only_img_s": round(n / forward, 2),
        "naive_loop_img_s": round(n / naive, 2),
        "end_to_end_over_model_only": round(forward / e2e, 3),
        "end_to_end_over_naive_loop": round(naive / e2e, 3),
        "cached_speedup": round(first / second, 1),
        "peak_rss_mb": round(full_rss.peak / 2**20, 1),
    }
    extra = {
        "rss_growth_half_to_full_mb": round((full_rss.peak - half_rss.peak) / 2**20, 1),
        "output_growth_mb": round((n - n // 2) * out.shape[1] * 4 / 2**20, 1),
        "one_call_end_to_end_img_s": round(n / full_pass, 2),
        "first_cached_pass_s": round(first, 2),
        "second_cached_pass_s": round(second, 3),
    }
    return figures, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "folder", nargs="?", type=Path, default=None, help="folder of images (default: the OMI faces)"
    )
    parser.add_argument("--n", type=int, default=None, help="use the first N images (sorted)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per forward pass (default: the embedders' 'auto')",
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--embedders", default="timm,clip", help="comma-separated subset of: timm, clip")
    args = parser.parse_args()

    folder = args.folder or default_images()
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
    paths = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in suffixes)
    paths = paths[: args.n] if args.n else paths
    if not paths:
        raise SystemExit(f"No images found in {folder}.")
    common = dict(
        device=args.device,
        batch_size=args.batch_size or "auto",
        num_workers=args.workers,
        precision=args.precision,
    )
    makers = {
        "timm": (
            "TimmEmbedder efficientnet_lite0 (shipped ImageNet weights)",
            lambda **kw: TimmEmbedder(**common, **kw),
        ),
        "clip": (
            "CLIPEmbedder ViT-B-32 (random init)",
            lambda **kw: CLIPEmbedder(pretrained=None, **common, **kw),
        ),
    }
    chosen = [e.strip() for e in args.embedders.split(",") if e.strip()]
    size = Image.open(paths[0]).size
    hardware = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch threads {torch.get_num_threads()}"
    )
    if args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available()):
        hardware += f", GPU {torch.cuda.get_device_name(0)}"
    print(f"Images: {len(paths)} from {folder} (first is {size[0]}x{size[1]})")
    print(
        f"Hardware: {hardware}; device={args.device}, precision={args.precision}, "
        f"batch_size={args.batch_size or 'auto'}, num_workers={args.workers}"
    )
    results, extras = {}, {}
    for key in chosen:
        label, make = makers[key]
        print(f"\n{label} ...", flush=True)
        results[key], extras[key] = measure(label, make, paths)
        print(f"  {key}: {results[key]} {extras[key]}", flush=True)

    rows = list(next(iter(results.values())))
    print(f"\n{'figure':32s}" + "".join(f"{k:>14s}" for k in results))
    for row in rows:
        print(f"{row:32s}" + "".join(f"{results[k][row]:>14}" for k in results))
    for row in next(iter(extras.values())):
        print(f"{row:32s}" + "".join(f"{extras[k][row]:>14}" for k in extras))
    print(
        "targets: end_to_end_over_model_only >= 0.90, end_to_end_over_naive_loop >= 3, "
        "cached_speedup >= 50, rss growth ~ output growth"
    )
    print(json.dumps({"n_images": len(paths), "device": args.device, **results}))


if __name__ == "__main__":
    main()
