"""Features between the embedders and the heads.

- :class:`PairFeatures` — a pairs table (two image columns, optional context such as the
  person) → ``[left ‖ context | right ‖ context]``, the layout every pair head reads;
  :func:`swap_halves` flips left and right.
- :class:`BlockScaler` — backbones side by side, each block scaled to equal total variance.
"""

from skpercept.preprocessing._blocks import BlockScaler
from skpercept.preprocessing._pairs import PairFeatures, swap_halves

__all__ = ["BlockScaler", "PairFeatures", "swap_halves"]
