"""Drawing Figure 4: context words shaded by a relevance in [0, 1], as a matplotlib figure (PNG, PDF)
and as HTML. The rows come from :func:`hut.results.figures.figure4.panels_of`: per question its ``question``,
``context``, ``gold`` texts and ``gold_words``, and per method a panel with ``label``, ``answer``,
``em``, ``pred_words`` and ``views`` (view name -> relevance of every context word, NaN outside the
model's window). Words are laid out in a monospace font, so a word's box is its characters' width.
"""
from __future__ import annotations

import html
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image  # matplotlib's own dependency

from hut.results.files import write_bytes



def words_of(context: str) -> list[tuple[int, int]]:
    """(start, end) character span of each whitespace-separated word of a context."""
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", context)]


def _shown_words(row: dict, max_words: int) -> tuple[int, int]:
    """The [first, last) context words shown: all, or ``max_words`` centred on the answers."""
    n = len(words_of(row["context"]))
    if n <= max_words:
        return 0, n
    marks = sorted(row["gold_words"] | set().union(*(p["pred_words"] for p in row["panels"])))
    centre = (marks[0] + marks[-1]) // 2 if marks else 0
    first = max(0, min(n - max_words, centre - max_words // 2))
    return first, first + max_words


def _lines(words: list[str], width: int) -> list[list[tuple[int, int]]]:
    """Greedy wrap: per line, (word index, column) of each word; ``width`` characters a line."""
    lines, cur, col = [], [], 0
    for i, w in enumerate(words):
        if cur and col + len(w) > width:
            lines.append(cur)
            cur, col = [], 0
        cur.append((i, col))
        col += len(w) + 1
    return lines + ([cur] if cur else [])


def _fit(text: str, width: int) -> str:
    """One line of at most ``width`` characters (the rest as …): a panel's header stays in its panel."""
    return text if len(text) <= width else text[: width - 1] + "…"


def draw(rows: list[dict], view: str, title: str, width: int = 88, max_words: int = 110):
    """A matplotlib Figure: one row per question, one column per method, words shaded by ``view``."""
    # matplotlib is imported only when a figure is drawn: it is slow to import and the tables need none of it.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    cmap = matplotlib.colormaps["Reds"]
    layouts = []
    for row in rows:
        a, b = _shown_words(row, max_words)
        spans = words_of(row["context"])[a:b]
        words = [("… " if a and i == 0 else "") + row["context"][s:e] + (" …" if b < len(words_of(row["context"])) and i == len(spans) - 1 else "")
                 for i, (s, e) in enumerate(spans)]
        layouts.append((a, words, _lines(words, width)))
    heights = [len(lines) + 4.5 for _, _, lines in layouts]
    ncol = len(rows[0]["panels"]) if rows else 1
    fig = Figure(figsize=(7.2 * ncol, 0.16 * sum(heights) + 0.9), dpi=110)
    FigureCanvasAgg(fig)
    fig.suptitle(title + "\nunderlined: gold answer; boxed: predicted answer; grey: outside the window of the "
                 "predicted answer", fontsize=8)
    grid = fig.add_gridspec(max(len(rows), 1), ncol, height_ratios=heights or [1], hspace=0.35, wspace=0.04,
                            left=0.01, right=0.99, top=1 - 0.6 / (0.16 * sum(heights) + 0.8), bottom=0.01)
    for r, (row, (a, words, lines)) in enumerate(zip(rows, layouts)):
        for c, panel in enumerate(row["panels"]):
            ax = fig.add_subplot(grid[r, c])
            ax.set_xlim(0, width)
            ax.set_ylim(len(lines) + 4.5, 0)
            ax.axis("off")
            bbox = ax.get_window_extent()
            size = bbox.width / width / 0.602 * 72 / fig.dpi  # DejaVu Sans Mono: advance 0.602 em
            rel = panel["views"][view]
            head = _fit(f"{panel['label']}: {'right' if panel['em'] else 'wrong'}, answers {panel['answer']!r}", width)
            ax.text(0, 1.0, _fit(f"Q: {row['question']}", width), fontsize=size, family="monospace", va="bottom")
            ax.text(0, 2.2, _fit(f"gold: {' | '.join(dict.fromkeys(row['gold']))}", width), fontsize=size, family="monospace",
                    va="bottom", color="darkgreen")
            ax.text(0, 3.4, head, fontsize=size, family="monospace", va="bottom",
                    color="tab:blue", weight="bold")
            for y, line in enumerate(lines, start=4):
                for i, col in line:
                    w, wi = words[i], a + i
                    v = rel[wi]
                    if not np.isnan(v):
                        ax.add_patch(Rectangle((col, y), len(w), 1.0, color=cmap(0.7 * float(v)), lw=0))  # text stays legible
                    ax.text(col, y + 0.8, w, fontsize=size, family="monospace",
                            color="0.55" if np.isnan(v) else "black")
                    if wi in row["gold_words"]:
                        ax.plot([col, col + len(w)], [y + 1.0, y + 1.0], color="darkgreen", lw=1.4)
                    if wi in panel["pred_words"]:
                        ax.add_patch(Rectangle((col, y), len(w), 1.0, fill=False, ec="tab:blue", lw=0.9))
    return fig


def to_html(rows: list[dict], runs_note: str, views: dict[str, str]) -> str:
    parts = ["<!doctype html><meta charset=utf-8><title>Figure 4</title>",
             "<style>body{font-family:sans-serif;max-width:1400px}td{vertical-align:top;width:50%;padding:6px}"
             ".g{border-bottom:2px solid darkgreen}.p{outline:1px solid #1f77b4}</style>",
             f"<h2>Figure 4</h2><p>{html.escape(runs_note)}</p>"]
    for view, what in views.items():
        parts.append(f"<h3>{html.escape(view)}: {html.escape(what)}</h3><table>")
        for row in rows:
            parts.append(f"<tr><td colspan=2><b>Q:</b> {html.escape(row['question'])} &nbsp; <b>gold:</b> "
                         f"{html.escape(' | '.join(dict.fromkeys(row['gold'])))}</td></tr><tr>")
            for p in row["panels"]:
                words = []
                for i, (s, e) in enumerate(words_of(row["context"])):
                    v = p["views"][view][i]
                    style = "" if np.isnan(v) else f" style='background:rgba(220,30,30,{0.85 * v:.3f})'"
                    cls = " ".join(c for c, on in (("g", i in row["gold_words"]), ("p", i in p["pred_words"])) if on)
                    words.append(f"<span class='{cls}'{style}>{html.escape(row['context'][s:e])}</span>")
                parts.append(f"<td><b>{html.escape(p['label'])}</b> ({'right' if p['em'] else 'wrong'}): "
                             f"{html.escape(repr(p['answer']))}<br>{' '.join(words)}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    return "\n".join(parts) + "\n"


def save(fig, stem: Path, palette: bool = False) -> list[Path]:
    """``stem``.png and ``stem``.pdf, without time stamps (a rebuild gives the same bytes). ``palette``:
    the PNG with 256 colours (Pillow's median cut), about a third of the bytes of the full-colour one for
    the shaded-word figures, whose few hues do not need more; the PDF stays vector."""
    out = []
    for ext, meta in (("png", {"Software": None}),
                      ("pdf", {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, metadata=meta)
        data = _palette_png(buf.getvalue()) if palette and ext == "png" else buf.getvalue()
        write_bytes(stem.with_suffix(f".{ext}"), data)
        out.append(stem.with_suffix(f".{ext}"))
    return out


def _palette_png(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
