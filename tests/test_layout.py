"""The package's layout: imports run one way, subpackages meet only through public names.

Read from the source (every import statement, also those inside functions), not from what a
run happens to import.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import skpercept

PACKAGE = Path(skpercept.__file__).parent
#: Top-level modules every subpackage may use: shared helpers, not a family of their own.
KERNEL = {"skpercept._compat", "skpercept._utils", "skpercept._io", "skpercept._holdout"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "data" in path.relative_to(PACKAGE).parts:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or '', line) of every skpercept import of a module."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            if base == "skpercept" or base.startswith("skpercept."):
                out += [(base, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names if a.name.startswith("skpercept")]
    return out


def _target(module: str, name: str) -> str:
    """The module an import reaches: ``from a import b`` is module ``a.b`` when b is one."""
    return f"{module}.{name}" if f"{module}.{name}" in MODULES else module


def _graph() -> dict[str, set[str]]:
    graph = {name: set() for name in MODULES}
    for name in MODULES:
        for module, imported, _ in _imports(name):
            target = _target(module, imported)
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else None


def test_the_import_graph_has_no_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_top_level_holds_at_most_twelve_modules():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 12, top
    # ... and every subpackage is named by the top level
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(skpercept.SUBPACKAGES)


def test_no_module_imports_a_private_name_of_another_subpackage():
    bad = []
    for name in MODULES:
        own = _subpackage(name)
        for module, imported, line in _imports(name):
            other = _subpackage(module)
            if module in KERNEL or other is None or other == own:
                continue
            private = [p for p in [*module.split(".")[2:], imported] if p.startswith("_")]
            if private:
                bad.append(
                    f"{MODULES[name].relative_to(PACKAGE.parent)}:{line}: from {module} import {imported}"
                )
    assert bad == []


def test_only_the_command_imports_argparse():
    users = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if (isinstance(node, ast.ImportFrom) and node.module == "argparse") or "argparse" in names:
                users.append(name)
    assert users and all(u == "skpercept.cli" or u.startswith("skpercept.cli.") for u in users), users


@pytest.mark.parametrize("subpackage", skpercept.SUBPACKAGES)
def test_each_subpackage_lists_public_names_that_exist(subpackage):
    module = importlib.import_module(f"skpercept.{subpackage}")
    assert module.__doc__
    names = getattr(module, "__all__", [])
    assert subpackage == "cli" or names, "a subpackage names what it offers"
    for name in names:
        assert not name.startswith("_") and hasattr(module, name), name


def test_the_top_level_names_subpackages_and_a_dozen_estimators():
    estimators = [n for n in skpercept.__all__ if n not in skpercept.SUBPACKAGES]
    assert len(estimators) <= 12
    for name in skpercept.__all__:
        assert getattr(skpercept, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'rating'"):
        skpercept.rating  # noqa: B018 - the old flat modules are gone
