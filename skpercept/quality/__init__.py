"""Rater-quality analytics: who judges consistently, who clicks at random, who agrees.

All functions take long pandas frames (column names configurable) and return DataFrames:

- ratings (wide): ``user_id, image, <one numeric column per attribute>, insert_time``;
  a long ``attribute``/``rating`` layout converts with
  ``df.pivot_table(index=[...], columns="attribute", values="rating").reset_index()``.
- comparisons: ``user_id, image_a, image_b, <attribute columns>, insert_time`` with
  1 = ``image_a`` preferred, 0 = ``image_b``, 0.5 = tie, NaN = not judged.

Modules: ``consistency`` (comparisons vs own ratings), ``transitivity`` (3-cycles),
``random_raters`` (low-rank model + shuffle baseline, repeat consistency), ``speed``
(inter-label times), ``agreement`` (user x user, Krippendorff's alpha, Fleiss-style kappa),
``filtering`` (keep/drop with reasons, sample weights), ``plots``.
"""

from skpercept.quality.agreement import AgreementResult, agreement_matrix, fleiss_kappa, krippendorff_alpha
from skpercept.quality.consistency import rating_comparison_consistency
from skpercept.quality.filtering import filter_raters, rater_weights
from skpercept.quality.plots import plot_agreement, plot_rater_scores
from skpercept.quality.random_raters import random_rater_scores
from skpercept.quality.speed import labeling_speed
from skpercept.quality.transitivity import transitivity_violations

__all__ = [
    "AgreementResult",
    "agreement_matrix",
    "filter_raters",
    "fleiss_kappa",
    "krippendorff_alpha",
    "labeling_speed",
    "plot_agreement",
    "plot_rater_scores",
    "random_rater_scores",
    "rater_weights",
    "rating_comparison_consistency",
    "transitivity_violations",
]
