"""A verdict per table cell against the paper: reproduced, differs, inconclusive, not comparable.

For a cell of ours (its per-seed values, in the table's printed units) and the paper's printed figure:

* **not comparable**: another model, data subset or settings than the paper's cell (e.g. every demo
  cell: MiniLM on subsets, not RoBERTa-large), said with the reason; no test is run;
* **reproduced**: the two one-sided tests (TOST) put ours within ± the metric's tolerance of the
  paper (Holm-adjusted p < alpha over the table's cells);
* **differs** (above / below): the difference test (Welch from the paper's printed ± and seed count,
  or one-sample t where the paper prints no ±) rejects equality (Holm-adjusted p < alpha);
* **inconclusive**: neither; with the number of seeds that would decide it if the observed
  difference and std held (:func:`hut.results.judge.stats.seeds_needed`); one seed has no spread at all.

Ours is compared through the statistic the paper used for that row (its ``reported`` entry in
``configs/paper/table6.yaml`` / ``table7.yaml``): the mean for the paper's own rows, the median for
rows it copied from papers that report medians (LoRA, FourierFT, ...). The t-tests are about means;
for a median row the test is run with our median in place of our mean (a stated approximation: a
median of 5 and its spread are all the paper gives).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from hut.config import CONFIG_DIR
from hut.config.paper import settings_file
from hut.results.judge import stats
from hut.results.paper import millions

# Tolerance of "reproduced", per metric, in the tables' printed units (GLUE and BLEU/METEOR/ROUGE-L
# x 100). Why these:
# * GLUE, 1.0 point: the paper's own ± on its HUT row are 0.1-1.2 points and its claims rest on gaps
#   of 0.1-0.8 points on the average; one point is the smallest gap GLUE tables are read as
#   meaningful at, and 5 seeds can establish it where the seed std is <= ~1 (seeds_needed says when
#   not). It is also the rounding scale of the LoRA paper's medians' spread (0.3-1.9).
# * BLEU, METEOR, ROUGE-L, 1.0 point: the E2E ± printed are 0.1-0.6 points; one BLEU point is the
#   customary smallest meaningful difference in NLG comparisons.
# * NIST, 0.1: NIST (~8.8) moves about a tenth as much as BLEU x 100 (~70) between the rows of
#   Table 3 (8.41-8.86 against 66.3-70.4); 0.1 NIST is one BLEU point's share. Printed ± 0.02-0.07.
# * CIDEr, 0.05: Table 3's CIDEr spans 2.40-2.54 (printed ± 0.01-0.02), BLEU 66-70; 0.05 is about
#   2% of the value, as one BLEU point is 1.4% of 70.
TOLERANCES = {"score": 1.0, "BLEU": 1.0, "METEOR": 1.0, "ROUGE_L": 1.0, "NIST": 0.1, "CIDEr": 0.05}

MARKERS = {"reproduced": "≈", "differs above": "↑", "differs below": "↓", "inconclusive": "?",
           "not comparable": "n.c.", "no runs": ""}


def tolerance(metric: str) -> float:
    if metric not in TOLERANCES:
        raise KeyError(f"no tolerance for metric {metric!r}: add it to hut.results.judge.verdicts.TOLERANCES with why")
    return TOLERANCES[metric]


@dataclass(frozen=True)
class CellCase:
    """What one verdict needs: our per-seed values and the paper's figure (both in printed units)."""
    label: str  # "HUT · SST-2"
    values: tuple[float, ...]
    ref: stats.Reference | None
    tol: float
    statistic: str = "mean"  # the paper row's statistic: mean | median
    comparable: bool = True
    reason: str = ""  # why not comparable


@dataclass(frozen=True)
class Verdict:
    case: CellCase
    kind: str  # reproduced | differs above | differs below | inconclusive | not comparable | no runs
    ours: float | None  # our statistic
    diff: float | None  # ours - paper
    p_equivalence: float | None  # Holm-adjusted TOST p
    p_difference: float | None  # Holm-adjusted difference p
    seeds_needed: int | None = None
    note: str = ""

    @property
    def marker(self) -> str:
        return MARKERS[self.kind]

    def text(self, digits: int = 1) -> str:
        """One line for the list below a table."""
        c = self.case
        s = f"{c.label}: "
        if self.ours is not None:
            s += f"ours {c.statistic} {self.ours:.{digits}f} (n={len(c.values)})"
        else:
            s += "no finished seeds"
        if c.ref is not None:
            s += f" vs paper {c.ref.value:.{digits}f}" + (f" ± {c.ref.std:.{digits}f}" if c.ref.std is not None else "")
            s += f" ({c.statistic} of {c.ref.n})"
        if self.diff is not None:
            s += f", Δ {self.diff:+.{digits}f}"
        s += f" → **{self.kind}**"
        if self.kind == "not comparable":
            s += f" ({c.reason})"
        elif self.kind in ("reproduced", "differs above", "differs below"):
            p = self.p_equivalence if self.kind == "reproduced" else self.p_difference
            s += f" (±{c.tol:g}, Holm p = {p:.3g})"
        elif self.kind == "inconclusive":
            s += f" ({self.note})" if self.note else ""
        return s


def judge(cases: Sequence[CellCase], alpha: float = stats.ALPHA) -> list[Verdict]:
    """Verdicts of one table's cells; Holm's correction runs over the table's tested cells."""
    tested = [c.comparable and c.ref is not None and len(c.values) >= 2 for c in cases]
    sums = [stats.summary(c.values) for c in cases]
    p_eq = [stats.equivalence_test(s, c.ref, c.tol, c.statistic) if t else None for c, s, t in zip(cases, sums, tested)]
    p_df = [stats.difference_test(s, c.ref, c.statistic) if t else None for c, s, t in zip(cases, sums, tested)]
    p_eq, p_df = stats.holm(p_eq), stats.holm(p_df)
    out = []
    for c, s, t, pe, pd in zip(cases, sums, tested, p_eq, p_df):
        ours = s.centre(c.statistic)
        diff = ours - c.ref.value if ours is not None and c.ref is not None else None
        if not c.comparable:
            out.append(Verdict(c, "not comparable", ours, diff, None, None))
        elif s.n == 0 or c.ref is None:
            out.append(Verdict(c, "no runs", ours, diff, None, None))
        elif not t:
            out.append(Verdict(c, "inconclusive", ours, diff, None, None, None, "1 seed: no spread to test; run more"))
        elif pe is not None and pe < alpha:
            out.append(Verdict(c, "reproduced", ours, diff, pe, pd))
        elif pd is not None and pd < alpha:
            out.append(Verdict(c, "differs above" if diff > 0 else "differs below", ours, diff, pe, pd))
        else:
            n = stats.seeds_needed(diff, s.std, c.tol, c.ref, alpha)
            need = ("no estimate" if n is None
                    else f"> {stats.MAX_SEEDS} seeds (Δ at the tolerance's edge, or the paper's ± alone fills the "
                         f"margin)" if n > stats.MAX_SEEDS
                    else f"~{n} seeds would decide it at the observed std {s.std:.2f}")
            out.append(Verdict(c, "inconclusive", ours, diff, pe, pd, n, need))
    return out


def table_notes(verdicts: Sequence[Verdict]) -> list[str]:
    """The lines under a table: how many cells got which verdict, then each cell's verdict (no-run cells left out)."""
    n = {k: c for k, c in counts(verdicts).items() if k != "no runs"}
    if not n:
        return []
    head = ("Verdicts against the paper (markers beside ours − paper: ≈ reproduced, ↑/↓ differs, ? inconclusive): "
            + ", ".join(f"{c} {k}" for k, c in sorted(n.items())) + f"; α = {stats.ALPHA}, Holm over the table "
            "(`report.md` has the claims, seeds and selection).")
    return [head] + [f"Verdict: {v.text(2 if v.case.tol < 1 else 1)}" for v in verdicts if v.kind != "no runs"]


def counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in verdicts:
        out[v.kind] = out.get(v.kind, 0) + 1
    return out


# --------------------------------------------------------------------------------------------------
# What the paper reports per row: its statistic and seed count, from the row's source in configs/paper/
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reported:
    statistic: str  # mean | median | single (one run)
    seeds: int
    source: str


UNKNOWN = Reported("mean", 1, "not stated in the row's source (configs/paper): treated as one exact figure")


@functools.lru_cache(maxsize=None)
def _row_settings(table: str) -> dict[tuple[str, float | None], str]:
    """(method, printed size in M) -> its settings row (``table6/lora``), from ``configs/row/<table>/``."""
    out = {}
    for p in sorted((Path(CONFIG_DIR) / "row" / table).glob("*.yaml")):
        pr = (yaml.safe_load(p.read_text()) or {}).get("paper_row") or {}
        if pr.get("method") and pr.get("settings"):
            out[(str(pr["method"]), millions(pr.get("params")))] = str(pr["settings"])
    return out


def reported(table: str, paper_row: Mapping[str, Any]) -> Reported:
    """The statistic and seed count the paper's ``paper_row`` (a published row) was reported with."""
    settings = _row_settings(table).get((str(paper_row.get("method")), millions(paper_row.get("params"))))
    if not settings:
        return UNKNOWN
    name, _, row = settings.partition("/")
    rep = ((settings_file(name).get("rows") or {}).get(row) or {}).get("reported")
    if not rep:
        return UNKNOWN
    return Reported(str(rep["statistic"]), int(rep["seeds"]), str(rep["source"]))
