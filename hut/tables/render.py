"""Tables as data, rendered three ways: Markdown, LaTeX (booktabs) and CSV.

A :class:`Table` holds a title, caption paragraphs, a header, blocks of rows (each block with an
optional title: ours, then the paper's) and notes. A cell is a string, or a (Markdown, LaTeX) pair
where the two differ. Output is deterministic: the same table renders to the same bytes.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
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


def write_bytes(path: Path, data: bytes) -> None:
    """Write only if the bytes differ (a rebuild leaves unchanged files untouched), atomically."""
    from hut.files.atomic import write_atomic

    if path.exists() and path.read_bytes() == data:
        return
    write_atomic(path, data)


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


def _md(c: Any) -> str:
    s = c[0] if isinstance(c, tuple) else str(c)
    return s.replace("|", "\\|")


def _tex(c: Any) -> str:
    return c[1] if isinstance(c, tuple) else tex_escape(str(c))


def _md_grid(t: Table) -> list[str]:
    ncol = len(t.header)
    al = t.md_align or ("l" + "r" * (ncol - 1))
    out = ["| " + " | ".join(_md(h) for h in t.header) + " |",
           "|" + "|".join(":---" if a == "l" else "---:" for a in al) + "|"]
    for title, rows in t.blocks:
        if title is not None:
            out.append("| " + " | ".join([f"*{title}*"] + [""] * (ncol - 1)) + " |")
        for row in rows:
            out.append("| " + " | ".join(_md(c) for c in row) + " |")
    return out


def render_md(t: Table, provenance: str) -> str:
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


def render_tex(t: Table, provenance: str) -> str:
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


def render_csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=t.csv_fields, lineterminator="\n", extrasaction="raise")
    w.writeheader()
    for row in t.csv_rows:
        w.writerow({k: row.get(k, "") for k in t.csv_fields})
    return buf.getvalue()
