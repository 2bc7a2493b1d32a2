"""The HTML diagram of every public estimator links ("?") to its page of skpercept's API reference."""

from __future__ import annotations

import importlib
import re

import pytest
from sklearn.pipeline import make_pipeline

from skpercept._utils import API_DOCS_URL
from skpercept.heads import PairwiseRanker
from skpercept.preprocessing import BlockScaler
from tests.test_common import public_estimators

#: The "?" link of an estimator's box in scikit-learn's HTML diagram.
_DOC_LINK = re.compile(r'<a class="sk-estimator-doc-link[^"]*"[^>]*href="([^"]+)"')
_PAGE = re.compile(re.escape(API_DOCS_URL) + r"(?P<module>[\w.]+)\.(?P<name>\w+)\.html")


#: Parameters without a default.
_REQUIRED = {
    "PairFeatures": lambda: {"item_transformer": BlockScaler()},
    "PerceptSearchCV": lambda: {"estimator": PairwiseRanker(), "param_distributions": {}},
}


@pytest.mark.parametrize("name", sorted(public_estimators()))
def test_every_public_estimator_links_to_its_api_page(name):
    cls = public_estimators()[name]
    estimator = cls(**_REQUIRED.get(name, dict)())
    links = _DOC_LINK.findall(estimator._repr_html_())
    assert links, f"{name}'s HTML repr has no documentation link"
    page = _PAGE.fullmatch(links[0])  # the first box is the estimator's own (then any it wraps)
    assert page is not None, links[0]
    assert page["name"] == name
    # the module named is a public one that exports the class
    module = importlib.import_module(page["module"])
    assert not any(part.startswith("_") for part in page["module"].split("."))
    assert name in module.__all__ and getattr(module, name) is cls
    assert page["module"] != "skpercept"  # documented in its subpackage


def test_links_name_the_subpackage_not_the_private_module_that_defines_the_class():
    assert PairwiseRanker.__module__ == "skpercept.heads._ranking"
    assert PairwiseRanker()._get_doc_link() == f"{API_DOCS_URL}skpercept.heads.PairwiseRanker.html"


def test_every_step_of_a_pipeline_links_to_its_own_page():
    links = _DOC_LINK.findall(make_pipeline(BlockScaler(), PairwiseRanker())._repr_html_())
    assert f"{API_DOCS_URL}skpercept.preprocessing.BlockScaler.html" in links
    assert f"{API_DOCS_URL}skpercept.heads.PairwiseRanker.html" in links
    assert any(link.startswith("https://scikit-learn.org/") for link in links)  # the Pipeline's own


def test_a_users_subclass_gets_no_link_to_skpercept_pages():
    class MyRanker(PairwiseRanker):
        pass

    assert MyRanker()._get_doc_link() == ""
