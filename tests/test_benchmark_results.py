"""The committed benchmark result files, and the documentation's table directive that shows them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

pytest.importorskip("sphinx")
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import benchmark_tables  # noqa: E402

FIXTURE = {
    "benchmark": "tiny",
    "command": "python benchmarks/tiny.py --seed 0",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "uncommitted_changes": False,
    "date": "2026-01-02T03:04:05Z",
    "hardware": "x86_64, 2 CPU(s), torch 2.x, threads 2, CUDA no; load average 0.5",
    "tables": [
        {
            "id": "accuracy",
            "title": "Pair accuracy",
            "columns": ["model", "trustworthy"],
            "rows": [["ridge", "0.810"], ["PairwiseRanker()", "0.808"]],
            "note": "Held-out faces.",
            "strong": [1],
        }
    ],
    "figures": {"ridge": 0.81},
}


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_result_file_renders(path):
    record = json.loads(path.read_text(encoding="utf-8"))
    assert benchmark_tables.record_problems(record) == []
    assert record["benchmark"] == path.stem
    assert record["tables"], "a result file without tables shows nothing"


def test_fixture_renders_title_cells_bold_rows_and_source():
    record, table = FIXTURE, FIXTURE["tables"][0]
    node, note, source = benchmark_tables.table_nodes(record, table)
    assert node.tagname == "table"
    assert node[0].astext() == "Pair accuracy"
    rows = node.findall(lambda n: n.tagname == "row")
    assert [[entry.astext() for entry in row.children] for row in rows] == [
        ["model", "trustworthy"],
        ["ridge", "0.810"],
        ["PairwiseRanker()", "0.808"],
    ]
    strong = [n.astext() for n in node.findall(lambda n: n.tagname == "strong")]
    assert strong == ["PairwiseRanker()", "0.808"]
    assert note.astext() == "Held-out faces."
    assert source.astext() == (
        "Measured by python benchmarks/tiny.py --seed 0 on 2026-01-02 03:04:05 UTC, commit "
        "0123456789; x86_64, 2 CPU(s), torch 2.x, threads 2, CUDA no; load average 0.5."
    )


def test_missing_file_table_or_field_is_an_error_naming_it(tmp_path):
    path = tmp_path / "tiny.json"
    with pytest.raises(benchmark_tables.BenchmarkTableError, match="no result file .*tiny.json"):
        benchmark_tables.load_table(path, "accuracy")
    path.write_text(json.dumps(FIXTURE))
    with pytest.raises(benchmark_tables.BenchmarkTableError, match="no table 'speed'.*'accuracy'"):
        benchmark_tables.load_table(path, "speed")
    broken = {**FIXTURE, "tables": [{**FIXTURE["tables"][0], "rows": [["ridge"]]}]}
    path.write_text(json.dumps({k: v for k, v in broken.items() if k != "commit"}))
    with pytest.raises(benchmark_tables.BenchmarkTableError, match="no 'commit'.*1 cells for 2 columns"):
        benchmark_tables.load_table(path, "accuracy")


def test_table_cell_by_row_label_and_column_or_an_error_naming_both():
    table = FIXTURE["tables"][0]
    assert benchmark_tables.table_cell(table, "PairwiseRanker()", "trustworthy") == "0.808"
    with pytest.raises(benchmark_tables.BenchmarkTableError, match="no column 'smart'.*'trustworthy'"):
        benchmark_tables.table_cell(table, "ridge", "smart")
    doubled = {**table, "rows": [["ridge", "0.1"], ["ridge", "0.2"]]}
    with pytest.raises(benchmark_tables.BenchmarkTableError, match="has 2 rows 'ridge'"):
        benchmark_tables.table_cell(doubled, "ridge", "trustworthy")


def test_scale_costs_is_what_its_sources_give_today(tmp_path):
    """``scale_costs.json`` multiplies out figures of other result files: rerunning one of those
    benchmarks without rerunning ``scale_costs.py`` would leave the scale page behind them."""
    script = ROOT / "benchmarks" / "scale_costs.py"
    done = subprocess.run(
        [sys.executable, str(script), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "no result file for embed_throughput" in done.stderr  # an empty folder: names what is missing
    for path in RESULTS.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), "--results", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    fresh = json.loads((tmp_path / "scale_costs.json").read_text(encoding="utf-8"))
    committed = json.loads((RESULTS / "scale_costs.json").read_text(encoding="utf-8"))
    assert fresh["tables"] == committed["tables"], "rerun python benchmarks/scale_costs.py"


def test_directive_in_a_sphinx_build(tmp_path):
    from io import StringIO

    from sphinx.application import Sphinx

    src, results = tmp_path / "src", tmp_path / "results"
    src.mkdir(), results.mkdir()
    (results / "tiny.json").write_text(json.dumps(FIXTURE))
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'docs' / '_ext')!r})\n"
        f"extensions = ['benchmark_tables']\nbenchmark_results_dir = {str(results)!r}\n"
    )
    (src / "index.rst").write_text(
        "Tiny\n====\n\n.. benchmark-table:: tiny/accuracy\n\n.. benchmark-table:: tiny/gone\n\n"
        "Ridge scored :benchmark-cell:`tiny/accuracy/ridge/trustworthy` in the text.\n\n"
        "Lasso scored :benchmark-cell:`tiny/accuracy/lasso/trustworthy`.\n"
    )
    warnings = StringIO()

    def build() -> str:
        app = Sphinx(src, src, tmp_path / "out", tmp_path / "doctrees", "html", status=None, warning=warnings)
        app.build()
        return (tmp_path / "out" / "index.html").read_text(encoding="utf-8")

    html = build()
    assert "Pair accuracy" in html and "<strong>0.808</strong>" in html
    assert "benchmarks/tiny.py" in html and "0123456789" in html
    assert "index.rst:6: ERROR: benchmark-table tiny/gone:" in warnings.getvalue()
    assert "has no table 'gone' (its tables: 'accuracy')" in warnings.getvalue()
    assert 'Ridge scored <span class="benchmark-cell">0.810</span> in the text.' in html
    assert "index.rst:10: ERROR: benchmark-cell tiny/accuracy/lasso/trustworthy:" in warnings.getvalue()
    assert "has no row 'lasso' (its rows: ['ridge', 'PairwiseRanker()'])" in warnings.getvalue()
    # a rerun benchmark's file puts the page out of date: the next build shows the new figures
    rerun = {**FIXTURE, "tables": [{**FIXTURE["tables"][0], "title": "Pair accuracy, rerun"}]}
    (results / "tiny.json").write_text(json.dumps(rerun))
    later = (results / "tiny.json").stat().st_mtime + 10
    os.utime(results / "tiny.json", (later, later))
    assert "Pair accuracy, rerun" in build()
