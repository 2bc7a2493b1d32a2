"""skpercept: scikit-learn estimators that learn how people perceive images.

Data flows one way: images → vectors (``skpercept.embed``) → heads (rating, ranking) →
scores and reports (``skpercept.metrics``). Public names are imported lazily so that
``import skpercept`` stays cheap and optional extras are only needed when used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "load_omi": "skpercept.datasets",
    "omi_attributes": "skpercept.datasets",
    "to_rating_classes": "skpercept.datasets",
    "consensus_pairs": "skpercept.datasets",
    "sample_comparisons": "skpercept.datasets",
    "rating_frame": "skpercept.datasets",
    "load_perception_xlsx": "skpercept.datasets",
    "BadRowsWarning": "skpercept.datasets",
    "soft_consensus_pairs": "skpercept.datasets",
    "sample_rating_rows": "skpercept.datasets",
    "mean_standard_errors": "skpercept.datasets",
    "ratings_with_face_index": "skpercept.datasets",
    "subset_faces": "skpercept.datasets",
    "ImageDisjointSplit": "skpercept.model_selection",
    "UserDisjointSplit": "skpercept.model_selection",
    "JudgmentGroupedSplit": "skpercept.model_selection",
    "image_disjoint_train_test_split": "skpercept.model_selection",
    "rating_comparison_consistency": "skpercept.quality",
    "transitivity_violations": "skpercept.quality",
    "random_rater_scores": "skpercept.quality",
    "labeling_speed": "skpercept.quality",
    "agreement_matrix": "skpercept.quality",
    "AgreementResult": "skpercept.quality",
    "krippendorff_alpha": "skpercept.quality",
    "fleiss_kappa": "skpercept.quality",
    "filter_raters": "skpercept.quality",
    "rater_weights": "skpercept.quality",
    "plot_rater_scores": "skpercept.quality",
    "plot_agreement": "skpercept.quality",
    "UserEncoder": "skpercept.users",
    "PairFeatures": "skpercept.pairs",
    "swap_halves": "skpercept.pairs",
    "noise_ceiling": "skpercept.reliability",
    "pair_order_ceiling": "skpercept.reliability",
    "RatingClassifier": "skpercept.rating",
    "RatingRegressor": "skpercept.rating",
    "PairwiseRanker": "skpercept.ranking",
    "JointRatingRanker": "skpercept.joint",
    "join_labels": "skpercept.joint",
    "rating_rows": "skpercept.joint",
    "add_users": "skpercept.personal",
    "suggest_pairs": "skpercept.active",
    "suggest_items": "skpercept.active",
    "save_safe": "skpercept.persistence",
    "load_safe": "skpercept.persistence",
    "PerceptSearchCV": "skpercept.tune",
    "TrialPruningCallback": "skpercept.tune",
    "LoRARatingClassifier": "skpercept.lora",
    "LoRAPairwiseRanker": "skpercept.lora",
    "ContrastiveEmbedder": "skpercept.lora",
    "CLIPEmbedder": "skpercept.embed",
    "TimmEmbedder": "skpercept.embed",
    "DlibFaceEmbedder": "skpercept.embed",
    "NoFaceWarning": "skpercept.embed",
    "ImageLoadError": "skpercept.embed",
    "BadImageWarning": "skpercept.embed",
    "load_image": "skpercept.embed",
    "BlockScaler": "skpercept.preprocessing",
    "write_report": "skpercept.report",
    "rank_photos": "skpercept.photos",
    "group_photos": "skpercept.photos",
    "quality_baseline": "skpercept.photos",
    "write_collection": "skpercept.photos",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'skpercept' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
