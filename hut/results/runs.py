"""Finished runs, read from their records, grouped into cells by what the *record* says.

Every ``<results_dir>/**/metrics.json`` (attempt files ``metrics.attempt<N>.json`` are ignored) is
read into a :class:`Run`; unreadable or incomplete ones become :class:`Problem`\\ s named by path. A
:class:`Cell` holds the seeds of one table cell: mean ± sample standard deviation (ddof = 1) over the
finished seeds, the failed and still-running seeds, and the configs' fingerprints. Records of
*different* configs in one cell (different fingerprints: a setting changed between runs) are never
averaged: the cell shows ``mixed configs`` and a problem names the paths.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from hut.runs.identity import variant_label
from hut.runs import READABLE_SCHEMAS, CorruptRecord, read_record, record_fingerprint
from hut.results.render.table import NA, num

TARGET_ORDER = ("q", "k", "v", "o", "ffn_in", "ffn_out")


@dataclass(frozen=True)
class Run:
    path: str  # relative to results_dir, POSIX
    experiment: str
    task: str
    method: str
    model: str
    seed: int
    status: str
    variant: str | None
    overrides: str | None  # the override variant in full, ``key=value, ...`` (hut.runs.identity.variant_label); never cut
    fingerprint: str | None
    label: str | None  # config.method.label: how the row is named
    paper_row: Mapping[str, Any] | None  # config.paper_row: which paper row it reproduces
    best: Mapping[str, Any]
    params: Mapping[str, Any]
    targets: tuple[str, ...]
    r: int | None
    method_cfg: Mapping[str, Any] | None
    model_cfg: Mapping[str, Any] | None
    task_cfg: Mapping[str, Any] | None
    error: Mapping[str, Any] | None
    wall_time_s: float | None = None
    last: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()  # one row per epoch (metrics on dev, train loss, step)
    config: Mapping[str, Any] | None = None  # the resolved config
    git_sha: str | None = None
    versions: Mapping[str, Any] | None = None

    @property
    def last_step(self) -> int | None:
        step = (self.last or {}).get("step")
        return int(step) if isinstance(step, int) and not isinstance(step, bool) else None

    @property
    def row(self) -> tuple:
        """What a table row is: the method, its variant, the model and any override variant."""
        return (self.method, self.variant, self.model, self.overrides)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


def order_targets(targets: Iterable[str]) -> tuple[str, ...]:
    ts = [str(t) for t in targets]
    return tuple(sorted(ts, key=lambda t: (TARGET_ORDER.index(t) if t in TARGET_ORDER else len(TARGET_ORDER), t)))


def _dict(x: Any) -> dict | None:
    return x if isinstance(x, dict) else None


def load_runs(results_dir: str | Path) -> tuple[list[Run], list[Problem]]:
    """Every ``metrics.json`` under ``results_dir`` (sorted by path); unreadable ones as problems."""
    root = Path(results_dir)
    runs: list[Run] = []
    problems: list[Problem] = []
    if not root.is_dir():
        return runs, problems
    for p in sorted(root.rglob("metrics.json"), key=lambda p: p.relative_to(root).as_posix()):
        rel = p.relative_to(root).as_posix()
        try:
            rec = read_record(p)
        except CorruptRecord:
            problems.append(Problem(rel, "corrupt or truncated JSON"))
            continue
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(rel, f"unreadable ({type(e).__name__})"))
            continue
        if rec.get("schema_version") not in READABLE_SCHEMAS:
            problems.append(Problem(rel, f"schema_version {rec.get('schema_version')!r} (readable: "
                                         f"{', '.join(map(str, READABLE_SCHEMAS))})"))
            continue
        missing = [k for k in ("experiment", "task", "method", "model", "seed", "status") if rec.get(k) is None]
        if missing:
            problems.append(Problem(rel, f"record lacks {', '.join(missing)}"))
            continue
        cfg = _dict(rec.get("config")) or {}
        mcfg = _dict(cfg.get("method"))
        targets = (mcfg or {}).get("targets") or ()
        targets = [targets] if isinstance(targets, str) else targets
        try:
            seed = int(rec["seed"])
            r = int(mcfg["r"]) if mcfg and mcfg.get("r") is not None else None
        except (TypeError, ValueError):
            problems.append(Problem(rel, "seed or method.r is not an integer"))
            continue
        status = str(rec["status"])
        if status not in ("success", "failed", "running"):
            problems.append(Problem(rel, f"unknown status {status!r}"))
            continue
        best = _dict(rec.get("best")) or {}
        if status == "success" and not best:
            problems.append(Problem(rel, "status success but no `best` metrics"))
            continue
        variant = rec.get("variant", cfg.get("variant"))
        runs.append(Run(
            path=rel, experiment=str(rec["experiment"]), task=str(rec["task"]), method=str(rec["method"]),
            model=str(rec["model"]), seed=seed, status=status, variant=str(variant) if variant else None,
            overrides=variant_label(_dict(rec.get("overrides")), ", "), fingerprint=record_fingerprint(rec),
            label=(mcfg or {}).get("label"), paper_row=_dict(cfg.get("paper_row")), best=best,
            params=_dict(rec.get("params")) or {}, targets=order_targets(targets), r=r, method_cfg=mcfg,
            model_cfg=_dict(cfg.get("model")), task_cfg=_dict(cfg.get("task")), error=_dict(rec.get("error")),
            wall_time_s=float(rec["wall_time_s"]) if isinstance(rec.get("wall_time_s"), (int, float)) else None,
            last=_dict(rec.get("last")) or {},
            history=tuple(h for h in rec.get("history") or () if isinstance(h, dict)), config=cfg or None,
            git_sha=str(rec["git_sha"]) if rec.get("git_sha") else None, versions=_dict(rec.get("versions")),
        ))
    return runs, problems


@dataclass
class Cell:
    expected: tuple[int, ...] | None = None
    values: dict[int, float] = field(default_factory=dict)  # seed -> raw value (successes)
    failed: dict[int, str] = field(default_factory=dict)  # seed -> reason
    running: list[int] = field(default_factory=list)
    params: list[int] = field(default_factory=list)
    fingerprints: dict[int, str | None] = field(default_factory=dict)  # seed -> config fingerprint
    paths: dict[int, str] = field(default_factory=dict)

    @property
    def mixed(self) -> bool:
        """Finished seeds of different configs: never averaged."""
        return len({fp for s, fp in self.fingerprints.items() if s in self.values}) > 1

    @property
    def n(self) -> int:
        return len(self.values)

    def mean(self, scale: float = 1.0) -> float | None:
        if not self.values or self.mixed:
            return None
        return statistics.fmean(v * scale for v in self.values.values())

    def std(self, scale: float = 1.0) -> float | None:
        """Sample standard deviation (ddof = 1); None for fewer than 2 seeds."""
        if self.n < 2 or self.mixed:
            return None
        return statistics.stdev([v * scale for v in self.values.values()])

    def median(self, scale: float = 1.0) -> float | None:
        if not self.values or self.mixed:
            return None
        return statistics.median(v * scale for v in self.values.values())

    @property
    def missing(self) -> list[int]:
        if self.expected is None:
            return []
        return sorted(s for s in self.expected if s not in self.values and s not in self.failed
                      and s not in self.running)

    @property
    def extra(self) -> list[int]:
        if self.expected is None:
            return []
        return sorted(s for s in self.values if s not in self.expected)

    @property
    def complete(self) -> bool:
        return self.expected is None or sorted(self.values) == sorted(self.expected)

    def text(self, scale: float, digits: int) -> str:
        if self.mixed:
            return "mixed configs ‡"
        if not self.values:
            s = NA
        else:
            m, sd = self.mean(scale), self.std(scale)
            s = f"{m:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")
        if self.expected is not None and not self.complete and (self.values or self.failed or self.running):
            s += f" [{self.n}/{len(self.expected)}]"
        elif self.expected is None and self.values:
            s += f" [n={self.n}]"
        if self.failed:
            s += " †"
        return s

    def csv(self, scale: float) -> dict[str, str]:
        m, sd = self.mean(scale), self.std(scale)
        return {
            "mean": num(m), "std": num(sd), "n": str(self.n), "median": num(self.median(scale)),
            # every seed's value (scaled), "seed:value" in seed order: the table's data, not only its summary
            "values": " ".join(f"{s}:{v * scale:.6f}" for s, v in sorted(self.values.items())),
            "n_expected": str(len(self.expected)) if self.expected is not None else "",
            "seeds": " ".join(map(str, sorted(self.values))), "missing_seeds": " ".join(map(str, self.missing)),
            "failed_seeds": " ".join(map(str, sorted(self.failed))),
            "running_seeds": " ".join(map(str, sorted(self.running))),
            "extra_seeds": " ".join(map(str, self.extra)),
        }


def add(cell: Cell, run: Run, value: float | None) -> None:
    if run.status == "success" and value is not None:
        cell.values[run.seed] = float(value)
        cell.fingerprints[run.seed] = run.fingerprint
        cell.paths[run.seed] = run.path
        if isinstance(run.params.get("adapter"), int):
            cell.params.append(int(run.params["adapter"]))
    elif run.status == "failed":
        err = run.error or {}
        reason = str(err.get("reason", "failed"))
        cell.failed[run.seed] = reason + (f" at step {err['step']}" if err.get("step") is not None else "")
    elif run.status == "running":
        cell.running.append(run.seed)


def mixed_problems(cells: Iterable[Cell]) -> list[Problem]:
    """One problem per cell whose finished records are of different configs."""
    out = []
    for c in cells:
        if c.mixed:
            fps = {}
            for s, fp in sorted(c.fingerprints.items()):
                fps.setdefault(fp, []).append(c.paths[s])
            detail = "; ".join(f"fingerprint {fp}: {', '.join(ps)}" for fp, ps in fps.items())
            first = c.paths[min(c.paths)]
            out.append(Problem(first, f"records of different configs in one cell, not averaged ({detail})"))
    return out


def dedupe(runs: Sequence[Run], key: Callable[[Run], tuple], problems: list[Problem]) -> list[Run]:
    """One run per (cell, seed): the first by path; later duplicates are reported."""
    seen: dict[tuple, Run] = {}
    out = []
    for r in runs:
        k = key(r) + (r.seed,)
        if k in seen:
            problems.append(Problem(r.path, f"duplicate of {seen[k].path} (same cell and seed)"))
            continue
        seen[k] = r
        out.append(r)
    return out


def metric_value(run: Run, metric: str, problems: list[Problem]) -> float | None:
    if run.status != "success":
        return None
    v = run.best.get(metric)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(float(v)):
        problems.append(Problem(run.path, f"best.{metric} missing or not a finite number"))
        return None
    return float(v)
