"""Benchmark tables rendered from the result files the benchmarks write, never retyped.

Every script in ``benchmarks/`` writes ``benchmarks/results/<name>.json`` (see
``benchmarks/_shared.py``): how it was run (``command``, ``commit``, ``date``, ``hardware``) and
the ``tables`` it printed, each ``{"id", "title", "columns", "rows", "note"}``. A page shows one
of them with the ``benchmark-table`` directive, ``<name>/<table id>``::

    ```{benchmark-table} head_defaults/in-domain
    ```

It renders the table under its title, then its note, then one line saying which command
measured it, when, at which commit and on what hardware. One cell of such a table goes into
running text with the ``benchmark-cell`` role, ``<name>/<table id>/<row>/<column>``, the row named
by its first cell and the column by its header::

    Lite0 embeds {benchmark-cell}`scale_costs/per-unit/E1/figure` on two cores. A missing result file, a file that is
not a result file, or a table id (row, column) the file does not hold is an error naming it (the documented
build, ``sphinx-build -W``, fails on it). A page is read again whenever a result file it shows
changes, so rerunning a benchmark and rebuilding is all it takes to update the docs.

The folder is ``benchmark_results_dir`` in ``conf.py`` (default: ``benchmarks/results`` beside
the documentation's folder).
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective, SphinxRole

#: What a result file must hold for a table of it to be rendered.
RECORD_FIELDS = ("benchmark", "command", "commit", "date", "hardware", "tables")
TABLE_FIELDS = ("id", "title", "columns", "rows", "note")


class BenchmarkTableError(ValueError):
    """A result file or table that cannot be rendered; the message names it."""


def record_problems(record) -> list[str]:
    """What keeps ``record`` (a parsed result file) from being rendered; empty when nothing."""
    if not isinstance(record, dict):
        return ["not a JSON object"]
    problems = [f"no {field!r}" for field in RECORD_FIELDS if field not in record]
    tables = record.get("tables")
    if not isinstance(tables, list):
        return problems + ["'tables' is not a list"]
    seen = set()
    for k, table in enumerate(tables):
        if not isinstance(table, dict):
            problems.append(f"table {k} is not an object")
            continue
        name = table.get("id", k)
        problems += [f"table {name!r} has no {field!r}" for field in TABLE_FIELDS if field not in table]
        if name in seen:
            problems.append(f"table id {name!r} repeats")
        seen.add(name)
        columns, rows = table.get("columns", []), table.get("rows", [])
        if not isinstance(columns, list) or not isinstance(rows, list):
            problems.append(f"table {name!r}: 'columns' and 'rows' must be lists")
            continue
        problems += [
            f"table {name!r}, row {r}: {len(row)} cells for {len(columns)} columns"
            for r, row in enumerate(rows)
            if not isinstance(row, list) or len(row) != len(columns)
        ]
    return problems


def load_table(path: Path, table_id: str) -> tuple[dict, dict]:
    """The record of the result file ``path`` and its table ``table_id``.

    Raises :class:`BenchmarkTableError` naming the file (and the table) when either is missing
    or malformed.
    """
    if not path.is_file():
        raise BenchmarkTableError(f"no result file {path}: run the benchmark that writes it")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchmarkTableError(f"cannot read the result file {path}: {exc}") from exc
    problems = record_problems(record)
    if problems:
        raise BenchmarkTableError(f"{path} is not a result file: " + "; ".join(problems))
    for table in record["tables"]:
        if table["id"] == table_id:
            return record, table
    ids = ", ".join(repr(t["id"]) for t in record["tables"]) or "none"
    raise BenchmarkTableError(f"{path} has no table {table_id!r} (its tables: {ids})")


def table_cell(table: dict, row: str, column: str) -> str:
    """The cell of ``table`` in the row whose first cell is ``row``, under the header ``column``.

    Raises :class:`BenchmarkTableError` naming what is missing and what there is.
    """
    columns = table["columns"]
    if column not in columns:
        raise BenchmarkTableError(f"table {table['id']!r} has no column {column!r} (its columns: {columns})")
    matches = [r for r in table["rows"] if r and r[0] == row]
    if len(matches) != 1:
        labels = [r[0] for r in table["rows"] if r]
        what = "no row" if not matches else f"{len(matches)} rows"
        raise BenchmarkTableError(f"table {table['id']!r} has {what} {row!r} (its rows: {labels})")
    return str(matches[0][columns.index(column)])


def source_line(record: dict) -> nodes.paragraph:
    """'Measured by <command> on <date> at commit <sha>; <hardware>.'"""
    line = nodes.paragraph(classes=["benchmark-source"])
    line += nodes.Text("Measured by ")
    line += nodes.literal(text=record["command"])
    date = str(record["date"]).replace("T", " ").replace("Z", " UTC")
    line += nodes.Text(f" on {date}")
    if record.get("commit"):
        line += nodes.Text(", commit ")
        line += nodes.literal(text=str(record["commit"])[:10])
        if record.get("uncommitted_changes"):
            line += nodes.Text(" with uncommitted changes")
    line += nodes.Text(f"; {record['hardware']}.")
    return line


def table_nodes(record: dict, table: dict) -> list[nodes.Node]:
    """The docutils nodes of one table: the table under its title, its note, the source line."""
    strong = set(table.get("strong", []))
    columns = table["columns"]
    node = nodes.table(classes=["benchmark-table"])
    node += nodes.title(text=table["title"])
    group = nodes.tgroup(cols=len(columns))
    node += group
    group.extend(nodes.colspec(colwidth=1) for _ in columns)
    head, body = nodes.thead(), nodes.tbody()
    head += _row(columns, bold=False)
    body.extend(_row(row, bold=k in strong) for k, row in enumerate(table["rows"]))
    group += head
    group += body
    out: list[nodes.Node] = [node]
    if table["note"]:
        out.append(nodes.paragraph(text=table["note"], classes=["benchmark-note"]))
    out.append(source_line(record))
    return out


def _row(cells: list, bold: bool) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        text = nodes.Text(str(cell))
        paragraph = nodes.paragraph()
        paragraph += nodes.strong("", "", text) if bold and str(cell) else text
        entry = nodes.entry()
        entry += paragraph
        row += entry
    return row


def _result_path(env, config, name: str) -> Path:
    folder = config.benchmark_results_dir or Path(env.srcdir).parent / "benchmarks" / "results"
    path = Path(env.srcdir, folder, f"{name}.json").resolve()
    # noted even when the file is missing: the page is read again once it appears
    env.note_dependency(str(path))
    return path


class BenchmarkTable(SphinxDirective):
    """``benchmark-table <result name>/<table id>``: one table of a benchmark's result file."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name, _, table_id = self.arguments[0].partition("/")
        if not name or not table_id:
            raise self.error(f"benchmark-table: expected <result name>/<table id>, got {self.arguments[0]!r}")
        path = _result_path(self.env, self.config, name)
        try:
            record, table = load_table(path, table_id)
        except BenchmarkTableError as exc:
            raise self.error(f"benchmark-table {self.arguments[0]}: {exc}") from exc
        out = table_nodes(record, table)
        anchor = nodes.make_id(f"benchmark-{name}-{table_id}")
        if anchor not in self.state.document.ids:  # a stable link target: #benchmark-<name>-<id>
            out[0]["ids"].append(anchor)
            self.state.document.ids[anchor] = out[0]
        return out


class BenchmarkCell(SphinxRole):
    """``benchmark-cell`` ``<result name>/<table id>/<row>/<column>``: one cell, in running text."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        parts = self.text.split("/")
        if len(parts) < 4 or not all(parts):
            message = f"benchmark-cell: expected <result name>/<table id>/<row>/<column>, got {self.text!r}"
            return [], [self.inliner.reporter.error(message, line=self.lineno)]
        name, table_id, row, column = parts[0], parts[1], "/".join(parts[2:-1]), parts[-1]
        try:
            _, table = load_table(_result_path(self.env, self.config, name), table_id)
            text = table_cell(table, row, column)
        except BenchmarkTableError as exc:
            return [], [self.inliner.reporter.error(f"benchmark-cell {self.text}: {exc}", line=self.lineno)]
        return [nodes.inline(text=text, classes=["benchmark-cell"])], []


def setup(app: Sphinx) -> dict:
    app.add_config_value("benchmark_results_dir", None, "env", types=(str, Path, type(None)))
    app.add_directive("benchmark-table", BenchmarkTable)
    app.add_role("benchmark-cell", BenchmarkCell())
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
