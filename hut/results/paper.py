"""The paper's published rows in our tables, and ours − paper.

Every table shows, under our rows, the paper's rows as it prints them (mean ± std; ``*`` where the
paper marks a row as copied from earlier work) from the published-figures file
(:mod:`hut.config.paper`), and a row of ours − paper for each of our rows that reproduces a paper row on the
paper's model. Which of our rows reproduces which paper row is recorded in its config
(``paper_row``: method and size as printed). The paper's printed anomalies stay visible as notes.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from hut.config.paper import PAPER_MODEL  # noqa: F401  (tables read it as paper_figures.PAPER_MODEL)
from hut.results.labels import method_label
from hut.results.render.table import tex_escape

# What the paper prints that a reader should know when comparing (kept as printed, never "fixed").
ANOMALIES = {
    ("table1", "hadapter", "0.8M"):
        "As printed, the paper's Adpt^H 0.8M row has RTE 91.5 and STS-B 72.9, swapped relative to the source it "
        "cites (LoRA paper, Table 2: RTE 72.9, STS-B 91.5); the average (84.9) is the same either way.",
    ("table3", "hut", "0.45M"):
        "The paper prints 0.45M trainable parameters for HUT on GPT-2 medium; r = 4 on the q and v slices "
        "counts 491,520 (hut.fidelity).",
}
CITATION = "Zhang et al. (2024), arXiv:2409.13501"


def millions(text: Any) -> float | None:
    try:
        return float(str(text).rstrip("M"))
    except ValueError:
        return None


def match(paper_rows: Sequence[Mapping[str, Any]], paper_row: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The published row (method, printed size) that ``paper_row`` names, if any."""
    if not paper_row:
        return None
    for r in paper_rows:
        if r.get("method") == paper_row.get("method") and millions(r.get("params")) == millions(paper_row.get("params")):
            return r
    return None


def printed(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None:
        return "n/a"
    return f"{float(mean):.{digits}f}" + (f" ± {float(std):.{digits}f}" if std is not None else "")


def row_label(label: str, published_elsewhere: bool) -> tuple[str, str]:
    """(Markdown, LaTeX) label of a paper row: "<label> (paper)" with * if the paper copied it."""
    star = "*" if published_elsewhere else ""
    return f"{label}{star} (paper)", f"{tex_escape(label)}{star} (paper)"


def paper_label(r: Mapping[str, Any]) -> str:
    """How the paper names a row: its method's label and printed size where the paper prints two sizes."""
    base = r.get("label") or method_label(str(r["method"]))
    return f"{base} {r['params']}" if r["method"] in ("padapter", "hadapter", "ladapter") else base


def anomaly_notes(table: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [ANOMALIES[(table, r["method"], str(r.get("params")))] for r in rows
            if (table, r["method"], str(r.get("params"))) in ANOMALIES]


def block_title(table: str) -> str:
    return f"Paper: {CITATION}, {table.replace('table', 'Table ')} (as printed; * = copied by the paper from earlier work)"


def differences_title(table: str) -> str:
    return f"Ours − paper (our rows on the paper's model, {PAPER_MODEL[table]})"
