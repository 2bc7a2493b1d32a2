"""The private scikit-learn API skpercept builds on, in one place.

scikit-learn's own estimators, and third-party libraries built on its contract such as
imbalanced-learn, use these: declarative parameter validation, the fit context that validates
parameters once per call, the sample-weight and feature-name checks, and row indexing of any
container. Being private, they may move between releases, so every use in skpercept goes through
this module, and CI runs the common checks against the oldest scikit-learn that pyproject allows
as well as the current one.
"""

from __future__ import annotations

from sklearn.base import _fit_context as fit_context
from sklearn.utils import _safe_indexing as safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
)
from sklearn.utils.validation import _check_feature_names_in as check_feature_names_in
from sklearn.utils.validation import _check_sample_weight as check_sample_weight

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "Options",
    "RealNotInt",
    "StrOptions",
    "check_feature_names_in",
    "check_sample_weight",
    "fit_context",
    "safe_indexing",
]
