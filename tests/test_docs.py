"""The documentation's promises that can be checked without building it: every public name has
a docstring with an example (the API reference renders them), every public constant a ``#:``
comment (autodoc's source for a constant's text), and README stays a front door.

The site itself is built with warnings as errors and opened in headless Chromium by ``.ci/run``
(``docs/check_site.py``).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _api_pages():
    spec = importlib.util.spec_from_file_location("api_pages", ROOT / "docs" / "_ext" / "api_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NAMES = [(module, name) for module, names in _api_pages().public_names().items() for name in names]


def test_the_reference_covers_every_public_module():
    modules = {module for module, _ in NAMES}
    assert {"skpercept.heads", "skpercept.embed", "skpercept.persistence", "skpercept.heads.nets"} <= modules
    assert len(NAMES) > 200


@pytest.mark.parametrize(("module", "name"), NAMES, ids=[f"{m}.{n}" for m, n in NAMES])
def test_every_public_name_is_documented_with_an_example(module, name):
    obj = getattr(importlib.import_module(module), name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        doc = inspect.getdoc(obj) or ""
        assert doc.strip(), f"{module}.{name} has no docstring"
        assert re.search(r"^Examples\n-{8}\n", doc, flags=re.M), f"{module}.{name} has no Examples section"
        assert ">>>" in doc.split("Examples\n--------", 1)[1], f"{module}.{name}: its Examples hold no code"
        return
    # a constant: autodoc shows the ``#:`` comment above its assignment in the module defining it
    pattern = re.compile(rf"^((?:#:.*\n)+){re.escape(name)}\s*(?::[^=\n]+)?=", flags=re.M)
    sources = (ROOT / "skpercept").rglob("*.py")
    assert any(pattern.search(path.read_text(encoding="utf-8")) for path in sources), (
        f"{module}.{name} has no '#:' comment above its assignment"
    )


def test_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        assert readme.count(marker) == 1
