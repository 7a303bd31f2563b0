"""The static results page, ``<out_dir>/index.html``: one file that opens from disk, with no server
and no network.

Its sections are registered in :data:`.base.SECTIONS` (:mod:`.sections`, :mod:`.runs`); each gives
HTML and the specs of its plots, which ``page.js`` draws as inline SVG from the data embedded in
the page. Why drawn by hand: the page must open offline from a fresh clone and every tracked file
stays under 500 KiB, which rules out inlining Plotly (~3.5 MB) or Vega; the project's Python plotting
library (matplotlib) draws static images, and one SVG file per plot, axis choice and filter would
outgrow the page (~18 KB each). ``page.js`` draws three kinds of plot (strip, scatter, lines) with
linear and log axes in ~250 lines, and redraws them when a filter or the Pareto x axis changes.

Adding a section (e.g. a learning-rate search's curves): a function ``f(p: PageInputs) -> Section |
None`` decorated with ``@section("key", "Title", order=N)`` in a module imported below; plots of the three
kinds need no JavaScript.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Mapping, Sequence

from hut.results.files import write_bytes
from hut.results.page import runs as _runs_section  # noqa: F401  (registers its section)
from hut.results.page import sections as _sections  # noqa: F401  (registers the sections)
from hut.results.page.base import PageInputs, Section, ordered
from hut.results.render.doc import Doc
from hut.results.report import evaluate_claims
from hut.results.tables.base import Built, Inputs

ASSETS = Path(__file__).resolve().parent
PAGE = "index.html"


def sections(p: PageInputs) -> list[tuple[str, Section]]:
    out = []
    for spec in ordered():
        s = spec.build(p)
        if s is not None:
            out.append((spec.title, s))
    return out


def render(p: PageInputs, title: str, provenance: str) -> str:
    parts = sections(p)
    plots = {pid: spec for _, s in parts for pid, spec in s.plots.items()}
    data = {"plots": plots, **{s.key: s.data for _, s in parts if s.data}}
    nav = " · ".join(f'<a href="#{html.escape(s.key)}">{html.escape(t)}</a>' for t, s in parts)
    body = "\n".join(f'<section id="{html.escape(s.key)}"><h2>{html.escape(t)}</h2>\n{s.html}\n</section>'
                     for t, s in parts)
    methods = sorted({spec_row.get("method") for spec in plots.values()
                      for spec_row in spec.get("rows", []) + spec.get("points", []) + spec.get("series", [])
                      if spec_row.get("method")})
    boxes = "".join(f'<label><input type="checkbox" class="method-filter" value="{html.escape(m)}" checked> '
                    f"{html.escape(m)}</label> " for m in methods)
    payload = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f"<style>{(ASSETS / 'page.css').read_text(encoding='utf-8')}</style></head><body>\n"
            f"<header><h1>{html.escape(title)}</h1><p class=\"provenance\">{html.escape(provenance)}</p>"
            f"<nav>{nav}</nav><p class=\"filters\">Methods shown: {boxes}"
            '<button id="download-json">download plotted data (JSON)</button> '
            '<button id="download-csv">download plotted data (CSV)</button></p></header>\n'
            f"<main>{body}</main>\n"
            f'<script id="page-data" type="application/json">{payload}</script>\n'
            f"<script>{(ASSETS / 'page.js').read_text(encoding='utf-8')}</script>\n</body></html>\n")


def write_page(inp: Inputs, built: Mapping[str, Built], out_dir: Path, provenance: str, report: Doc | None,
               read: Sequence[str], shipped: bool) -> Path:
    """``<out_dir>/index.html`` from what the aggregator built; its path."""
    out = Path(out_dir)
    results, elsewhere = evaluate_claims(inp, built)
    figures = sorted(f.relative_to(out).as_posix() for f in (out / "figures").glob("*.png")) \
        if (out / "figures").is_dir() else []
    p = PageInputs(inp, built, results, elsewhere, report, read, shipped, figures)
    title = "HUT reproduction results: " + ", ".join(sorted({e for k, e in inp.experiments.items() if k in built}))
    path = out / PAGE
    write_bytes(path, render(p, title, provenance).encode("utf-8"))
    return path
