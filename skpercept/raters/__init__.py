"""Rater-quality analytics: who judges consistently, who clicks at random, who agrees.

All functions take long pandas frames (column names configurable) and return DataFrames:

- ratings (wide): ``user_id, image, <one numeric column per attribute>, insert_time``;
  a long ``attribute``/``rating`` layout converts with
  ``df.pivot_table(index=[...], columns="attribute", values="rating").reset_index()``.
- comparisons: ``user_id, image_a, image_b, <attribute columns>, insert_time`` with
  1 = ``image_a`` preferred, 0 = ``image_b``, 0.5 = tie, NaN = not judged.

- :func:`rating_comparison_consistency`: comparisons against the person's own ratings;
- :func:`transitivity_violations`: 3-cycles in a person's comparisons;
- :func:`random_rater_scores`: a low-rank model of the ratings against a shuffle baseline, and
  repeat consistency;
- :func:`labeling_speed`: times between labels;
- :func:`agreement_matrix`, :func:`krippendorff_alpha`, :func:`fleiss_kappa`: who agrees with
  whom;
- :func:`filter_raters`, :func:`rater_weights`: keep or drop raters with reasons, or weigh them;
- :func:`plot_rater_scores`, :func:`plot_agreement`.
"""

from skpercept.raters._agreement import AgreementResult, agreement_matrix, fleiss_kappa, krippendorff_alpha
from skpercept.raters._consistency import rating_comparison_consistency
from skpercept.raters._filtering import filter_raters, rater_weights
from skpercept.raters._plots import plot_agreement, plot_rater_scores
from skpercept.raters._random_raters import random_rater_scores
from skpercept.raters._speed import labeling_speed
from skpercept.raters._transitivity import transitivity_violations

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
