"""A table as data: title, caption, header, blocks of rows, notes and its CSV rows; number formats.

A :class:`Table` holds a title, caption paragraphs, a header, blocks of rows (each block with an
optional title: ours, then the paper's) and notes. A cell is a string, or a (Markdown, LaTeX) pair
where the two differ (HTML and plain text show the Markdown one). :mod:`hut.results.render.formats`
writes it as Markdown, LaTeX (booktabs), CSV, HTML or aligned plain text; the output is
deterministic: the same table renders to the same bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

NA = "–"


def num(x: float | None, digits: int = 6) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def signed(x: float | None, digits: int) -> str:
    """+1.2 / −0.3 (a real minus sign) / 0.0; – for no value."""
    if x is None:
        return NA
    s = f"{abs(x):.{digits}f}"
    if float(s) == 0:
        return s
    return ("+" if x > 0 else "−") + s


def fmt_params(values: Sequence[int]) -> str:
    """Parameter counts in millions, 3 significant digits; a range when the runs disagree."""
    vals = sorted(set(int(v) for v in values))
    if not vals:
        return NA

    def one(n: int) -> str:
        return f"{n / 1e6:.3g}M"

    return one(vals[0]) if len(vals) == 1 else f"{one(vals[0])}–{one(vals[-1])}"


@dataclass
class Table:
    key: str
    title: str
    caption: list[str]  # paragraphs
    header: list[Any]
    blocks: list[tuple[str | None, list[list[Any]]]]  # (block title, rows)
    notes: list[str]
    csv_fields: list[str]
    csv_rows: list[dict[str, str]]
    align: str = ""  # LaTeX column spec; default l + r...
    md_align: str = ""  # one of l/r per column; default l + r...
    # A composite table (Table 2): (paragraph, sub-table) parts rendered one after the other under
    # one title, caption and notes; then this table's own header and blocks are unused.
    parts: list[tuple[str, "Table"]] = field(default_factory=list)


_TEX_MAP = [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_"),
            ("{", r"\{"), ("}", r"\}"), ("$", r"\$"), ("~", r"\textasciitilde{}"), ("^", r"\^{}"),
            ("<", r"\textless{}"), (">", r"\textgreater{}")]
_TEX_SYMBOLS = [("—", "---"), ("±", r"$\pm$"), ("†", r"$^{\dagger}$"), ("−", r"$-$"), ("–", "--"),
                ("×", r"$\times$"), ("≥", r"$\geq$"), ("·", r"$\cdot$"), ("→", r"$\to$"), ("←", r"$\leftarrow$"),
                ("Δ", r"$\Delta$"), ("“", "``"), ("”", "''"), ("’", "'"), ("…", r"\dots{}"), ("≈", r"$\approx$"),
                ("⊙", r"$\odot$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$")]


def tex_escape(s: str) -> str:
    s = re.sub(r"\^(\w+)", lambda m: "\x00" + m.group(1) + "\x01", s)  # Adpt^H -> Adpt$^{\mathrm{H}}$
    out = []
    for ch in s:
        for a, b in _TEX_MAP:
            if ch == a:
                out.append(b)
                break
        else:
            out.append(ch)
    s = "".join(out)
    for a, b in _TEX_SYMBOLS:
        s = s.replace(a, b)
    s = re.sub("\x00([^\x01]*)\x01", lambda m: r"$^{\mathrm{" + m.group(1) + "}}$", s)
    # `code` spans -> \texttt{}
    s = re.sub(r"`([^`]*)`", lambda m: r"\texttt{" + m.group(1) + "}", s)
    # **bold** / *emph*
    s = re.sub(r"\*\*([^*]+)\*\*", r"\\textbf{\1}", s)
    return s
