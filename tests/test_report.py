"""Report writer: markdown tables, reliability curves, PNG plots, report folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skpercept.metrics import expected_calibration_error
from skpercept.report import markdown_table, plot_calibration, plot_scatter, reliability_curve, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_markdown_table_formats_floats_nan_and_multiindex():
    frame = pd.DataFrame(
        {"acc": [0.81234, np.nan], "n": [3, 4]},
        index=pd.MultiIndex.from_tuples(
            [("smart", "ridge"), ("smart", "ranker")], names=["attribute", "model"]
        ),
    )
    text = markdown_table(frame)
    lines = text.splitlines()
    assert lines[0].split("|")[1].strip() == "attribute"
    assert "0.812" in text and "—" in text
    assert len(lines) == 4 and lines[1].startswith("|---")


def test_markdown_table_escapes_pipes():
    assert "a\\|b" in markdown_table(pd.DataFrame({"x": ["a|b"]}), index=False)


def test_reliability_curve_binary_matches_ece():
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(float)
    curve = reliability_curve(y, p, n_bins=10)
    assert curve["count"].sum() == 500
    ece = float(np.sum(curve["count"] * np.abs(curve["observed"] - curve["predicted"])) / 500)
    assert ece == pytest.approx(expected_calibration_error(y, p, n_bins=10))


def test_reliability_curve_multiclass_top_label_and_nan():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])
    y = np.array([1, 3, 3, np.nan], dtype=object)
    curve = reliability_curve(y, proba, labels=[1, 2, 3], n_bins=5)
    assert curve["count"].sum() == 3  # the NaN label is skipped
    assert curve["observed"].tolist() == [1.0, 1.0, 0.0]  # bins 0.4, 0.7, 0.8


def test_reliability_curve_rejects_bad_shapes():
    with pytest.raises(ValueError, match="rows"):
        reliability_curve([1, 0], [0.5])
    with pytest.raises(ValueError, match="labels"):
        reliability_curve([1, 2], np.full((2, 3), 1 / 3))


def test_plots_are_png(tmp_path):
    curve = reliability_curve([1, 0, 1, 1], [0.9, 0.2, 0.7, 0.6])
    path = plot_calibration(
        {"pairs": {"smart": curve}, "ratings": {"smart": curve}}, tmp_path / "a" / "c.png"
    )
    assert path.read_bytes()[:8] == PNG_MAGIC
    path = plot_scatter({"smart": ([1, 2, 3, np.nan], [0.1, 0.3, 0.2, 5.0])}, tmp_path / "s.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="smart"):
        plot_scatter({"smart": ([1, 2], [1.0])}, tmp_path / "bad.png")


def test_write_report_folder(tmp_path):
    table = pd.DataFrame(
        {"pair_acc": [0.93, 0.85]}, index=pd.Index(["noise ceiling", "ranker"], name="model")
    )
    curve = reliability_curve([1, 0, 1, 1], [0.9, 0.2, 0.7, 0.6])
    path = write_report(
        tmp_path / "out",
        tables={"Results": table},
        title="T",
        intro="Data: toy.",
        scatter={"smart": ([1, 2, 3], [0.1, 0.3, 0.2])},
        calibration={"pairs": {"smart": curve}},
        notes=["a caveat"],
    )
    text = path.read_text()
    assert text.startswith("# T") and "Data: toy." in text
    assert "| model" in text and "| ranker" in text and "0.850" in text
    assert "![calibration](calibration.png)" in text and "- a caveat" in text
    for name in ("scatter.png", "calibration.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == PNG_MAGIC
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_write_report_does_not_touch_pyplot_backend(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    write_report(tmp_path, tables={"R": pd.DataFrame({"a": [1.0]})}, scatter={"x": ([1, 2, 3], [1, 2, 3])})
    assert matplotlib.get_backend() == before
