"""Report writer: markdown tables, reliability curves, PNG plots, report folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skpercept.metrics import expected_calibration_error, per_user_scores
from skpercept.report import (
    classification_section,
    classification_tables,
    markdown_table,
    per_person_section,
    per_person_summary,
    plot_calibration,
    plot_confusion,
    plot_per_person,
    plot_scatter,
    reliability_curve,
    write_report,
)

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


def _drawn(path) -> bool:
    """A PNG with a real drawing on it: many colours, not a blank canvas."""
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 20


def _planted_scores() -> pd.DataFrame:
    # ann: 3 of 4 right; bob: 1 of 2; cid (unseen): 2 of 2; dan (unseen): 0 of 2; eve: nothing to score
    y = [1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1]
    p = [0.9, 0.8, 0.3, 0.6, 0.7, 0.7, 0.9, 0.1, 0.2, 0.4, np.nan]
    users = ["ann"] * 4 + ["bob"] * 2 + ["cid"] * 2 + ["dan"] * 2 + ["eve"]
    y = np.array(y, dtype=float)
    y[-1] = np.nan
    return per_user_scores(y, p, users, train_users=["ann"] * 40 + ["bob"] * 3 + ["eve"] * 7)


def test_per_person_summary_pools_judgments_by_group():
    summary = per_person_summary(_planted_scores())
    assert summary.index.tolist() == ["known", "unseen", "all"]
    assert summary.loc["known", "people"] == 3 and summary.loc["known", "judgments"] == 6
    assert summary.loc["known", "accuracy"] == pytest.approx(4 / 6)  # pooled, not the mean of 0.75, 0.5
    assert summary.loc["unseen", "accuracy"] == pytest.approx(0.5)
    assert summary.loc["unseen", ["min", "max"]].tolist() == [0.0, 1.0]
    assert summary.loc["all", "accuracy"] == pytest.approx(6 / 10)
    ratings = per_user_scores([1, 2, 4], [1, 3, 4], ["a", "a", "b"], kind="ratings")
    only = per_person_summary(ratings)
    assert only.index.tolist() == ["all"] and only.loc["all", "mae"] == pytest.approx(1 / 3)


def test_per_person_section_writes_plot_csv_and_tables(tmp_path):
    scores = _planted_scores()
    text = per_person_section(scores, tmp_path / "out", chance=0.5, max_rows=2)
    out = tmp_path / "out"
    assert text.startswith("## Per person") and "![accuracy per person](per_person.png)" in text
    assert _drawn(out / "per_person.png")
    back = pd.read_csv(out / "per_person.csv", index_col="user")
    assert back["accuracy"].round(6).to_dict() == pytest.approx(
        scores["accuracy"].round(6).to_dict(), nan_ok=True
    )
    assert "The 2 of 5 people" in text and "| ann" in text and "| eve" in text and "| dan" not in text
    assert "| known" in text and "0.667" in text


def test_per_person_without_training_counts_has_no_plot(tmp_path):
    scores = per_user_scores([1, 0], [0.9, 0.2], ["a", "b"])
    text = per_person_section(scores, tmp_path, name="smart")
    assert "png" not in text and (tmp_path / "smart.csv").exists() and not (tmp_path / "smart.png").exists()
    with pytest.raises(ValueError, match="train_users"):
        plot_per_person(scores, tmp_path / "x.png")


def test_classification_tables_match_sklearn():
    from sklearn.metrics import classification_report, confusion_matrix

    rng = np.random.default_rng(0)
    truth = np.where(rng.random(200) < 0.3, "delete", "keep")
    prob = np.clip((truth == "keep") * 0.3 + rng.random(200) * 0.7, 0, 1)
    report, confusion = classification_tables(truth, prob, threshold=0.6)
    pred = np.where(prob >= 0.6, "keep", "delete")
    expected = classification_report(truth, pred, output_dict=True)
    for cls in ("delete", "keep", "macro avg", "weighted avg"):
        got = report.loc[cls, ["precision", "recall", "f1", "support"]].tolist()
        want = [expected[cls][k] for k in ("precision", "recall", "f1-score", "support")]
        assert got == pytest.approx(want)
    assert confusion.to_numpy().tolist() == confusion_matrix(truth, pred, labels=["delete", "keep"]).tolist()
    assert confusion.index.tolist() == ["true delete", "true keep"]


def test_classification_tables_planted_counts_threshold_and_labels():
    y = [0, 0, 0, 1, 1, np.nan]
    p = [0.1, 0.4, 0.6, 0.5, 0.9, 0.99]
    report, confusion = classification_tables(y, p)  # 0.5 predicts positive: >= threshold
    assert confusion.to_numpy().tolist() == [[2, 1], [0, 2]]
    assert report.loc["1", "precision"] == pytest.approx(2 / 3) and report.loc["1", "recall"] == 1.0
    _, strict = classification_tables(y, p, threshold=0.55)
    assert strict.to_numpy().tolist() == [[2, 1], [1, 1]]
    proba = np.column_stack([1 - np.array(p), p])  # predict_proba matrix: same answer
    assert classification_tables(y, proba)[1].equals(confusion)
    # 'delete' made the positive class: P(delete) = 1 - P(keep)
    flipped, conf = classification_tables(["keep", "delete"], [0.2, 0.7], labels=["keep", "delete"])
    assert flipped.index[:2].tolist() == ["keep", "delete"] and conf.to_numpy().tolist() == [[1, 0], [0, 1]]
    _, absent = classification_tables([1, 1], [0.9, 0.2], labels=[0, 1])  # a class may be absent
    assert absent.to_numpy().tolist() == [[0, 0], [1, 1]]


def test_classification_tables_reject_bad_input():
    with pytest.raises(ValueError, match="labels="):
        classification_tables([1, 1], [0.9, 0.2])
    with pytest.raises(ValueError, match="exactly two"):
        classification_tables([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="not one of"):
        classification_tables([0, 2], [0.1, 0.2], labels=[0, 1])
    with pytest.raises(ValueError, match="threshold"):
        classification_tables([0, 1], [0.1, 0.2], threshold=1.5)
    with pytest.raises(ValueError, match="probabilities"):
        classification_tables([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="shape"):
        classification_tables([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="square"):
        plot_confusion(pd.DataFrame([[1, 2, 3]]), "unused.png")


def test_classification_section_and_report(tmp_path):
    y = ["keep", "keep", "delete", "delete", "keep"]
    p = [0.9, 0.3, 0.2, 0.8, 0.7]
    section = classification_section(
        y, p, tmp_path, threshold=0.25, threshold_note="chosen on training folds for recall ≥ 0.9",
        heading="Keep or delete", name="confusion_keep",
    )  # fmt: skip
    assert "## Keep or delete" in section
    assert "predict keep when P(keep) ≥ 0.250 (chosen on training folds for recall ≥ 0.9)" in section
    # predicted keep, keep, delete, keep, keep: recall keep 3/3, delete 1/2
    assert "Accuracy 0.800, balanced accuracy 0.750 (n = 5)" in section
    assert "| true delete | 1" in section and _drawn(tmp_path / "confusion_keep.png")
    people = per_person_section(_planted_scores(), tmp_path)
    path = write_report(tmp_path, tables={"R": pd.DataFrame({"a": [1.0]})}, sections=[people, section])
    text = path.read_text()
    assert text.index("## R") < text.index("## Per person") < text.index("## Keep or delete")


def test_markdown_table_prints_counts_as_integers():
    # a count column is float only because of a missing value or a sum; a score of 1.0 stays a score
    frame = pd.DataFrame({"n_pairs": [40.0, float("nan"), 12000.0], "accuracy": [0.5, 1.0, 0.25]})
    text = markdown_table(frame, index=False)
    assert "| 40 " in text and "| 12000 " in text and "40.000" not in text
    assert "1.000" in text and "0.250" in text


def test_scatter_titles_show_the_correlation_the_table_reports(tmp_path, monkeypatch):
    import skpercept.report._write as write

    titles = []
    keep = write.save_png

    def capture(fig, path):
        titles.extend(ax.get_title() for ax in fig.axes)
        return keep(fig, path)

    monkeypatch.setattr(write, "save_png", capture)
    panels = {"smart": ([1, 2, 3, 4], [0.1, 0.3, 0.2, 0.4]), "warm": ([1, 2, 3], [1, 2, 3])}
    plot_scatter(panels, tmp_path / "s.png")
    assert titles == ["smart (Spearman ρ = 0.800)", "warm (Spearman ρ = 1.000)"]
    titles.clear()
    plot_scatter(panels, tmp_path / "t.png", rho={"smart": (0.7654, "mean of 5 folds")})
    assert titles == ["smart\n(Spearman ρ = 0.765, mean of 5 folds)", "warm (Spearman ρ = 1.000)"]
