"""Benchmark: PairwiseRanker (skorch) against a hand-written plain-torch loop doing the same work.

Data: 50,000 synthetic pairs drawn from 5,000 items with 512-d unit-norm embeddings (a CLIP
ViT-B/32-sized vector) plus a 100-user one-hot context per half, so X is 50,000 x 1,224
([item 512 | user 100 | item 512 | user 100]); y = 1 where a noisy user-dependent utility
prefers the left item. No split: both arms train on all pairs for a fixed number of epochs
(early stopping off), same module (skpercept.heads.nets.PairScorer, hidden (256, 128), dropout 0.1),
same loss, AdamW lr 1e-3 / weight decay 1e-2, batch 256, random per-row half swaps.
The arms alternate (skorch, torch, skorch, torch, ...) so load from other jobs on a shared
machine hits both; the ratio of medians is reported. Then ``score_items`` throughput on 50,000
half rows. Hardware: whatever runs it (printed).

Ends with one JSON line; the table and figures also go to
``benchmarks/results/head_training[-cuda].json`` (``--no-save``: no file).

Usage: python benchmarks/head_training.py [--epochs 3] [--repeats 3] [--device auto] [--no-save]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from skpercept.heads import PairwiseRanker
from skpercept.heads.nets import MaskedPairLoss, PairScorer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, hardware_line, result_name, save_result, table_record

N_PAIRS, N_ITEMS, DIM, N_USERS = 50_000, 5_000, 512, 100
HIDDEN, LR, WD, BATCH = (256, 128), 1e-3, 1e-2, 256


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    emb = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    taste = rng.normal(size=(N_USERS, DIM)).astype(np.float32) * 0.5 + rng.normal(size=DIM).astype(np.float32)
    a, b = rng.randint(0, N_ITEMS, size=(2, N_PAIRS))
    user = rng.randint(0, N_USERS, size=N_PAIRS)
    onehot = np.eye(N_USERS, dtype=np.float32)[user]
    u_diff = np.einsum("nd,nd->n", emb[a] - emb[b], taste[user]) * 3
    y = (rng.rand(N_PAIRS) < 1 / (1 + np.exp(-u_diff))).astype(np.float32)
    X = np.hstack([emb[a], onehot, emb[b], onehot])
    halves = np.hstack([emb[a], onehot])
    return X, y, halves


def fit_skorch(X: np.ndarray, y: np.ndarray, epochs: int, device: str) -> tuple[float, PairwiseRanker]:
    ranker = PairwiseRanker(
        hidden_layer_sizes=HIDDEN,
        dropout=0.1,
        lr=LR,
        weight_decay=WD,
        batch_size=BATCH,
        max_epochs=epochs,
        early_stopping=False,
        device=device,
        random_state=0,
    )
    start = time.perf_counter()
    ranker.fit(X, y)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, ranker


def fit_plain_torch(X: np.ndarray, y: np.ndarray, epochs: int, device: str) -> float:
    start = time.perf_counter()
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), torch.from_numpy(y.reshape(-1, 1))
    model = PairScorer(X.shape[1] // 2, 1, HIDDEN, "relu", 0.1, False).to(device)
    criterion = MaskedPairLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    n = len(Xt)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n)
        losses = []
        for s in range(0, n, BATCH):
            ids = order[s : s + BATCH]
            xb, yb = Xt[ids], yt[ids]
            # the same random half swap as PairwiseRanker's: mirror the pair and flip its label
            flip = torch.rand(len(xb)) < 0.5
            half = xb.shape[1] // 2
            xb = torch.where(flip[:, None], torch.cat([xb[:, half:], xb[:, :half]], dim=1), xb)
            yb = torch.where(flip[:, None], 1.0 - yb, yb)
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    add_result_options(parser)
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    X, y, halves = make_data()
    hardware = (
        torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    )
    print(
        f"data: {N_PAIRS} pairs, X {X.shape}, {N_ITEMS} items x {DIM}-d + {N_USERS}-user one-hot; device {device} ({hardware})"
    )
    print(
        f"{args.epochs} epochs, batch {BATCH}, hidden {HIDDEN}; arms alternate, {args.repeats} repeats each"
    )

    fit_skorch(X[:2000], y[:2000], 1, device)  # warm-up: imports, allocator, kernels
    fit_plain_torch(X[:2000], y[:2000], 1, device)
    times: dict[str, list[float]] = {"skorch (PairwiseRanker)": [], "plain torch loop": []}
    ranker = None
    for _ in range(args.repeats):
        t, ranker = fit_skorch(X, y, args.epochs, device)
        times["skorch (PairwiseRanker)"].append(t)
        times["plain torch loop"].append(fit_plain_torch(X, y, args.epochs, device))

    score_times = []
    for _ in range(3):
        start = time.perf_counter()
        ranker.score_items(halves)
        score_times.append(time.perf_counter() - start)
    items_per_s = len(halves) / min(score_times)

    print(f"\n{'arm':<26}{'median s':>10}{'min s':>10}{'s/epoch':>10}")
    for name, ts in times.items():
        print(
            f"{name:<26}{statistics.median(ts):>10.2f}{min(ts):>10.2f}{statistics.median(ts) / args.epochs:>10.2f}"
        )
    ratio = statistics.median(times["skorch (PairwiseRanker)"]) / statistics.median(times["plain torch loop"])
    print(f"skorch / plain torch: {ratio:.3f} (target <= 1.2); score_items: {items_per_s:,.0f} items/s")
    print(f"train pairwise accuracy after {args.epochs} epochs: {ranker.score(X, y):.3f}")
    figures = {
        "benchmark": "head_training",
        "device": device,
        "hardware": hardware,
        "n_pairs": N_PAIRS,
        "n_features": int(X.shape[1]),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "skorch_s_median": round(statistics.median(times["skorch (PairwiseRanker)"]), 3),
        "plain_torch_s_median": round(statistics.median(times["plain torch loop"]), 3),
        "skorch_over_plain_torch": round(ratio, 3),
        "items_scored_per_s": round(items_per_s),
    }
    print(json.dumps(figures))
    rows = [
        [name, f"{statistics.median(ts):.2f}", f"{min(ts):.2f}", f"{statistics.median(ts) / args.epochs:.2f}"]
        for name, ts in times.items()
    ]
    table = table_record(
        "training",
        f"PairwiseRanker (skorch) against a plain torch loop: {N_PAIRS:,} pairs, {args.epochs} epochs, "
        f"device {device}",
        ["arm", "median s", "min s", "s/epoch"],
        rows,
        note=f"skorch / plain torch = {ratio:.3f} (ratio of medians over {args.repeats} alternating runs); "
        f"score_items: {items_per_s:,.0f} items/s. Hardware: {hardware}.",
    )
    hardware_full = hardware_line() + (f"; GPU {hardware}" if device.startswith("cuda") else "")
    name = result_name("head_training", device if device != "cpu" else None)
    save_result(args, name, [table], figures, hardware=hardware_full)


if __name__ == "__main__":
    main()
