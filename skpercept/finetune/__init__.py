"""LoRA fine-tuning of image towers (timm, open_clip) for ratings and pairwise judgments.

- :class:`LoRARatingClassifier` — image (+ user) → rating level per attribute.
- :class:`LoRAPairwiseRanker` — image pair (+ user) → P(left preferred) per attribute.
- :class:`ContrastiveEmbedder` — unlabelled images → a tower adapted to their domain by
  contrastive learning (SimCLR's NT-Xent over two augmented views), embedding like the
  embedders of :mod:`skpercept.embed`.
- :func:`select_targets` / :func:`add_lora` — the building blocks they use: pick the modules
  of a tower to adapt by type (:data:`TARGET_KINDS`) and wrap them with peft's LoRA. Towers
  come from :func:`skpercept.embed.towers.build_tower`.

Needs ``peft`` (``pip install 'skpercept[lora]'``).
"""

from skpercept.finetune._adapters import TARGET_KINDS, add_lora, select_targets
from skpercept.finetune._contrastive import ContrastiveEmbedder, NTXentLoss
from skpercept.finetune._estimators import LoRAPairwiseRanker, LoRARatingClassifier

__all__ = [
    "TARGET_KINDS",
    "ContrastiveEmbedder",
    "LoRAPairwiseRanker",
    "LoRARatingClassifier",
    "NTXentLoss",
    "add_lora",
    "select_targets",
]
