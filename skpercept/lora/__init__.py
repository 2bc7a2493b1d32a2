"""LoRA fine-tuning of image towers (timm, open_clip) for ratings and pairwise judgments.

- :class:`LoRARatingClassifier` — image (+ user) → rating level per attribute.
- :class:`LoRAPairwiseRanker` — image pair (+ user) → P(left preferred) per attribute.

Needs ``peft`` (``pip install 'skpercept[lora]'``).
"""

from skpercept.lora._estimators import LoRAPairwiseRanker, LoRARatingClassifier

__all__ = ["LoRAPairwiseRanker", "LoRARatingClassifier"]
