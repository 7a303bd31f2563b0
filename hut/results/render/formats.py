"""The one table renderer: a :class:`~hut.results.render.table.Table` as Markdown, LaTeX, CSV, HTML
or aligned plain text. Every table the suite writes or prints goes through here: the paper tables,
the report's tables, the benchmarks', the precision survey's and the plan's.

* :func:`to_md`, :func:`to_tex`, :func:`to_csv`, :func:`to_html`: a whole table (title, caption,
  grid, notes; Markdown and LaTeX end with the provenance line);
* :func:`grid` with a format name: the grid alone (header and rows), for a table inside a larger
  document (:mod:`hut.results.render.doc`) or a console line;
* :func:`simple`: a :class:`Table` from a header and rows, the shape most callers have.

Cells are strings or (Markdown, LaTeX) pairs; HTML and plain text show the Markdown one, HTML
escaped. csv is the standard library's writer (one row per ``csv_rows`` entry, every field named).
"""
from __future__ import annotations

import csv
import html
import io
import re
from typing import Any, Sequence

from hut.results.render.table import Table, tex_escape


def simple(header: Sequence[Any], rows: Sequence[Sequence[Any]], align: str = "", key: str = "",
           title: str = "") -> Table:
    """A one-block table: ``align`` one of l/r per column (default l then r ...)."""
    return Table(key, title, [], list(header), [(None, [list(r) for r in rows])], [], [], [], align=align,
                 md_align=align)


def inline_html(text: str) -> str:
    """Markdown's inline ``code`` and **bold** as HTML (the text escaped first)."""
    s = html.escape(text)
    s = re.sub(r"`([^`]*)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


def _plain(c: Any) -> str:
    return c[0] if isinstance(c, tuple) else str(c)


def _md(c: Any) -> str:
    return _plain(c).replace("|", "\\|")


def _tex(c: Any) -> str:
    return c[1] if isinstance(c, tuple) else tex_escape(str(c))


def _align(t: Table) -> str:
    return t.md_align or t.align or ("l" + "r" * (len(t.header) - 1))


def _md_grid(t: Table) -> list[str]:
    ncol = len(t.header)
    out = ["| " + " | ".join(_md(h) for h in t.header) + " |",
           "|" + "|".join(":---" if a == "l" else "---:" for a in _align(t)) + "|"]
    for title, rows in t.blocks:
        if title is not None:
            out.append("| " + " | ".join([f"*{title}*"] + [""] * (ncol - 1)) + " |")
        for row in rows:
            out.append("| " + " | ".join(_md(c) for c in row) + " |")
    return out


def _tex_grid(t: Table) -> list[str]:
    ncol = len(t.header)
    spec = t.align or ("l" + "r" * (ncol - 1))
    out = [r"\begin{tabular}{" + spec + "}", r"\toprule", " & ".join(_tex(h) for h in t.header) + r" \\", r"\midrule"]
    first = True
    for title, rows in t.blocks:
        if title is not None:
            if not first:
                out.append(r"\midrule")
            out.append(r"\multicolumn{" + str(ncol) + "}{l}{\\emph{" + tex_escape(title) + r"}} \\")
        for row in rows:
            out.append(" & ".join(_tex(c) for c in row) + r" \\")
        first = False
    return out + [r"\bottomrule", r"\end{tabular}"]


def _html_grid(t: Table) -> list[str]:
    al = _align(t)
    ncol = len(t.header)

    def td(c: Any, i: int, tag: str = "td") -> str:
        cls = ' class="num"' if i < len(al) and al[i] == "r" else ""
        return f"<{tag}{cls}>{inline_html(_plain(c))}</{tag}>"

    out = ["<table>", "<thead><tr>" + "".join(td(h, i, "th") for i, h in enumerate(t.header)) + "</tr></thead>",
           "<tbody>"]
    for title, rows in t.blocks:
        if title is not None:
            out.append(f'<tr class="block"><th colspan="{ncol}">{html.escape(title)}</th></tr>')
        out += ["<tr>" + "".join(td(c, i) for i, c in enumerate(row)) + "</tr>" for row in rows]
    return out + ["</tbody>", "</table>"]


def _text_grid(t: Table) -> list[str]:
    """Columns padded to their widest cell (left or right by ``align``), two spaces apart."""
    rows = [[_plain(h) for h in t.header]] + [[_plain(c) for c in r] for _, rs in t.blocks for r in rs]
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(t.header))]
    al = _align(t)
    return ["  ".join(c.rjust(w) if al[i] == "r" else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


GRIDS = {"md": _md_grid, "tex": _tex_grid, "html": _html_grid, "text": _text_grid}


def grid(t: Table, fmt: str) -> list[str]:
    """The header and rows of ``t`` in format ``fmt`` (md, tex, html or text), one line per list item."""
    if fmt not in GRIDS:
        raise ValueError(f"unknown table format {fmt!r} (known: {', '.join(GRIDS)})")
    return GRIDS[fmt](t)


def to_md(t: Table, provenance: str) -> str:
    out = [f"# {t.title}", ""]
    for para in t.caption:
        out += [para, ""]
    if t.parts:
        for para, sub in t.parts:
            out += [para, ""] if para else []
            out += _md_grid(sub) + [""]
    else:
        out += _md_grid(t) + [""]
    if t.notes:
        out.append("Notes:")
        out.append("")
        out += [f"- {n}" for n in t.notes]
        out.append("")
    out.append(provenance)
    return "\n".join(out) + "\n"


def _caption_title(title: str) -> str:
    """LaTeX numbers the table itself: drop our "Table N: " prefix from the caption."""
    return re.sub(r"^Table \d+( \(demo\))?: ", lambda m: "Demo: " if m.group(1) else "", title)


def to_tex(t: Table, provenance: str) -> str:
    out = [f"% {tex_escape(provenance)}", "% Requires \\usepackage{booktabs}.", r"\begin{table}[t]", r"\centering",
           r"\small", r"\caption{" + tex_escape(_caption_title(t.title)) + ". " + " ".join(tex_escape(p) for p in t.caption) + "}",
           r"\label{tab:" + t.key + "}"]
    if t.parts:
        for i, (_, sub) in enumerate(t.parts):
            out += ([r"\par\medskip"] if i else []) + [r"\resizebox{\linewidth}{!}{%"] + _tex_grid(sub) + ["}"]
    else:
        out += _tex_grid(t)
    if t.notes:
        out.append(r"\par\smallskip\footnotesize")
        out += [tex_escape(n) + r"\par" for n in t.notes]
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def to_csv(t: Table) -> str:
    return csv_text(t.csv_fields, t.csv_rows)


def csv_text(fields: Sequence[str], rows: Sequence[dict]) -> str:
    """CSV with a header of ``fields``; a row's missing field is empty, an unknown one an error."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", extrasaction="raise")
    w.writeheader()
    for row in rows:
        w.writerow({k: row.get(k, "") for k in fields})
    return buf.getvalue()


def to_html(t: Table) -> str:
    """A ``<figure>``: caption (title and caption paragraphs), the grid(s), the notes in a list."""
    out = [f'<figure class="table" id="table-{html.escape(t.key)}">',
           f"<figcaption><strong>{html.escape(t.title)}</strong> " + " ".join(html.escape(p) for p in t.caption)
           + "</figcaption>"]
    for para, sub in (t.parts or [("", t)]):
        out += ([f"<p>{html.escape(para)}</p>"] if para else []) + _html_grid(sub)
    if t.notes:
        out += ["<details><summary>Notes</summary><ul>"] + [f"<li>{html.escape(n)}</li>" for n in t.notes] \
            + ["</ul></details>"]
    return "\n".join(out + ["</figure>"]) + "\n"


def to_text(t: Table) -> str:
    return "\n".join(_text_grid(t)) + "\n"


def markdown(header: Sequence[Any], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A Markdown grid from a header and rows (no title, caption or notes)."""
    return "\n".join(_md_grid(simple(header, rows, align))) + "\n"
