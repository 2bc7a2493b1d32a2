"""The API reference, written from the package itself when the site builds.

``api/index.rst`` lists every name in the ``__all__`` of each public module (the subpackages in
the order data flows through them, then :mod:`skpercept.persistence`), grouped as classes,
functions and constants; autosummary then writes one page per name into ``api/generated/``.
Nothing is listed by hand, so a new public name gets its page without anyone remembering to.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from pathlib import Path

import skpercept

#: The modules whose ``__all__`` the reference documents: the subpackages, saving and loading,
#: then the building blocks for authors of new backbones and heads.
PUBLIC_MODULES = [f"skpercept.{name}" for name in skpercept.SUBPACKAGES] + [
    "skpercept.persistence",
    "skpercept.embed.base",
    "skpercept.embed.towers",
    "skpercept.heads.base",
    "skpercept.heads.nets",
    "skpercept.heads.calibration",
]


def _kind(obj) -> str:
    if inspect.isclass(obj):
        if issubclass(obj, Warning):
            return "Warnings"
        if issubclass(obj, BaseException):
            return "Exceptions"
        return "Classes"
    if inspect.isfunction(obj):
        return "Functions"
    return "Constants and scorers"


def _seen(obj, documented: set[int]) -> bool:
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return False
    seen = id(obj) in documented
    documented.add(id(obj))
    return seen


def public_names() -> dict[str, list[str]]:
    """Public module -> its names, as ``__all__`` lists them."""
    return {name: list(getattr(importlib.import_module(name), "__all__", [])) for name in PUBLIC_MODULES}


def api_index() -> str:
    lines = [
        ".. _api:",
        "",
        "API reference",
        "=============",
        "",
        "Every public name, by the module that exports it. The package itself also names the most "
        "used estimators (``from skpercept import PairwiseRanker``); they are documented here under "
        "their subpackage.",
        "",
        ".. contents:: Modules",
        "   :local:",
        "   :depth: 1",
        "",
    ]
    documented: set[int] = set()
    for module_name, names in public_names().items():
        module = importlib.import_module(module_name)
        # a class or function that an earlier module already exports gets one page, there
        names = [n for n in names if not _seen(getattr(module, n), documented)]
        lines += [f":mod:`{module_name}`", "-" * (len(module_name) + 7), ""]
        lines += [f".. automodule:: {module_name}", "   :no-members:", ""]
        lines += [f".. currentmodule:: {module_name}", ""]
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(_kind(getattr(module, name)), []).append(name)
        for kind in ("Classes", "Functions", "Exceptions", "Warnings", "Constants and scorers"):
            if kind not in groups:
                continue
            lines += [f".. rubric:: {kind}", "", ".. autosummary::", "   :toctree: generated/", ""]
            lines += [f"   {name}" for name in groups[kind]] + [""]
    return "\n".join(lines)


_COMMENTED = re.compile(r"^((?:#:.*\n)+)([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=\n]+)?=", flags=re.M)


@functools.cache
def _constant_comments() -> dict[str, list[tuple[str, list[str]]]]:
    """Name -> (defining module, its ``#:`` comment lines) for every commented module constant."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    package = Path(skpercept.__file__).parent
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for match in _COMMENTED.finditer(path.read_text(encoding="utf-8")):
            lines = [line.removeprefix("#:").removeprefix(" ") for line in match.group(1).splitlines()]
            found.setdefault(match.group(2), []).append((module, lines))
    return found


def constant_doc(name: str, obj) -> list[str] | None:
    """The ``#:`` comment of the constant ``obj`` exported as ``name``, read where it is assigned.

    autodoc reads such comments only in the module the page names; a subpackage exports its
    constants from private modules, so the page would otherwise show the docstring of ``str``.
    """
    for module, lines in _constant_comments().get(name, []):
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        if value is obj:
            return lines
    return None


def _constant_docstring(app, what, name, obj, options, lines) -> None:
    if what in ("data", "attribute") and name.startswith("skpercept."):
        comment = constant_doc(name.rpartition(".")[2], obj)
        if comment is not None:
            lines[:] = [*comment, ""]


def _write_index(app, config=None) -> None:
    target = Path(app.confdir) / "api" / "index.rst"
    target.parent.mkdir(exist_ok=True)
    text = api_index()
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def setup(app):
    # before Sphinx looks for source files, so that autosummary finds the index on a fresh build
    app.connect("config-inited", _write_index)
    app.connect("autodoc-process-docstring", _constant_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
