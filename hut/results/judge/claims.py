"""The paper's claims as data (``configs/paper/claims.yaml``), each tested on the records present.

A claim has the paper's sentence (or, where the suite has no sentence to quote, what the table shows,
marked ``quoted: false``), the table whose experiment's records it reads, the cells it compares
(selectors over the records: ``method``, ``targets``, ``r``) and its test:

* ``paired_greater`` — A > B, paired by seed (per task/metric, and on the average over the tasks
  both have for a seed when ``average: true``): a bootstrap interval of the mean paired difference
  (:func:`hut.results.judge.stats.paired_interval`). **holds**: the interval lies above 0; **does not
  hold**: below 0; **inconclusive**: it contains 0. Overall: the average's verdict where there is
  one, else holds if every part holds, does not hold if any part does not, else inconclusive;
* ``best_of`` — A is best on at least ``k`` of the ``of`` columns (``k: all``: every column present),
  against every other row (``others``) of the same experiment: best on a column where A's mean exceeds
  each other row's with Welch's p < alpha (``scipy.stats.ttest_ind``), not best where another row's
  exceeds A's so; holds with ``k`` columns best, does not hold when too few can still be (a column
  without records could be);
* ``paired_equivalent`` — A equals B within the metric's tolerance, paired by seed and by the keys in
  ``match`` (e.g. rank r): holds when the interval lies inside ± tolerance, does not hold when it
  lies outside it, else inconclusive;
* ``fewest_flops`` — A's measured training FLOPs above the frozen model are the fewest of Table 2's
  paper rows (a count, no statistics).

Every claim ends **holds**, **does not hold**, **inconclusive** or **no records yet**.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from scipy import stats as scipy_stats

from hut.results.judge import stats
from hut.results.judge.verdicts import tolerance

CLAIMS_FILE = Path(__file__).resolve().parents[3] / "configs" / "paper" / "claims.yaml"
TESTS = ("paired_greater", "best_of", "paired_equivalent", "fewest_flops")
# Table 3's columns are metrics of one task; the other tables' columns are tasks (metric `score`).
E2E_SCALE = {"BLEU": 100.0, "NIST": 1.0, "METEOR": 100.0, "ROUGE_L": 100.0, "CIDEr": 1.0}


@dataclass
class ClaimResult:
    claim: Mapping[str, Any]
    verdict: str  # holds | does not hold | inconclusive | no records yet
    parts: list[str] = field(default_factory=list)  # one line per column / pair group
    experiment: str = ""
    tuned: "ClaimResult | None" = None  # the same claim on the tuned runs (hut.results.judge.protocols), if searched


def load_claims(path: str | Path = CLAIMS_FILE) -> list[dict]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    claims = list(data.get("claims") or [])
    ids = set()
    for c in claims:
        for key in ("id", "table", "test", "sentence"):
            if key not in c:
                raise ValueError(f"{path}: claim {c.get('id', '?')!r} lacks {key!r}")
        if c["test"] not in TESTS:
            raise ValueError(f"{path}: claim {c['id']!r}: unknown test {c['test']!r} (known: {', '.join(TESTS)})")
        if c["id"] in ids:
            raise ValueError(f"{path}: duplicate claim id {c['id']!r}")
        ids.add(c["id"])
    return claims


def _matches(run, sel: Mapping[str, Any] | None) -> bool:
    if not sel:
        return True
    for k, v in sel.items():
        if k == "method" and run.method != v:
            return False
        if k == "targets" and tuple(run.targets) != tuple(v):
            return False
        if k == "r" and run.r != int(v):
            return False
        if k == "not_method" and run.method in (v if isinstance(v, list) else [v]):
            return False
    return True


def _values(runs, experiment: str, sel, table: str) -> dict[str, dict[tuple, float]]:
    """column -> (pair key..., seed) -> value in printed units, for the runs ``sel`` picks."""
    out: dict[str, dict[tuple, float]] = {}
    for r in runs:
        if r.experiment != experiment or r.status != "success" or not _matches(r, sel):
            continue
        if table == "table3":
            for m, scale in E2E_SCALE.items():
                if isinstance(r.best.get(m), (int, float)):
                    out.setdefault(m, {})[(r.r, r.targets, r.seed)] = scale * float(r.best[m])
        elif isinstance(r.best.get("score"), (int, float)):
            out.setdefault(r.task, {})[(r.r, r.targets, r.seed)] = 100.0 * float(r.best["score"])
    return out


def _metric(table: str, column: str) -> str:
    return column if table == "table3" else "score"


def _interval_line(name: str, a: Sequence[float], b: Sequence[float]) -> tuple[str, stats.Interval | None]:
    iv = stats.paired_interval(a, b)
    if iv is None:
        return f"{name}: {len(a)} paired seed(s): too few for an interval", None
    return f"{name}: mean A − B {iv.mean:+.2f}, 95% bootstrap interval [{iv.low:+.2f}, {iv.high:+.2f}], n = {iv.n}", iv


def _paired(a: dict[tuple, float], b: dict[tuple, float], match: Sequence[str]) -> tuple[list[float], list[float]]:
    """Values of A and B at the same seed (and the same r / targets where ``match`` names them)."""
    def key(k):
        r, targets, seed = k
        return (r if "r" in match else None, targets if "targets" in match else None, seed)

    bk = {key(k): v for k, v in b.items()}
    pairs = [(v, bk[key(k)]) for k, v in sorted(a.items(), key=lambda kv: str(kv[0])) if key(k) in bk]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _combine(verdicts: Sequence[str]) -> str:
    if not verdicts:
        return "no records yet"
    if all(v == "holds" for v in verdicts):
        return "holds"
    if any(v == "does not hold" for v in verdicts):
        return "does not hold"
    return "inconclusive"


def evaluate(claim: Mapping[str, Any], runs, experiments: Mapping[str, str], tables: Mapping[str, Any]) -> ClaimResult:
    table, test = claim["table"], claim["test"]
    exp = experiments.get(table, table)
    if test == "fewest_flops":
        return _fewest_flops(claim, tables.get("table2"))
    a = _values(runs, exp, claim.get("a"), table)
    res = ClaimResult(claim, "no records yet", experiment=exp)
    if test == "best_of":
        return _best_of(claim, runs, exp, a, res)
    b = _values(runs, exp, claim.get("b"), table)
    match = list(claim.get("match") or [])
    cols = [c for c in a if c in b]
    if not cols:
        return res
    parts, vs = [], []
    for c in cols:
        xa, xb = _paired(a[c], b[c], match)
        line, iv = _interval_line(c, xa, xb)
        tol = tolerance(_metric(table, c))
        v = _judge(test, iv, tol)
        parts.append(f"{line} → {v}")
        vs.append(v)
    if claim.get("average") and len(cols) > 1:
        seeds = sorted({k for c in cols for k in a[c]} & {k for c in cols for k in b[c]}, key=str)
        full = [k for k in seeds if all(k in a[c] and k in b[c] for c in cols)]
        xa = [statistics.fmean(a[c][k] for c in cols) for k in full]
        xb = [statistics.fmean(b[c][k] for c in cols) for k in full]
        line, iv = _interval_line(f"average over {', '.join(cols)}", xa, xb)
        v = _judge(test, iv, tolerance(_metric(table, cols[0])))
        parts.insert(0, f"{line} → {v}")
        res.verdict = v
    else:
        res.verdict = _combine(vs)
    res.parts = parts
    return res


def _judge(test: str, iv: stats.Interval | None, tol: float) -> str:
    if iv is None:
        return "inconclusive"
    if test == "paired_greater":
        return "holds" if iv.low > 0 else "does not hold" if iv.high < 0 else "inconclusive"
    # paired_equivalent
    if -tol < iv.low and iv.high < tol:
        return "holds"
    return "does not hold" if iv.low >= tol or iv.high <= -tol else "inconclusive"


def _best_of(claim, runs, exp: str, a: dict, res: ClaimResult) -> ClaimResult:
    """A best on >= k columns against every other row (grouped by method, r, targets) of the experiment."""
    others: dict[tuple, dict[str, list[float]]] = {}
    for r in runs:
        if r.experiment != exp or r.status != "success" or _matches(r, claim.get("a")) \
                or not _matches(r, claim.get("others")) or not isinstance(r.best.get("score"), (int, float)):
            continue
        others.setdefault((r.method, r.r, r.targets), {}).setdefault(r.task, []).append(100.0 * float(r.best["score"]))
    cols = [c for c in a if any(c in o for o in others.values())]
    if not cols:
        return res
    best = not_best = 0
    for c in cols:
        xa = list(a[c].values())
        status, worst_p = "best", 0.0
        for key, o in others.items():
            if c not in o:
                continue
            xb = o[c]
            if len(xa) < 2 or len(xb) < 2:
                status = "undecided" if status == "best" else status
                continue
            p = float(scipy_stats.ttest_ind(xa, xb, equal_var=False).pvalue)
            if statistics.fmean(xa) > statistics.fmean(xb) and p < stats.ALPHA:
                worst_p = max(worst_p, p)
            elif statistics.fmean(xb) > statistics.fmean(xa) and p < stats.ALPHA:
                status = f"not best ({_name(key)} higher, Welch p = {p:.3g})"
            elif status == "best":
                status = f"undecided (vs {_name(key)}: Welch p = {p:.3g})"
        best += status == "best"
        not_best += status.startswith("not best")
        res.parts.append(f"{c}: A = {statistics.fmean(xa):.2f} (n = {len(xa)}) → "
                         + (f"best (every Welch p ≤ {worst_p:.3g})" if status == "best" else status))
    k = len(cols) if claim.get("k", "all") == "all" else int(claim["k"])
    absent = max(int(claim.get("of", len(cols))) - len(cols), 0)  # the claim's columns without records: could be best
    res.verdict = "holds" if best >= k else "does not hold" if len(cols) + absent - not_best < k else "inconclusive"
    res.parts.insert(0, f"best on {best} of {len(cols)} column(s) present" + (f" ({absent} of the claim's {claim['of']} "
                     "without records)" if absent else "") + f"; the claim needs {k}")
    return res


def _name(key: tuple) -> str:
    method, r, targets = key
    return method + (f" r={r}" if r is not None else "") + (f" [{','.join(targets)}]" if targets else "")


def _fewest_flops(claim, table2) -> ClaimResult:
    res = ClaimResult(claim, "no records yet")
    rows = [r for r in (table2.csv_rows if table2 is not None else []) if r.get("section") == "paper_rows"
            and r.get("train_extra_flops")]
    if not rows:
        res.parts.append("Table 2 was not measured in this aggregation (tables without 2, or flops=false)")
        return res
    a = claim["a"]["method"]
    flops = {(r["method"], r["label"]): float(r["train_extra_flops"]) for r in rows}
    mine = [v for (m, _), v in flops.items() if m == a]
    rest = {k: v for k, v in flops.items() if k[0] != a}
    if not mine or not rest:
        return res
    res.parts = [f"{label}: {v / 1e9:.3f} GFLOPs above the frozen model per training step" for (_, label), v
                 in sorted(flops.items(), key=lambda kv: kv[1])]
    res.verdict = "holds" if min(mine) < min(rest.values()) else "does not hold"
    return res
