"""Every public estimator under scikit-learn's ``parametrize_with_checks``.

A check an estimator cannot pass by design is an expected failure below, with the reason.
The heads are small and trained briefly here (a few epochs, high learning rate) so the whole
suite stays fast: the checks test the contract, not model quality.
"""

from __future__ import annotations

import importlib
import inspect
import tempfile
from pathlib import Path

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks
from sklearn.utils.fixes import parse_version

import skpercept
from skpercept.embed import CLIPEmbedder, DlibFaceEmbedder, LayoutEmbedder, TimmEmbedder, registered_backbones
from skpercept.heads import PairwiseRanker, get_head, head_names
from skpercept.personal import UserEncoder
from skpercept.preprocessing import BlockScaler, PairFeatures
from tests._images import TINY_TIMM, register_tiny_clip

_TINY_CLIP = register_tiny_clip(Path(tempfile.mkdtemp(prefix="skpercept-clip-")))


class ItemScaler(TransformerMixin, BaseEstimator):
    """A minimal item transformer: a 1-D column of numeric items -> (n, 2) features."""

    def fit(self, X, y=None):
        x = check_array(np.asarray(X, dtype=float).reshape(-1, 1))
        self.scale_ = float(np.abs(x).max()) or 1.0
        return self

    def transform(self, X):
        x = check_array(np.asarray(X, dtype=float).reshape(-1, 1)) / self.scale_
        return np.hstack([x, x**2])


# -- expected failures, by estimator class ---------------------------------------------------
_FAST = dict(
    hidden_layer_sizes=(16,),
    lr=0.1,
    max_epochs=20,
    batch_size=64,
    early_stopping=False,
    dropout=0.0,
    device="cpu",
    random_state=0,
)

# check name -> reason, per estimator class
_FLOAT32 = (
    "float32 matrix products depend on the batch's shape at the 1e-7 level, below the "
    "check's atol=1e-7 but not always"
)
_ODD = (
    "the check uses an odd number of features; pair estimators need [left | right] halves "
    "of equal width and raise a ValueError saying so"
)
_LABELS = (
    "pair labels mean 1 = left preferred / 0 = right (soft values in [0, 1]); the check's "
    "arbitrary class labels (strings, 1/2, several classes) are rejected with a ValueError"
)
_WEIGHTS = (
    "refitting on repeated rows changes the mini-batches and the number of steps of an epoch, so "
    "two stochastic fits differ; integer weights equal repeated rows with full-batch training: "
    "tests/heads/test_sample_weight.py::test_integer_weights_equal_repeated_rows"
)
_SAMPLE_WEIGHT_CHECKS = (
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weight_equivalence_on_sparse_data",
)
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "UserEncoder": {
        "check_fit1d": "1-D input is a column of user ids, accepted by design (a Series of ids).",
        "check_fit2d_predict1d": "1-D input at transform is a column of ids, accepted by design.",
    },
    "RatingClassifier": {
        "check_methods_subset_invariance": _FLOAT32,
        **dict.fromkeys(_SAMPLE_WEIGHT_CHECKS, _WEIGHTS),
    },
    "RatingRegressor": {
        "check_methods_subset_invariance": _FLOAT32,
        **dict.fromkeys(_SAMPLE_WEIGHT_CHECKS, _WEIGHTS),
    },
    "PairwiseRanker": {
        **dict.fromkeys(
            (
                "check_fit_score_takes_y",
                "check_dont_overwrite_parameters",
                "check_estimators_dtypes",
                "check_pipeline_consistency",
                "check_estimators_nan_inf",
                "check_estimator_sparse_tag",
                "check_estimator_sparse_array",
                "check_estimator_sparse_matrix",
                "check_estimators_pickle",
                "check_f_contiguous_array_estimator",
                "check_methods_sample_order_invariance",
                "check_methods_subset_invariance",
                "check_fit2d_1feature",
                "check_dict_unchanged",
                "check_fit2d_predict1d",
                "check_sample_weights_pandas_series",
                "check_sample_weights_not_an_array",
                "check_sample_weights_list",
                "check_sample_weights_shape",
                "check_sample_weights_not_overwritten",
                *_SAMPLE_WEIGHT_CHECKS,
            ),
            _ODD,
        ),
        **dict.fromkeys(
            (
                "check_classifier_data_not_an_array",
                "check_classifiers_classes",
                "check_classifier_multioutput",
                "check_classifiers_regression_target",
                "check_supervised_y_2d",
                "check_classifier_not_supporting_multiclass",
            ),
            _LABELS,
        ),
        "check_classifiers_one_label": (
            "labels 1/2 are not pair labels (see above); a single pair label (all 1) trains fine"
        ),
    },
}


# scikit-learn 1.6, the oldest release pyproject allows, runs some checks on other data than
# later releases do; CI runs this module against it too.
if parse_version(sklearn.__version__) < parse_version("1.7"):
    _POSITIVE_ONLY = (
        "scikit-learn 1.6's version of this check subtracts a float mean from the integer data "
        "that categorical input tags ask for, and fails inside the check itself (1.7 fixed it)"
    )
    _THREE_CLASSES = (
        f"scikit-learn 1.6's version of this check fits on three-class make_blobs labels (later "
        f"versions give a binary classifier binary labels); {_LABELS}"
    )
    for _name in ("UserEncoder", "PairFeatures"):
        EXPECTED_FAILURES.setdefault(_name, {})["check_positive_only_tag_during_fit"] = _POSITIVE_ONLY
    EXPECTED_FAILURES["PairwiseRanker"].update(
        dict.fromkeys(
            (
                "check_estimators_overwrite_params",
                "check_estimators_fit_returns_self",
                "check_readonly_memmap_input",
                "check_dtype_object",
                "check_fit_check_is_fitted",
            ),
            _THREE_CLASSES,
        )
    )


# The embedders take images; every check below feeds a numeric table (the property it checks
# is then checked with images by the named check of tests/embed/test_contract.py). Checks that
# pass: the API checks, empty / complex / 1-D input messages, and sparse input (refused with a
# TypeError that says sparse input is not supported, as scikit-learn's own estimators do).
_NUMERIC_X = (
    "feeds a numeric 2-D array as X; embedders take images and refuse feature tables with a "
    "ValueError naming the problem"
)


def _with_images(*contract_checks: str) -> str:
    names = ", ".join(f"tests/embed/test_contract.py::{c}" for c in contract_checks)
    return f"{_NUMERIC_X}; with images: {names}"


EMBEDDER_FAILURES = {
    "check_fit_score_takes_y": _with_images("check_fit_returns_self"),
    "check_estimators_overwrite_params": _with_images("check_fit_sets_only_fitted_attributes"),
    "check_dont_overwrite_parameters": _with_images("check_fit_sets_only_fitted_attributes"),
    "check_estimators_fit_returns_self": _with_images("check_fit_returns_self"),
    "check_readonly_memmap_input": _with_images("every check (the 'arrays' inputs are read-only)"),
    "check_n_features_in_after_fitting": _with_images("check_n_features_in"),
    "check_positive_only_tag_during_fit": f"{_NUMERIC_X}; negative feature values have no image "
    "counterpart (pixels are never negative), so no image check stands in",
    "check_estimators_dtypes": f"{_NUMERIC_X}; image arrays of any dtype (uint8/16, float, bool) "
    "are mapped to 8-bit RGB: tests/embed/test_decode.py::test_arrays_and_pil_images",
    "check_dtype_object": "an object array's cells are image sources; the numbers this check puts "
    "there are not images, so transform raises ImageLoadError. Object arrays of images: "
    "tests/embed/test_contract.py::check_input_containers_agree",
    "check_pipeline_consistency": f"{_NUMERIC_X}; embedders in a Pipeline / ColumnTransformer / "
    "GridSearchCV: tests/embed/test_embedders.py::test_pipeline_columntransformer_and_gridsearch_over_model_name",
    "check_estimators_nan_inf": "numeric X is refused as not-images before any NaN/inf check; a "
    "missing or bad image cell follows on_error: tests/embed/test_embedders.py::test_bad_images_become_nan_rows_in_place",
    "check_estimators_pickle": _with_images("check_pickle_round_trip"),
    "check_f_contiguous_array_estimator": _with_images("every check (one 'arrays' input is Fortran-ordered)"),
    "check_transformer_data_not_an_array": _with_images("check_input_containers_agree"),
    "check_transformer_general": _with_images("check_fit_transform", "check_float32_output"),
    "check_methods_sample_order_invariance": _with_images("check_order_invariance"),
    "check_methods_subset_invariance": _with_images("check_subset_invariance"),
    "check_fit2d_1sample": _with_images("check_one_image"),
    "check_fit2d_1feature": _with_images("every check (one image column is the usual input)"),
    "check_dict_unchanged": _with_images("check_transform_deterministic"),
    "check_fit_idempotent": _with_images("check_fit_idempotent"),
    "check_fit_check_is_fitted": _with_images("check_fit_sets_only_fitted_attributes"),
    "check_n_features_in": _with_images("check_n_features_in"),
    "check_fit2d_predict1d": f"{_NUMERIC_X}; and a 1-D sequence is one image column, the usual input; "
    "a single image passed unwrapped is refused: tests/embed/test_embedders.py::test_numeric_and_single_inputs_are_refused",
}


for _name in ("TimmEmbedder", "CLIPEmbedder", "DlibFaceEmbedder", "LayoutEmbedder"):
    EXPECTED_FAILURES[_name] = EMBEDDER_FAILURES

# Public estimators the common checks cannot drive at all, with the reason.
NOT_CHECKED = {
    "LoRARatingClassifier": "takes a DataFrame of image paths (and user ids) and trains an image "
    "tower; every check feeds numeric arrays. tests/finetune/test_lora.py covers clone, Pipeline, "
    "pickling and unknown users; tests/test_params.py runs check_param_validation.",
    "LoRAPairwiseRanker": "same as LoRARatingClassifier",
    "ContrastiveEmbedder": "an embedder whose fit trains LoRA adapters on images; the common checks "
    "feed numeric arrays. tests/embed/test_contract.py runs the embedder contract on it (images "
    "as paths, PIL and arrays) and check_param_validation; tests/finetune/test_contrastive.py the rest.",
    "JointRatingRanker": "its rating rows leave the right half NaN, which no common check builds; "
    "tests/heads/test_joint.py runs the common checks with its own expected failures and reasons.",
    "EmbeddingLookup": "maps item names (strings) to rows of a fixed table: it has no numeric input "
    "for the common checks to feed. tests/label/ covers it inside the labelling app's pipelines.",
    "PerceptSearchCV": "a meta-estimator over a Pipeline and an Optuna study, like sklearn's "
    "searches (also outside the common checks); tests/model_selection/test_search.py covers its API and "
    "tests/test_params.py runs check_param_validation.",
}

_EMBED = dict(pretrained=None, device="cpu", batch_size=4, num_workers=0)


def registered_heads() -> list:
    """One instance of every registered skpercept head class at its defaults, trained briefly
    (``_FAST``).

    Heads come from the registry, so a head registered once is checked here; a class that
    excuses itself in :data:`NOT_CHECKED` (it runs the checks in its own module) is skipped.
    """
    heads, seen = [], set()
    for name in head_names(skpercept_only=True):
        spec = get_head(name)
        if spec.estimator in seen or spec.estimator.__name__ in NOT_CHECKED:
            continue
        seen.add(spec.estimator)
        params = spec.estimator().get_params()
        heads.append(spec.estimator(**{k: v for k, v in _FAST.items() if k in params}))
    return heads


def registered_embedders(covered: set[type]) -> list:
    """An instance of every registered backbone whose embedder class no entry below covers,
    built as the presets build it (a family needs a model name, and its class is covered)."""
    embedders = []
    for spec in registered_backbones():
        if spec.family or spec.estimator in covered or spec.estimator.__name__ in NOT_CHECKED:
            continue
        covered.add(spec.estimator)
        embedders.append(
            spec.build(None, None, flip=False, device="cpu", cache_dir=None, progress=False, num_workers=0)
        )
    return embedders


def checked_estimators() -> list:
    """Every estimator the common checks run on: the registered heads, the rest, then any
    registered backbone whose class is not among them."""
    listed = [
        UserEncoder(),
        UserEncoder(min_count=2, sparse_output=True),
        PairFeatures(item_transformer=ItemScaler(), item_columns=(0, 1), context_columns=None),
        PairFeatures(
            item_transformer=ItemScaler(),
            context_transformer="passthrough",
            item_columns=(0, 1),
            context_columns=(-1,),
        ),
        *registered_heads(),
        PairwiseRanker(**_FAST, n_ensemble=2, calibration="temperature"),
        BlockScaler(),
        BlockScaler(block_sizes=None),
        TimmEmbedder(model_name=TINY_TIMM, **_EMBED),
        CLIPEmbedder(model_name=_TINY_CLIP, **_EMBED),
        DlibFaceEmbedder(num_workers=0),
        LayoutEmbedder(side=32, **_EMBED),
    ]
    return listed + registered_embedders({type(est) for est in listed})


ESTIMATORS = checked_estimators()


def _expected_failed_checks(estimator):
    """The expected failures of the estimator's class, or of the nearest base that has some."""
    for cls in type(estimator).__mro__:
        if cls.__name__ in EXPECTED_FAILURES:
            return EXPECTED_FAILURES[cls.__name__]
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    name = getattr(check, "func", check).__name__
    if name not in _expected_failed_checks(estimator):
        check(estimator)
        return
    try:
        check(estimator)
    except Exception as exc:
        # Expected failures are re-raised without their deep sklearn traceback: pytest would
        # otherwise spend ~0.3 s formatting each one, most of this file's run time.
        raise AssertionError(f"{name}: {type(exc).__name__}: {exc}") from None


def public_estimators() -> dict[str, type]:
    """Every estimator class a subpackage exports (base classes for writing one excepted)."""
    found = {}
    for sub in skpercept.SUBPACKAGES:
        module = importlib.import_module(f"skpercept.{sub}")
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator) and not name.startswith("Base"):
                found[name] = obj
    return found


def test_every_public_estimator_is_checked_or_excused():
    public = set(public_estimators())
    checked = {type(est).__name__ for est in ESTIMATORS}
    assert public - checked - set(NOT_CHECKED) == set()
    assert set(NOT_CHECKED) <= public


def test_every_registered_head_and_backbone_is_checked_or_excused():
    checked = {type(est) for est in ESTIMATORS} | {
        cls for cls in public_estimators().values() if cls.__name__ in NOT_CHECKED
    }
    heads = {get_head(name).estimator for name in head_names(skpercept_only=True)}
    backbones = {spec.estimator for spec in registered_backbones()}
    assert heads <= checked
    assert backbones <= checked


def test_every_excused_embedder_check_is_one_that_runs():
    """No excuse for a check scikit-learn never runs on the embedders (it would hide nothing but
    inflate the list)."""
    for estimator in ESTIMATORS:
        if type(estimator).__name__ in ("TimmEmbedder", "CLIPEmbedder", "DlibFaceEmbedder", "LayoutEmbedder"):
            run = {
                getattr(c, "func", c).__name__ for _, c in estimator_checks_generator(estimator, legacy=True)
            }
            assert set(EMBEDDER_FAILURES) <= run, set(EMBEDDER_FAILURES) - run
