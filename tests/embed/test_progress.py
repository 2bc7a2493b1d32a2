"""progress='auto': a bar where a person is watching (a terminal, a notebook), silence elsewhere."""

from __future__ import annotations

import io
import sys
import types

import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skpercept._progress import person_watching, show_progress
from skpercept.embed import TimmEmbedder, make_backbones
from tests._images import TINY_TIMM, photo


class _Stream(io.StringIO):
    """A captured stderr that says whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture(scope="module")
def fitted():
    images = [photo(0), photo(1)]
    return TimmEmbedder(model_name=TINY_TIMM, pretrained=None, device="cpu", num_workers=0).fit(images)


def _bar(embedder, monkeypatch, tty: bool, progress) -> str:
    """What one transform of two new images writes to a stderr that is (or is not) a terminal."""
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stderr", stream)
    embedder.set_params(progress=progress).transform([photo(2), photo(3)])
    return stream.getvalue()


def test_default_is_auto_everywhere():
    assert TimmEmbedder().progress == "auto"
    backbone = make_backbones([f"timm:{TINY_TIMM}"], pretrained={})[f"timm:{TINY_TIMM}"]
    assert backbone.progress == "auto"


def test_auto_shows_a_bar_on_a_terminal(fitted, monkeypatch):
    written = _bar(fitted, monkeypatch, tty=True, progress="auto")
    assert "TimmEmbedder" in written and "2/2" in written


def test_auto_is_silent_in_pipes_logs_and_tests(fitted, monkeypatch):
    assert _bar(fitted, monkeypatch, tty=False, progress="auto") == ""


def test_false_silences_and_true_forces(fitted, monkeypatch):
    assert _bar(fitted, monkeypatch, tty=True, progress=False) == ""
    assert "2/2" in _bar(fitted, monkeypatch, tty=False, progress=True)


def test_a_notebook_kernel_counts_as_a_person(monkeypatch):
    stream = _Stream(tty=False)
    assert not person_watching(stream)
    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    assert person_watching(stream)
    terminal_ipython = types.SimpleNamespace(config={"TerminalIPythonApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal_ipython))
    assert not person_watching(stream)  # IPython in a terminal: the terminal decides


def test_streams_without_isatty_are_not_watched():
    assert not person_watching(object())
    closed = io.StringIO()
    closed.close()
    assert not person_watching(closed)
    assert show_progress(True) and not show_progress(False)


def test_other_values_are_refused(fitted):
    with pytest.raises(InvalidParameterError, match="'progress' parameter of TimmEmbedder"):
        TimmEmbedder(model_name=TINY_TIMM, pretrained=None, progress="yes").fit([photo(0)])
