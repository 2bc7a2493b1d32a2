"""Image-embedding throughput per image size: skpercept's embedders vs. the model alone vs. a naive loop.

Data: N of the OMI faces shipped with the package (256x256 JPEG), the same faces upscaled to
1024x1024 and to 4032x3024 (a 12-Mpx phone photo) and saved as quality-90 JPEGs in a temporary
folder — decoding cost follows pixel count, so these are the realistic cases — and, if given,
any folder of images. No split: every figure is a pass over the same N files. Hardware:
whatever this runs on (printed); CPU by default. Models: ``TimmEmbedder()`` (EfficientNet-Lite0,
shipped ImageNet weights) and ``CLIPEmbedder(pretrained=None)`` (random-init ViT-B-32: the same
FLOPs as trained weights; nothing can be downloaded).

Per image size and embedder, in one process, through public API only:

- ``model_only_img_s``: the network alone (the tower built by
  :func:`skpercept.embed.towers.build_tower`) on batches decoded and preprocessed beforehand
  with the embedder's own transform (``get_preprocess()``), same batch size, precision and
  memory format;
- ``end_to_end_img_s``: ``transform(paths)`` with no cache (read, decode at reduced scale,
  preprocess, batch, forward). This and ``model_only_img_s`` are timed alternately on the
  same chunks of 2 x batch_size images, so that a shared machine's changing load hits both
  alike (the extra figures also show one ``transform`` call over all N);
- ``naive_loop_img_s``: one image per forward call with a full decode (PIL open + convert +
  the model's own torchvision transform), as the reference system does;
- ``model_only_over_naive_loop``: the network alone against the naive loop, the most
  ``end_to_end_over_naive_loop`` can reach (end to end cannot beat the network alone): where
  it is under a target for the end-to-end ratio, no decoding pipeline meets that target on
  this hardware;
- ``cached_speedup``: first ``transform`` with an empty cache (computing and writing it)
  divided by the second (all hits);
- ``peak_rss_mb``: peak resident memory of the process during the end-to-end pass (sampled
  every 10 ms).

``--memory N`` instead measures memory over a long run: EfficientNet-Lite0, cache off, N and
N/2 distinct paths (symbolic links to the shipped faces, so that nothing is de-duplicated),
peak RSS growth between the two ``transform`` calls next to the growth of the output array.

Run: ``python benchmarks/embed_throughput.py [FOLDER] [--n 64] [--device cpu] [--sizes 256,1024,4032]``
or ``python benchmarks/embed_throughput.py --memory 20000``. Ratios within one run are what
count; absolute speeds depend on load and hardware. The tables go to
``benchmarks/results/embed_throughput[-memory][-<device>][-<precision>].json`` (``--no-save``: no file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import torch
from PIL import Image

from skpercept.embed import CLIPEmbedder, TimmEmbedder
from skpercept.embed.towers import build_tower

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, result_name, save_result, table_record

REPO = Path(__file__).resolve().parents[1]
SIZES = {"256": None, "1024": (1024, 1024), "4032": (4032, 3024)}
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
#: The rows of the result table: figure -> what it is.
FIGURES = {
    "batch_size": "batch size",
    "end_to_end_img_s": "end to end, images/s",
    "model_only_img_s": "forward pass alone on pre-decoded batches, images/s",
    "naive_loop_img_s": "naive loop (one image per call, full decode), images/s",
    "end_to_end_over_model_only": "end to end ÷ forward pass alone",
    "end_to_end_over_naive_loop": "end to end ÷ naive loop",
    "model_only_over_naive_loop": "forward pass alone ÷ naive loop (the most end to end ÷ naive can reach)",
    "cached_speedup": "warm cache ÷ cold",
    "peak_rss_mb": "peak RSS during the end-to-end pass, MB",
}
SHORT = {"timm": "Lite0", "clip": "ViT-B-32"}
SIZE_LABELS = {"256": "256 px", "1024": "1024 px", "4032": "4032×3024"}


def default_images() -> Path:
    embedded = REPO / "skpercept" / "datasets" / "data" / "omi" / "images"
    return embedded if embedded.is_dir() else REPO.parent / "shared" / "data" / "omi" / "images"


def list_images(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)


def upscaled(paths: list[str], size: tuple[int, int], folder: Path) -> list[str]:
    """The images resized to ``size`` (width, height) and saved as quality-90 JPEGs."""
    folder.mkdir(parents=True, exist_ok=True)

    def write(path: str) -> str:
        target = folder / (Path(path).stem + ".jpg")
        Image.open(path).convert("RGB").resize(size, Image.BICUBIC).save(target, quality=90)
        return str(target)

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(write, paths))


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


class Tower:
    """The bare network of an embedder (public :func:`build_tower`), run the way torch users do."""

    def __init__(self, backbone: str, pretrained, device: str, precision: str, channels_last: bool) -> None:
        self.module, _ = build_tower(backbone, pretrained)
        self.module.eval().requires_grad_(False).to(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.module.to(memory_format=self.memory_format)
        self.device = device
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        device_type = device.split(":")[0]
        self.autocast = (
            (lambda: torch.autocast(device_type=device_type, dtype=dtype)) if dtype else nullcontext
        )

    def __call__(self, batch: torch.Tensor):
        with torch.inference_mode(), self.autocast():
            out = self.module(batch.to(self.device).contiguous(memory_format=self.memory_format))
        return out.float().cpu().numpy()


def forward_seconds(tower: Tower, preprocess, paths: list[str], batch_size: int) -> float:
    """Seconds spent in back-to-back forward passes over batches decoded beforehand.

    Decoding runs in a helper thread, as in the embedder: done in the timing thread, its
    allocations interleave with the forward pass's buffers in one malloc arena and the
    forward then pays page faults that the embedder itself never pays.
    """

    def decode() -> list:
        return [
            torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[start : start + batch_size]])
            for start in range(0, len(paths), batch_size)
        ]

    with ThreadPoolExecutor(1) as pool:
        batches = pool.submit(decode).result()
    start = time.perf_counter()
    for batch in batches:
        tower(batch)
    return time.perf_counter() - start


def paired_timings(embedder, tower: Tower, paths: list[str], batch_size: int) -> tuple[float, float]:
    """(end-to-end, model-only) seconds, measured alternately on the same chunks of images.

    On a shared machine the load changes from minute to minute; alternating chunk by chunk
    puts both measurements under the same conditions, so their ratio is meaningful.
    """
    chunk = 2 * batch_size
    preprocess = embedder.get_preprocess()
    e2e = forward = 0.0
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        e2e += timed(embedder.transform, part)[1]
        forward += forward_seconds(tower, preprocess, part, batch_size)
    return e2e, forward


def naive_loop(tower: Tower, preprocess, paths: list[str]) -> float:
    """The reference system's way: full decode, one image per forward call."""
    start = time.perf_counter()
    for path in paths:
        tower(preprocess(Image.open(path).convert("RGB")).unsqueeze(0))
    return time.perf_counter() - start


def measure(make, tower: Tower, paths: list[str], batch_size: int) -> tuple[dict, dict]:
    n = len(paths)
    embedder = make(cache_dir=None).fit(paths)
    # Warm-up of both sides: model build, allocator, the kernels' first-call set-up.
    embedder.transform(paths[: min(n, 2 * batch_size)])
    forward_seconds(tower, embedder.get_preprocess(), paths[: min(n, 2 * batch_size)], batch_size)
    with RssSampler() as full_rss:
        _, full_pass = timed(embedder.transform, paths)
    e2e, forward = paired_timings(embedder, tower, paths, batch_size)
    naive = naive_loop(tower, embedder.get_preprocess(), paths)
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
        "model_only_over_naive_loop": round(naive / forward, 3),
        "cached_speedup": round(first / second, 1),
        "peak_rss_mb": round(full_rss.peak / 2**20, 1),
    }
    extra = {
        "one_call_end_to_end_img_s": round(n / full_pass, 2),
        "first_cached_pass_s": round(first, 2),
        "second_cached_pass_s": round(second, 3),
    }
    return figures, extra


def memory_run(n: int, args, common: dict) -> None:
    """Peak RSS growth from n/2 to n images (Lite0, cache off) next to the output's growth."""
    faces = list_images(default_images())
    with tempfile.TemporaryDirectory() as tmp:
        links = []
        for i in range(n):
            link = Path(tmp) / f"{i:06d}.jpg"
            link.symlink_to(faces[i % len(faces)])
            links.append(str(link))
        embedder = TimmEmbedder(**common).fit(links[:1])
        embedder.transform(links[:64])  # warm-up: model, allocator
        peaks, seconds = {}, {}
        for count in (n // 2, n):
            with RssSampler() as rss:
                out, seconds[count] = timed(embedder.transform, links[:count])
            peaks[count] = rss.peak
            del out
    growth = (peaks[n] - peaks[n // 2]) / 2**20
    output_growth = (n - n // 2) * embedder.embedding_dim_ * 4 / 2**20
    result = {
        "memory_images": [n // 2, n],
        "peak_rss_mb": [round(peaks[n // 2] / 2**20, 1), round(peaks[n] / 2**20, 1)],
        "rss_growth_mb": round(growth, 1),
        "output_growth_mb": round(output_growth, 1),
        "target_met": bool(growth <= output_growth + 50),
        "end_to_end_img_s": round(n / seconds[n], 2),
    }
    print(f"EfficientNet-Lite0, cache off, {n // 2} then {n} distinct paths (256-px faces, repeating)")
    print(json.dumps(result))
    rows = [
        ["images", f"{n // 2:,}", f"{n:,}"],
        ["peak RSS, MB", *map(str, result["peak_rss_mb"])],
        ["peak RSS growth, MB", "", str(result["rss_growth_mb"])],
        ["growth of the output array, MB", "", str(result["output_growth_mb"])],
    ]
    table = table_record(
        "memory",
        "Memory over a long run (EfficientNet-Lite0, cache off)",
        ["", "first call", "second call"],
        rows,
        note="Distinct paths (links to the shipped 256-px faces, repeating); growth between the two calls.",
    )
    save_result(args, result_name("embed_throughput", "memory", *_mode_tags(args)), [table], result)


def _mode_tags(args) -> list:
    """Result-file suffixes of a run whose tables are not the CPU fp32 ones."""
    return [
        args.device if args.device != "cpu" else None,
        args.precision if args.precision != "fp32" else None,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=None, help="an extra folder of images")
    parser.add_argument("--n", type=int, default=64, help="images per size (default 64)")
    parser.add_argument("--sizes", default="256,1024,4032", help="comma-separated subset of: 256, 1024, 4032")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="images per forward pass (default: as batch_size='auto')"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--decode", default="auto", help="the embedders' decode parameter")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--embedders", default="timm,clip", help="comma-separated subset of: timm, clip")
    parser.add_argument("--memory", type=int, default=None, help="measure RSS growth over N/2 -> N images")
    add_result_options(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    common = dict(device=args.device, num_workers=args.workers, precision=args.precision, decode=args.decode)
    hardware = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch threads {torch.get_num_threads()}"
    )
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    if cuda:
        hardware += f", GPU {torch.cuda.get_device_name(0)}"
    print(f"Hardware: {hardware}; device={args.device}, precision={args.precision}, decode={args.decode}")
    if args.memory:
        memory_run(args.memory, args, {**common, "batch_size": args.batch_size or "auto", "cache_dir": None})
        return

    def batch_size(key: str) -> int:
        # The documented batch_size='auto' choice, made explicit so the tower runs the same.
        return args.batch_size or (64 if cuda else {"timm": 4, "clip": 16}[key])

    device = "cuda" if cuda and args.device == "auto" else args.device
    makers = {
        "timm": (
            "TimmEmbedder efficientnet_lite0 (shipped ImageNet weights)",
            lambda **kw: TimmEmbedder(**common, batch_size=batch_size("timm"), **kw),
            ("timm:efficientnet_lite0", "auto"),
        ),
        "clip": (
            "CLIPEmbedder ViT-B-32 (random init)",
            lambda **kw: CLIPEmbedder(pretrained=None, **common, batch_size=batch_size("clip"), **kw),
            ("open_clip:ViT-B-32", None),
        ),
    }
    chosen = [e.strip() for e in args.embedders.split(",") if e.strip()]
    # The memory format each embedder runs its network in: NHWC on a GPU, and for the
    # convolutional Lite0 on the CPU too.
    towers = {
        key: Tower(*makers[key][2], device, args.precision, device.startswith("cuda") or key == "timm")
        for key in chosen
    }
    faces = list_images(default_images())[: args.n]
    per_size = []
    with tempfile.TemporaryDirectory() as tmp:
        datasets = {}
        for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            datasets[size] = faces if SIZES[size] is None else upscaled(faces, SIZES[size], Path(tmp) / size)
        if args.folder is not None:
            datasets[str(args.folder)] = list_images(args.folder)[: args.n]
        for name, paths in datasets.items():
            width, height = Image.open(paths[0]).size
            print(f"\n== {name}: {len(paths)} images, first is {width}x{height} ==", flush=True)
            results, extras = {}, {}
            for key in chosen:
                label, make, _ = makers[key]
                print(f"{label} ...", flush=True)
                results[key], extras[key] = measure(make, towers[key], paths, batch_size(key))
            print(f"{'figure':32s}" + "".join(f"{k:>14s}" for k in results))
            table = {k: {**results[k], **extras[k]} for k in results}
            for row in next(iter(table.values())):
                print(f"{row:32s}" + "".join(f"{table[k][row]:>14}" for k in table))
            per_size.append(
                {
                    "size": name,
                    "image_px": [width, height],
                    "n_images": len(paths),
                    "device": args.device,
                    **results,
                }
            )
            print(json.dumps(per_size[-1]), flush=True)
    print(
        "\ntargets (1024 px, CPU): end_to_end_over_naive_loop >= 3; end_to_end_over_model_only >= 0.90 "
        "(ViT-B-32), >= 0.85 (Lite0)"
    )
    columns, cells = [""], {figure: [label] for figure, label in FIGURES.items()}
    for key in chosen:
        for size in per_size:
            columns.append(f"{SHORT[key]} {SIZE_LABELS.get(size['size'], Path(size['size']).name)}")
            for figure in FIGURES:
                cells[figure].append(str(size[key][figure]))
    table = table_record(
        "throughput",
        f"Embedding throughput, {len(faces)} OMI faces per size, device {args.device}, {args.precision}",
        columns,
        list(cells.values()),
        note=f"Models: {'; '.join(makers[k][0] for k in chosen)}. Ratios within a column are what count.",
    )
    save_result(
        args, result_name("embed_throughput", *_mode_tags(args)), [table], {"n": args.n, "sizes": per_size}
    )


if __name__ == "__main__":
    main()
