"""Writers for report tables: Markdown, LaTeX, CSV files, HTML and a rich table for the terminal.

A :class:`Table` holds display strings only (numbers already formatted, "missing" spelled
out, significance marks as trailing ``*``/``**``), so every format shows exactly the same
cells and the CSV reads back equal to ``Table.frame``. Emphasis (the best value of a column)
is kept apart in ``Table.bold`` and drawn by each format in its own way.

Notes come in two kinds: ``Table.notes`` belong to one table (what its marks mean, how a row
was chosen); ``Table.common`` are legends several tables share. A document of several tables
(:func:`document_markdown`, :func:`document_latex`) prints each common note once, at the end.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from serbench.io import atomic_write_text

FORMATS = ("md", "tex", "csv")


@dataclass
class Table:
    """A rendered report table.

    ``key``: file stem (e.g. ``table5``); ``frame``: display cells, all ``str``;
    ``notes``: legend and caveats printed under the table in every format;
    ``values``: the numbers behind the cells (long form, percent), for programmatic use.
    """

    key: str
    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    values: pd.DataFrame = field(default_factory=pd.DataFrame)
    bold: frozenset[tuple[int, str]] = frozenset()
    common: list[str] = field(default_factory=list)
    details: pd.DataFrame | None = None
    detail_only: bool = False


# A display cell that carries significance marks: the value, then one or two asterisks.
_MARKED = re.compile(r"^(.*?\S)(\*{1,2})$")


def split_marks(cell: object) -> tuple[str, str]:
    """``"45.2**"`` -> ``("45.2", "**")``; a cell without marks -> ``(cell, "")``."""
    m = _MARKED.match(str(cell))
    return (m.group(1), m.group(2)) if m else (str(cell), "")


def best_cells(frame: pd.DataFrame, columns: list[str]) -> frozenset[tuple[int, str]]:
    """(row position, column) of the highest number in each of ``columns`` (ties all kept).

    A cell counts when it starts with a number ("45.2", "45.2*"); "missing" and "n/a" never do.
    A column with fewer than two numbers has no best.
    """
    out: set[tuple[int, str]] = set()
    for col in columns:
        if col not in frame.columns:
            continue
        nums = {i: _number(v) for i, v in enumerate(frame[col])}
        nums = {i: v for i, v in nums.items() if v is not None}
        if len(nums) < 2:
            continue
        top = max(nums.values())
        out |= {(i, col) for i, v in nums.items() if v == top}
    return frozenset(out)


def _number(cell: object) -> float | None:
    m = re.match(r"^[+-]?\d+(\.\d+)?", split_marks(cell)[0])
    return float(m.group(0)) if m else None


def to_markdown(table: Table, common: bool = True) -> str:
    """GitHub-flavoured Markdown: bold title, pipe table, notes as a bullet list.

    ``common=False`` leaves out the shared legends (a document prints them once).
    """
    cols = [str(c) for c in table.frame.columns]
    lines = [f"**{_md_cell(table.title)}**", "",
             "| " + " | ".join(_md_cell(c) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for i, row in enumerate(table.frame.itertuples(index=False)):
        lines.append("| " + " | ".join(_md_value(v, (i, c) in table.bold) for v, c in zip(row, cols)) + " |")
    notes = table.notes + (table.common if common else [])
    if notes:
        lines.append("")
        lines.extend(f"- {_md_cell(n)}" for n in notes)
    return "\n".join(lines) + "\n"


def document_markdown(tables: list[Table], title: str, notes: list[str] = (), *,
                      folded: "dict[str, str] | None" = None, after: "dict[str, str] | None" = None) -> str:
    """Several tables in one Markdown document; common legends and ``notes`` once, at the end.

    ``folded``: table key -> the one line printed instead of that table (a table without any run);
    ``after``: table key -> Markdown placed right after that table (e.g. the figures after the summary).
    """
    folded, after = folded or {}, after or {}
    parts = [f"# {_md_cell(title)}\n"]
    for t in tables:
        parts.append(f"{_md_cell(folded[t.key])}\n" if t.key in folded else to_markdown(t, common=False))
        if t.key in after:
            parts.append(after[t.key])
    shared = unique_notes([t for t in tables if t.key not in folded]) + list(notes)
    if shared:
        parts.append("**Notes**\n\n" + "\n".join(f"- {_md_cell(n)}" for n in shared) + "\n")
    return "\n".join(parts)


def unique_notes(tables: list[Table]) -> list[str]:
    """The common notes of ``tables`` in first-seen order, each once."""
    return list(dict.fromkeys(n for t in tables for n in t.common))


def _md_cell(value: object) -> str:
    # A literal pipe would split the cell; newlines would end the row; a literal asterisk
    # would start emphasis.
    return str(value).replace("|", "\\|").replace("\n", " ").replace("*", "\\*")


def _md_value(value: object, bold: bool) -> str:
    text, marks = split_marks(value)
    text = _md_cell(text)
    if bold:
        text = f"**{text}**"
    return text + _md_cell(marks)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "—": "---", "–": "--", "−": "$-$", "≥": r"$\geq$", "≤": r"$\leq$",
    "<": r"$<$", ">": r"$>$",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text: object) -> str:
    """Escape LaTeX's special characters (one pass, so escapes are never escaped twice)."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], str(text))


def to_latex(table: Table, common: bool = True) -> str:
    """A self-contained ``table`` float (plain ``tabular`` with ``\\hline``: no extra packages).

    Best cells are ``\\textbf``, marks superscript; ``common=False`` leaves out the shared legends.
    """
    cols = [str(c) for c in table.frame.columns]
    lines = [
        "% generated by `serbench tables`; every number is recomputed from the stored predictions",
        r"\begin{table}[ht]", r"\centering", r"\small",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\label{{tab:serbench-{table.key}}}",
        rf"\begin{{tabular}}{{{'l' * len(cols)}}}", r"\hline",
        " & ".join(latex_escape(c) for c in cols) + r" \\", r"\hline",
    ]
    for i, row in enumerate(table.frame.itertuples(index=False)):
        lines.append(" & ".join(_latex_value(v, (i, c) in table.bold) for v, c in zip(row, cols)) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    notes = table.notes + (table.common if common else [])
    if notes:
        lines.append(r"\par\smallskip\footnotesize")
        lines.append(" \\\\\n".join(latex_escape(n) for n in notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _latex_value(value: object, bold: bool) -> str:
    text, marks = split_marks(value)
    text = latex_escape(text)
    if bold:
        text = rf"\textbf{{{text}}}"
    return text + (f"$^{{{marks}}}$" if marks else "")


def document_latex(tables: list[Table], notes: list[str] = (), *, folded: "dict[str, str] | None" = None) -> str:
    """Several table floats for ``\\input``; common legends and ``notes`` once, at the end. A table in
    ``folded`` (key -> one line) is left out, its line kept as a comment."""
    folded = folded or {}
    parts = ["% generated by `serbench tables`; every number is recomputed from the stored predictions\n"]
    parts += [f"% {folded[t.key]}\n" if t.key in folded else to_latex(t, common=False) for t in tables]
    shared = unique_notes([t for t in tables if t.key not in folded]) + list(notes)
    if shared:
        parts.append("\\paragraph{Notes}\n" + " \\\\\n".join(latex_escape(n) for n in shared) + "\n")
    return "\n".join(parts)


def to_csv(table: Table) -> str:
    """The display cells as CSV (header = column names, no index); notes are not included."""
    return table.frame.to_csv(index=False)


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a table CSV back exactly as written: every cell a string, "missing" kept as text."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_table(table: Table, out_dir: str | Path) -> list[Path]:
    """Write ``<key>.tex`` (own notes only) and ``<key>.csv``, and ``<key>-details.csv`` when the
    table has details, atomically; a detail-only table is just ``<key>.csv``. Returns the paths."""
    out_dir = Path(out_dir)
    paths = []
    writers = [("csv", to_csv)] if table.detail_only else [("tex", lambda t: to_latex(t, common=False)),
                                                          ("csv", to_csv)]
    for ext, fn in writers:
        path = out_dir / f"{table.key}.{ext}"
        atomic_write_text(path, fn(table))
        paths.append(path)
    if table.details is not None and not table.detail_only:
        path = out_dir / f"{table.key}-details.csv"
        atomic_write_text(path, table.details.to_csv(index=False))
        paths.append(path)
    return paths


def to_rich(table: Table, hide_prefix: tuple[str, ...] = (), common: bool = True):
    """A ``rich.table.Table`` for the terminal, notes as its caption, best cells bold.

    Columns whose header starts with one of ``hide_prefix`` are left out (the caption says so);
    the files always hold every column. ``common=False`` leaves the shared legends out.
    """
    cols = [c for c in table.frame.columns if not str(c).startswith(hide_prefix)] if hide_prefix else \
        list(table.frame.columns)
    hidden = [str(c) for c in table.frame.columns if c not in cols]
    notes = table.notes + (table.common if common else [])
    notes += [f"Not shown here (see the written files): {', '.join(hidden)}."] if hidden else []
    from rich.table import Table as RichTable
    from rich.text import Text

    # Text everywhere, not markup: headers and notes may contain "[...]" that rich would parse.
    rt = RichTable(title=Text(table.title, style="bold"),
                   caption=Text("\n".join(notes)) if notes else None,
                   caption_justify="left", show_lines=False)
    for col in cols:
        rt.add_column(Text(str(col)), overflow="fold")
    for i, row in enumerate(table.frame[cols].itertuples(index=False)):
        rt.add_row(*(_rich_cell(v, (i, c) in table.bold) for v, c in zip(row, cols)))
    return rt


def _rich_cell(value: object, bold: bool = False):
    from rich.text import Text

    text = Text(str(value))
    if str(value) == "missing":
        text.stylize("bold red")
    elif bold:
        text.stylize("bold")
    return text
