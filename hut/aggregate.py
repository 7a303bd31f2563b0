"""Tables and Figure 3 from finished runs: ``python -m hut.aggregate [key=value ...]``.

    python -m hut.aggregate                                   # results/runs -> results/tables, results/figures
    python -m hut.aggregate results_dir=R out_dir=O           # other folders
    python -m hut.aggregate experiment=demo results_dir=results/demo/runs out_dir=results/demo
    python -m hut.aggregate experiment_map=table1:myexp,table3:myexp tables=1,3

Keys: ``results_dir`` (default results/runs), ``out_dir`` (default results), ``experiment`` (Tables
1 and 3 read this experiment's records; default tables become 1,3), ``experiment_map``
(``tableN:experiment`` pairs), ``tables`` (which of 1-5 to write; default all), ``figure``
(true|false, Figure 3), ``flops`` (true|false: measure FLOPs for Table 2 and Figure 3).

Reads every ``<results_dir>/**/metrics.json`` (attempt files ``metrics.attempt<N>.json`` are
ignored) and groups the runs by what the *record* says, never by its path:

* Table 1 <- experiment ``table1``: GLUE, rows = (method, variant, model), columns = tasks, the
  record's ``best.score`` (the task's paper metric) × 100;
* Table 2: FLOPs, analytic (the paper's Eq. 10-11) and measured (``hut/flops.py``), no records;
* Table 3 <- ``table3``: E2E, BLEU/METEOR/ROUGE-L × 100, NIST and CIDEr as computed (the paper
  prints them the way the LoRA paper does);
* Table 4 <- ``table4``: columns = (targets, r) from ``config.method``; rows = tasks;
* Table 5 <- ``table5``: columns = r; rows = (task, targets);
* ``cost`` (with Table 1 or 3) <- the same experiments: one row per (task, method, model) with the
  score, the wall time of one run (the record's ``wall_time_s``) and the trainable parameters.

Cells are mean ± sample standard deviation (ddof = 1) over seeds; ``[n/N]`` when the cell does not
hold exactly the N expected seeds, ``†`` when a run failed (failures, missing seeds and runs still
marked running are listed under each table). Truncated or corrupt JSON files are reported by path
and skipped. Each table also carries the paper's figures from ``hut/paper_results.yaml`` (where
they were found) and an "ours − paper" row for HUT. Output is deterministic: rebuilding from the
same records gives byte-identical files.
"""
from __future__ import annotations

import csv
import io
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
PAPER_FILE = Path(__file__).resolve().parent / "paper_results.yaml"
SCHEMA_VERSION = 1
USAGE = ("usage: python -m hut.aggregate [results_dir=results/runs] [out_dir=results] [experiment=E] "
         "[experiment_map=table1:E,table3:E] [tables=1,2,3,4,5] [figure=true|false] [flops=true|false] "
         "[flops_model=roberta_large] [paper=hut/paper_results.yaml]")

# Expected seeds per experiment (the sweeps in configs/experiment/*.yaml; tests check they agree).
EXPECTED_SEEDS: dict[str, tuple[int, ...]] = {
    "table1": (0, 1, 2, 3, 4),
    "table3": (0, 1, 2),
    "table4": (0, 1, 2, 3, 4),
    "table5": (0, 1, 2, 3, 4),
}
# The demo (hut/demo.py): 2 seeds on GLUE, 1 on E2E.
DEMO_SEEDS = {"glue": (0, 1), "e2e": (0,)}

GLUE_TASKS = ("sst2", "mrpc", "cola", "qnli", "rte", "stsb")
OTHER_GLUE = ("mnli", "qqp")
TASK_LABEL = {"sst2": "SST-2", "mrpc": "MRPC", "cola": "CoLA", "qnli": "QNLI", "rte": "RTE", "stsb": "STS-B",
              "mnli": "MNLI", "qqp": "QQP", "e2e": "E2E"}
# The paper's metric of each GLUE task (the record's `score`); the rest report accuracy.
GLUE_METRIC_LABEL = {"cola": "Matthews corr.", "stsb": "Pearson corr."}
# (record key, column label, scale, decimals): the paper's (LoRA's) E2E convention.
E2E_METRICS = (("BLEU", "BLEU", 100.0, 1), ("NIST", "NIST", 1.0, 2), ("METEOR", "METEOR", 100.0, 1),
               ("ROUGE_L", "ROUGE-L", 100.0, 1), ("CIDEr", "CIDEr", 1.0, 2))
GLUE_SCALE, GLUE_DIGITS = 100.0, 1

METHOD_ORDER = ("ft", "ft_top2", "bitfit", "prefix", "hadapter", "padapter", "ladapter", "ia3", "vera",
                "fourierft", "lora", "hut_compact", "hut")
# (Markdown, LaTeX) labels.
METHOD_LABEL = {
    "ft": ("FT", "FT"), "ft_top2": ("FT^Top2", r"FT$^{\mathrm{Top2}}$"), "bitfit": ("BitFit", "BitFit"),
    "prefix": ("PreLayer", "PreLayer"), "hadapter": ("Adpt^H", r"Adpt$^{\mathrm{H}}$"),
    "padapter": ("Adpt^P", r"Adpt$^{\mathrm{P}}$"), "ladapter": ("Adpt^L", r"Adpt$^{\mathrm{L}}$"),
    "ia3": ("(IA)^3", r"(IA)$^3$"), "vera": ("VeRA", "VeRA"), "fourierft": ("FourierFT", "FourierFT"),
    "lora": ("LoRA", "LoRA"), "hut_compact": ("HUT-compact", "HUT-compact"), "hut": ("HUT", "HUT"),
    "frozen": ("frozen model (floor)", "frozen model (floor)"),
}
TARGET_ORDER = ("q", "k", "v", "o", "ffn_in", "ffn_out")
PAPER_MODEL = {"table1": "roberta_large", "table3": "gpt2_medium", "table4": "roberta_large",
               "table5": "roberta_large"}
NA = "–"
MODEL_LABEL = {"roberta_large": "RoBERTa-large", "roberta_base": "RoBERTa-base", "gpt2_medium": "GPT-2 medium",
               "minilm": "MiniLM", "smollm2": "SmolLM2-135M", "tiny_roberta": "tiny RoBERTa (tests)",
               "tiny_gpt2": "tiny GPT-2 (tests)"}


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------
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
    best: Mapping[str, Any]
    params: Mapping[str, Any]
    targets: tuple[str, ...]
    r: int | None
    method_cfg: Mapping[str, Any] | None
    model_cfg: Mapping[str, Any] | None
    error: Mapping[str, Any] | None
    wall_time_s: float | None = None


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


def _order_targets(targets: Iterable[str]) -> tuple[str, ...]:
    ts = [str(t) for t in targets]
    return tuple(sorted(ts, key=lambda t: (TARGET_ORDER.index(t) if t in TARGET_ORDER else len(TARGET_ORDER), t)))


def load_runs(results_dir: str | Path) -> tuple[list[Run], list[Problem]]:
    """Every ``metrics.json`` under ``results_dir`` (sorted by path); unreadable ones as problems."""
    from hut.records import CorruptRecord, read_record

    root = Path(results_dir)
    runs: list[Run] = []
    problems: list[Problem] = []
    if not root.is_dir():
        return runs, problems
    files = sorted(root.rglob("metrics.json"), key=lambda p: p.relative_to(root).as_posix())
    for p in files:
        rel = p.relative_to(root).as_posix()
        try:
            rec = read_record(p)
        except CorruptRecord:
            problems.append(Problem(rel, "corrupt or truncated JSON"))
            continue
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(rel, f"unreadable ({type(e).__name__})"))
            continue
        if rec.get("schema_version") != SCHEMA_VERSION:
            problems.append(Problem(rel, f"schema_version {rec.get('schema_version')!r} (expected "
                                         f"{SCHEMA_VERSION})"))
            continue
        missing = [k for k in ("experiment", "task", "method", "model", "seed", "status") if rec.get(k) is None]
        if missing:
            problems.append(Problem(rel, f"record lacks {', '.join(missing)}"))
            continue
        cfg = rec.get("config") if isinstance(rec.get("config"), dict) else {}
        mcfg = cfg.get("method") if isinstance(cfg.get("method"), dict) else None
        modcfg = cfg.get("model") if isinstance(cfg.get("model"), dict) else None
        targets = mcfg.get("targets") if mcfg else None
        if isinstance(targets, str):
            targets = [targets]
        r = mcfg.get("r") if mcfg else None
        try:
            seed = int(rec["seed"])
            r = int(r) if r is not None else None
        except (TypeError, ValueError):
            problems.append(Problem(rel, "seed or method.r is not an integer"))
            continue
        status = str(rec["status"])
        if status not in ("success", "failed", "running"):
            problems.append(Problem(rel, f"unknown status {status!r}"))
            continue
        best = rec.get("best") if isinstance(rec.get("best"), dict) else {}
        if status == "success" and not best:
            problems.append(Problem(rel, "status success but no `best` metrics"))
            continue
        variant = rec.get("variant", cfg.get("variant"))
        runs.append(Run(
            path=rel, experiment=str(rec["experiment"]), task=str(rec["task"]), method=str(rec["method"]),
            model=str(rec["model"]), seed=seed, status=status, variant=str(variant) if variant else None,
            best=best, params=rec.get("params") if isinstance(rec.get("params"), dict) else {},
            targets=_order_targets(targets or ()), r=r, method_cfg=mcfg, model_cfg=modcfg,
            error=rec.get("error") if isinstance(rec.get("error"), dict) else None,
            wall_time_s=float(rec["wall_time_s"]) if isinstance(rec.get("wall_time_s"), (int, float)) else None,
        ))
    return runs, problems


# --------------------------------------------------------------------------------------------------
# Statistics of one cell
# --------------------------------------------------------------------------------------------------
@dataclass
class Cell:
    expected: tuple[int, ...] | None = None
    values: dict[int, float] = field(default_factory=dict)  # seed -> raw value (successes)
    failed: dict[int, str] = field(default_factory=dict)  # seed -> reason
    running: list[int] = field(default_factory=list)
    params: list[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    def mean(self, scale: float = 1.0) -> float | None:
        return statistics.fmean(v * scale for v in self.values.values()) if self.values else None

    def std(self, scale: float = 1.0) -> float | None:
        """Sample standard deviation (ddof = 1); None for fewer than 2 seeds."""
        return statistics.stdev([v * scale for v in self.values.values()]) if self.n >= 2 else None

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
            "mean": _num(m), "std": _num(sd), "n": str(self.n),
            "n_expected": str(len(self.expected)) if self.expected is not None else "",
            "seeds": " ".join(map(str, sorted(self.values))), "missing_seeds": " ".join(map(str, self.missing)),
            "failed_seeds": " ".join(map(str, sorted(self.failed))),
            "running_seeds": " ".join(map(str, sorted(self.running))),
            "extra_seeds": " ".join(map(str, self.extra)),
        }


def _num(x: float | None, digits: int = 6) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _signed(x: float | None, digits: int) -> str:
    if x is None:
        return NA
    s = f"{abs(x):.{digits}f}"
    if float(s) == 0:
        return s
    return ("+" if x > 0 else "−") + s


def fmt_params(values: Sequence[int]) -> str:
    vals = sorted(set(int(v) for v in values))
    if not vals:
        return NA

    def one(n: int) -> str:
        return f"{n / 1e6:.3g}M"

    return one(vals[0]) if len(vals) == 1 else f"{one(vals[0])}–{one(vals[-1])}"


def method_label(method: str, tex: bool = False) -> str:
    lab = METHOD_LABEL.get(method)
    if lab is None:
        return tex_escape(method) if tex else method
    return lab[1] if tex else lab[0]


# --------------------------------------------------------------------------------------------------
# A rendered table (Markdown, LaTeX with booktabs, CSV)
# --------------------------------------------------------------------------------------------------
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


_TEX_MAP = [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_"),
            ("{", r"\{"), ("}", r"\}"), ("$", r"\$"), ("~", r"\textasciitilde{}"), ("^", r"\^{}"),
            ("<", r"\textless{}"), (">", r"\textgreater{}")]
_TEX_SYMBOLS = [("—", "---"), ("±", r"$\pm$"), ("†", r"$^{\dagger}$"), ("−", r"$-$"), ("–", "--"),
                ("×", r"$\times$"), ("≥", r"$\geq$"), ("·", r"$\cdot$"), ("→", r"$\to$"), ("←", r"$\leftarrow$"),
                ("Δ", r"$\Delta$"), ("“", "``"), ("”", "''"), ("’", "'"), ("…", r"\dots{}"), ("≈", r"$\approx$"),
                ("⊙", r"$\odot$")]


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
    out += _md_grid(t)
    out.append("")
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


def render_tex(t: Table, provenance: str) -> str:
    ncol = len(t.header)
    spec = t.align or ("l" + "r" * (ncol - 1))
    out = [f"% {tex_escape(provenance)}", "% Requires \\usepackage{booktabs}.", r"\begin{table}[t]", r"\centering",
           r"\small", r"\caption{" + tex_escape(_caption_title(t.title)) + ". " + " ".join(tex_escape(p) for p in t.caption) + "}",
           r"\label{tab:" + t.key + "}", r"\begin{tabular}{" + spec + "}", r"\toprule",
           " & ".join(_tex(h) for h in t.header) + r" \\", r"\midrule"]
    first = True
    for title, rows in t.blocks:
        if title is not None:
            if not first:
                out.append(r"\midrule")
            out.append(r"\multicolumn{" + str(ncol) + "}{l}{\\emph{" + tex_escape(title) + r"}} \\")
        for row in rows:
            out.append(" & ".join(_tex(c) for c in row) + r" \\")
        first = False
    out += [r"\bottomrule", r"\end{tabular}"]
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


# --------------------------------------------------------------------------------------------------
# What each table expects (the sweeps in configs/experiment/*.yaml, hut/demo.py for the demo)
# --------------------------------------------------------------------------------------------------
@dataclass
class Layout:
    table: str
    experiment: str
    tasks: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    seeds: tuple[int, ...] | None = None
    cells: tuple[tuple[tuple[str, ...], int | None], ...] = ()  # tables 4/5: (targets, r)


def _split(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    return [x.strip() for x in str(v).split(",") if x.strip()]


def _sweep(experiment: str) -> dict[str, list[str]]:
    from omegaconf import OmegaConf

    path = CONFIGS / "experiment" / f"{experiment}.yaml"
    if not path.is_file():
        return {}
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    params = (((cfg or {}).get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    return {str(k): _split(v) for k, v in params.items()}


def _ablation(name: str) -> tuple[tuple[str, ...], int | None]:
    from omegaconf import OmegaConf

    path = CONFIGS / "ablation" / f"{name}.yaml"
    if not path.is_file():
        return (), None
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    m = cfg.get("method") or {}
    r = m.get("r")
    return _order_targets(_split(m.get("targets"))), (int(r) if isinstance(r, int) else None)


def layout(table: str, experiment: str) -> Layout:
    if experiment == "demo":
        from hut.demo import DEFAULTS

        if table == "table1":
            return Layout(table, experiment, tuple(_split(DEFAULTS["glue_tasks"])),
                          tuple(_split(DEFAULTS["glue_methods"])), DEMO_SEEDS["glue"])
        if table == "table3":
            return Layout(table, experiment, ("e2e",), tuple(_split(DEFAULTS["e2e_methods"])), DEMO_SEEDS["e2e"])
        return Layout(table, experiment)
    sw = _sweep(experiment)
    seeds = EXPECTED_SEEDS.get(experiment)
    if seeds is None and sw.get("seed"):
        seeds = tuple(int(s) for s in sw["seed"])
    if table == "table1":
        return Layout(table, experiment, tuple(sw.get("task") or GLUE_TASKS), tuple(sw.get("method") or ()), seeds)
    if table == "table3":
        return Layout(table, experiment, ("e2e",), tuple(sw.get("method") or ()), seeds)
    cells: list[tuple[tuple[str, ...], int | None]] = []
    ranks = [int(r) for r in sw.get("method.r", [])]
    for name in sw.get("ablation", []):
        targets, r = _ablation(name)
        if table == "table5" and ranks:
            cells += [(targets, rr) for rr in ranks]
        else:
            cells.append((targets, r))
    return Layout(table, experiment, tuple(sw.get("task") or ("mrpc", "cola")), ("hut",), seeds, tuple(cells))


# --------------------------------------------------------------------------------------------------
# Paper figures
# --------------------------------------------------------------------------------------------------
def load_paper(path: str | Path = PAPER_FILE) -> dict:
    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    p = Path(path).resolve()
    data["_file"] = p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else p.name
    return data


def _paper_table(paper: Mapping[str, Any], key: str) -> dict:
    return ((paper.get("tables") or {}).get(key) or {})


def _paper_model(paper: Mapping[str, Any], key: str) -> str:
    return str(_paper_table(paper, key).get("model") or PAPER_MODEL[key])


def _paper_block_title(paper: Mapping[str, Any], key: str) -> str:
    t = _paper_table(paper, key)
    return f"Paper: {paper.get('short_citation', 'the paper')}, {t.get('source', key)}"


def _paper_missing_note(paper: Mapping[str, Any], key: str) -> list[str]:
    t = _paper_table(paper, key)
    if t.get("missing"):
        return [f"Paper's figures not available: {' '.join(str(t['missing']).split())} "
                f"({paper.get('_file', 'hut/paper_results.yaml')}; n/a = not available, never guessed)."]
    return []


# --------------------------------------------------------------------------------------------------
# Grouping helpers
# --------------------------------------------------------------------------------------------------
def _method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def _task_rank(task: str) -> tuple[int, str]:
    order = GLUE_TASKS + OTHER_GLUE
    return (order.index(task) if task in order else len(order), task)


def _add(cell: Cell, run: Run, value: float | None) -> None:
    if run.status == "success" and value is not None:
        cell.values[run.seed] = float(value)
        if isinstance(run.params.get("adapter"), int):
            cell.params.append(int(run.params["adapter"]))
    elif run.status == "failed":
        err = run.error or {}
        reason = str(err.get("reason", "failed"))
        cell.failed[run.seed] = reason + (f" at step {err['step']}" if err.get("step") is not None else "")
    elif run.status == "running":
        cell.running.append(run.seed)


def _dedupe(runs: Sequence[Run], key: Callable[[Run], tuple], problems: list[Problem]) -> list[Run]:
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


def _value(run: Run, metric: str, problems: list[Problem]) -> float | None:
    if run.status != "success":
        return None
    v = run.best.get(metric)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(float(v)):
        problems.append(Problem(run.path, f"best.{metric} missing or not a finite number"))
        return None
    return float(v)


def _status_notes(label: str, cell: Cell) -> list[str]:
    notes = []
    for s, reason in sorted(cell.failed.items()):
        notes.append(f"† {label}, seed {s}: failed ({reason}).")
    if cell.running:
        notes.append(f"{label}: seed(s) {', '.join(map(str, sorted(cell.running)))} still marked running "
                     f"(in progress or interrupted; not counted).")
    if cell.missing and (cell.values or cell.failed or cell.running):
        notes.append(f"{label}: seed(s) {', '.join(map(str, cell.missing))} missing.")
    if cell.extra:
        notes.append(f"{label}: extra seed(s) {', '.join(map(str, cell.extra))} beyond the expected "
                     f"{len(cell.expected or ())} (included in the mean).")
    return notes


def _std_note(seeds: tuple[int, ...] | None) -> str:
    n = (f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})" if seeds
         else "all finished seeds")
    return (f"Cells: mean ± sample standard deviation (ddof = 1) over {n}; no ± with a single seed. "
            f"[n/N]: n of the N expected seeds finished; †: a run failed (listed below).")


def _problem_notes(problems: Sequence[Problem], experiment: str) -> list[str]:
    """Problems whose path lies under this experiment's folder (corrupt files have only a path)."""
    out, seen = [], set()
    for p in problems:
        if p.path.split("/", 1)[0] == experiment and (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            out.append(f"Skipped `{p.path}`: {p.message}.")
    return out


# --------------------------------------------------------------------------------------------------
# Tables 1 and 3 (methods × tasks / metrics)
# --------------------------------------------------------------------------------------------------
RowKey = tuple  # (method, variant, model)


def _row_label(key: RowKey, multi_model: bool, tex: bool) -> str:
    method, variant, model = key
    s = method_label(method, tex)
    if variant:
        s += f" [{tex_escape(variant) if tex else variant}]"
    if multi_model and model:
        s += f" ({tex_escape(model) if tex else model})"
    return s


def _rows_for(runs: Sequence[Run], expected_methods: Sequence[str]) -> list[RowKey]:
    found = sorted({(r.method, r.variant or "", r.model) for r in runs},
                   key=lambda k: (_method_rank(k[0]), k[1], k[2]))
    rows: list[RowKey] = []
    have = {k[0] for k in found}
    for m in sorted(set(expected_methods) | have, key=_method_rank):
        ks = [k for k in found if k[0] == m]
        rows += [(k[0], k[1] or None, k[2]) for k in ks] if ks else [(m, None, None)]
    return rows


@dataclass
class Summary:
    lines: list[str] = field(default_factory=list)

    def add(self, s: str) -> None:
        self.lines.append(s)


def _hut_row(rows: Sequence[RowKey], paper_model: str) -> RowKey | None:
    for k in rows:
        if k[0] == "hut" and not k[1] and k[2] == paper_model:
            return k
    return None


def table_glue(runs: Sequence[Run], problems: list[Problem], lay: Layout, paper: Mapping[str, Any],
               summary: Summary, results_dir: str) -> tuple[Table, dict]:
    """Table 1 (GLUE). Returns the table and, for Figure 3, {row key: (avg, cells)}."""
    glue = set(GLUE_TASKS + OTHER_GLUE)
    mine = [r for r in runs if r.experiment == lay.experiment and r.task in glue]
    mine = _dedupe(mine, lambda r: (r.task, r.method, r.variant, r.model), problems)
    tasks = sorted(set(lay.tasks) | {r.task for r in mine}, key=_task_rank)
    rows = _rows_for(mine, lay.methods)
    multi_model = len({k[2] for k in rows if k[2]}) > 1
    cells: dict[tuple[RowKey, str], Cell] = {}
    for k in rows:
        for t in tasks:
            cells[(k, t)] = Cell(expected=lay.seeds)
    for r in mine:
        _add(cells[((r.method, r.variant, r.model), r.task)], r, _value(r, "score", problems))

    header: list[Any] = ["Method", "#Params"] + [TASK_LABEL.get(t, t) for t in tasks] + ["Avg."]
    body, notes, csv_rows = [], [], []
    averages: dict[RowKey, tuple[float | None, dict[str, Cell]]] = {}
    for k in rows:
        row_cells = {t: cells[(k, t)] for t in tasks}
        means = [c.mean(GLUE_SCALE) for c in row_cells.values()]
        avg = statistics.fmean(means) if means and all(m is not None for m in means) else None
        averages[k] = (avg, row_cells)
        params = [p for c in row_cells.values() for p in c.params]
        label = (_row_label(k, multi_model, False), _row_label(k, multi_model, True))
        body.append([label, fmt_params(params)] + [row_cells[t].text(GLUE_SCALE, GLUE_DIGITS) for t in tasks]
                    + [NA if avg is None else f"{avg:.{GLUE_DIGITS}f}"])
        for t in tasks:
            notes += _status_notes(f"{label[0]} · {TASK_LABEL.get(t, t)}", row_cells[t])
            csv_rows.append({"table": "table1", "source": "ours", "experiment": lay.experiment, "model": k[2] or "",
                             "method": k[0], "variant": k[1] or "", "task": t, "metric": "score",
                             "scale": f"{GLUE_SCALE:g}", "adapter_params": " ".join(map(str, sorted(set(params)))),
                             **row_cells[t].csv(GLUE_SCALE)})
        csv_rows.append({"table": "table1", "source": "ours", "experiment": lay.experiment, "model": k[2] or "",
                         "method": k[0], "variant": k[1] or "", "task": "avg", "metric": "score",
                         "scale": f"{GLUE_SCALE:g}", "mean": _num(avg)})
        if not any(c.values or c.failed or c.running for c in row_cells.values()) and k[0] in lay.methods:
            notes.append(f"{label[0]}: no runs yet.")

    # The paper's rows and ours − paper.
    ptab = _paper_table(paper, "table1")
    prows = ptab.get("rows") or {}
    ref = []
    for m in sorted(set(prows) | {"hut"}, key=_method_rank):
        vals = prows.get(m) or {}
        cols = [vals.get(t) for t in tasks]
        ref.append([(f"{method_label(m)} (paper)", f"{method_label(m, True)} (paper)"),
                    fmt_params([vals["params"]]) if vals.get("params") is not None else "n/a"]
                   + ["n/a" if v is None else f"{float(v):.1f}" for v in cols]
                   + ["n/a" if vals.get("avg") is None else f"{float(vals['avg']):.1f}"])
        for t, v in zip(tasks, cols):
            if v is not None:
                csv_rows.append({"table": "table1", "source": "paper", "method": m, "task": t, "metric": "score",
                                 "scale": "100", "mean": _num(float(v))})
    hk = _hut_row(rows, _paper_model(paper, "table1"))
    pv = prows.get("hut") or {}
    diff = [("Ours − paper (HUT)", r"Ours $-$ paper (HUT)"), NA]
    for t in tasks:
        ours = cells[(hk, t)].mean(GLUE_SCALE) if hk else None
        d = ours - float(pv[t]) if ours is not None and pv.get(t) is not None else None
        diff.append(_signed(d, GLUE_DIGITS))
        if d is not None:
            csv_rows.append({"table": "table1", "source": "ours-paper", "method": "hut", "task": t, "metric": "score",
                             "scale": "100", "mean": _num(d)})
    ours_avg = averages.get(hk, (None,))[0] if hk else None
    diff.append(_signed(ours_avg - float(pv["avg"]) if ours_avg is not None and pv.get("avg") is not None else None,
                        GLUE_DIGITS))

    n_runs = len([r for r in mine if r.status == "success"])
    caption = [
        f"GLUE dev results, experiment `{lay.experiment}` ({n_runs} finished runs): the record's best epoch, "
        f"task metric × 100 (CoLA: Matthews corr.; STS-B: Pearson corr.; the others: accuracy). "
        f"#Params: trainable parameters without the classification head (the record's `params.adapter`). "
        f"Avg.: mean of the task means, shown when every task has a result.",
        _std_note(lay.seeds),
    ]
    if not mine:
        notes.insert(0, f"No records of experiment `{lay.experiment}` under `{results_dir}` yet"
                        + (f" (expected {len(lay.methods)} methods × {len(lay.tasks)} tasks × "
                           f"{len(lay.seeds)} seeds)."
                           if lay.methods and lay.seeds else "."))
    notes += _problem_notes(problems, lay.experiment)
    if hk is None:
        notes.append(f"Ours − paper: no HUT row on the paper's model ({_paper_model(paper, 'table1')}) "
                     f"in this experiment.")
    notes += _paper_missing_note(paper, "table1")
    fields = ["table", "source", "experiment", "model", "method", "variant", "task", "metric", "scale", "mean", "std",
              "n", "n_expected", "seeds", "missing_seeds", "failed_seeds", "running_seeds", "extra_seeds",
              "adapter_params"]
    t = Table("table1", f"Table 1: GLUE ({_models_text(mine, paper, 'table1')})" if lay.experiment != "demo" else
              f"Table 1 (demo): GLUE subsets ({_models_text(mine, paper, 'table1')})", caption, header,
              [(None, body), (_paper_block_title(paper, "table1"), ref + [diff])], notes, fields, csv_rows)
    _summarise(summary, "table1", lay, mine, cells.values())
    return t, averages


def table_e2e(runs: Sequence[Run], problems: list[Problem], lay: Layout, paper: Mapping[str, Any],
              summary: Summary, results_dir: str) -> Table:
    mine = [r for r in runs if r.experiment == lay.experiment and r.task == "e2e"]
    mine = _dedupe(mine, lambda r: (r.task, r.method, r.variant, r.model), problems)
    rows = _rows_for(mine, lay.methods)
    multi_model = len({k[2] for k in rows if k[2]}) > 1
    cells = {(k, m[0]): Cell(expected=lay.seeds) for k in rows for m in E2E_METRICS}
    for r in mine:
        for m in E2E_METRICS:
            _add(cells[((r.method, r.variant, r.model), m[0])], r, _value(r, m[0], problems))
    header: list[Any] = ["Method", "#Params"] + [m[1] for m in E2E_METRICS]
    body, notes, csv_rows = [], [], []
    for k in rows:
        label = (_row_label(k, multi_model, False), _row_label(k, multi_model, True))
        rc = [cells[(k, m[0])] for m in E2E_METRICS]
        params = [p for p in rc[0].params]
        body.append([label, fmt_params(params)] + [c.text(m[2], m[3]) for c, m in zip(rc, E2E_METRICS)])
        notes += _status_notes(label[0], rc[0])
        for c, m in zip(rc, E2E_METRICS):
            csv_rows.append({"table": "table3", "source": "ours", "experiment": lay.experiment, "model": k[2] or "",
                             "method": k[0], "variant": k[1] or "", "task": "e2e", "metric": m[0],
                             "scale": f"{m[2]:g}", "adapter_params": " ".join(map(str, sorted(set(params)))),
                             **c.csv(m[2])})
        if not any(c.values or c.failed or c.running for c in rc) and k[0] in lay.methods:
            notes.append(f"{label[0]}: no runs yet.")
    ptab = _paper_table(paper, "table3")
    prows = ptab.get("rows") or {}
    ref = []
    for meth in sorted(set(prows) | {"hut"}, key=_method_rank):
        vals = prows.get(meth) or {}
        ref.append([(f"{method_label(meth)} (paper)", f"{method_label(meth, True)} (paper)"),
                    fmt_params([vals["params"]]) if vals.get("params") is not None else "n/a"]
                   + ["n/a" if vals.get(m[0]) is None else f"{float(vals[m[0]]):.{m[3]}f}" for m in E2E_METRICS])
    hk = _hut_row(rows, _paper_model(paper, "table3"))
    pv = prows.get("hut") or {}
    diff = [("Ours − paper (HUT)", r"Ours $-$ paper (HUT)"), NA]
    for m in E2E_METRICS:
        ours = cells[(hk, m[0])].mean(m[2]) if hk else None
        diff.append(_signed(ours - float(pv[m[0]]) if ours is not None and pv.get(m[0]) is not None else None, m[3]))
    n_runs = len([r for r in mine if r.status == "success"])
    caption = [
        f"E2E NLG, experiment `{lay.experiment}` ({n_runs} finished runs): the record's best epoch. "
        f"BLEU, METEOR and ROUGE-L × 100; NIST and CIDEr as computed (the E2E convention of LoRA's Table 3, "
        f"whose rows the paper compares with). #Params: trainable parameters (the record's `params.adapter`).",
        _std_note(lay.seeds),
    ]
    if not mine:
        notes.insert(0, f"No records of experiment `{lay.experiment}` (task e2e) under `{results_dir}` yet"
                        + (f" (expected {len(lay.methods)} methods × {len(lay.seeds)} seeds)."
                           if lay.methods and lay.seeds else "."))
    notes += _problem_notes(problems, lay.experiment)
    if hk is None:
        notes.append(f"Ours − paper: no HUT row on the paper's model ({_paper_model(paper, 'table3')}) "
                     f"in this experiment.")
    notes += _paper_missing_note(paper, "table3")
    fields = ["table", "source", "experiment", "model", "method", "variant", "task", "metric", "scale", "mean", "std",
              "n", "n_expected", "seeds", "missing_seeds", "failed_seeds", "running_seeds", "extra_seeds",
              "adapter_params"]
    _summarise(summary, "table3", lay, mine, [cells[(k, "BLEU")] for k in rows])
    return Table("table3", f"Table 3: E2E NLG ({_models_text(mine, paper, 'table3')})" if lay.experiment != "demo"
                 else f"Table 3 (demo): E2E NLG subset ({_models_text(mine, paper, 'table3')})", caption, header,
                 [(None, body), (_paper_block_title(paper, "table3"), ref + [diff])], notes, fields, csv_rows)


# --------------------------------------------------------------------------------------------------
# Cost: what each (task, method, model) scored, how long a run took, how much it trained
# --------------------------------------------------------------------------------------------------
def table_cost(runs: Sequence[Run], experiments: Sequence[str], results_dir: str) -> Table:
    """One row per (task, method, model) of the finished runs of ``experiments``: the paper metric
    (GLUE: ``score`` × 100; E2E: BLEU × 100), the wall time of one run (training + every evaluation,
    as the record's ``wall_time_s``) and the trainable parameters (adapter, and with the task head)."""
    mine = [r for r in runs if r.experiment in experiments and r.status == "success"]
    groups: dict[tuple, list[Run]] = {}
    for r in mine:
        groups.setdefault((r.experiment, r.task, r.method, r.variant, r.model), []).append(r)

    def order(k: tuple) -> tuple:
        return (k[0], _task_rank(k[1]), _method_rank(k[2]), k[3] or "", k[4])

    header = ["Experiment", "Task", "Method", "Model", "Metric", "Score", "Seeds", "Wall time / run (s)",
              "Adapter params", "Trainable params"]
    body, csv_rows = [], []
    for k in sorted(groups, key=order):
        rs = sorted(groups[k], key=lambda r: r.seed)
        metric, mlabel = ("BLEU", "BLEU") if k[1] == "e2e" else ("score", GLUE_METRIC_LABEL.get(k[1], "accuracy"))
        cell = Cell(expected=tuple(r.seed for r in rs))  # a seed whose record lacks the metric shows as [n/N]
        for r in rs:
            v = r.best.get(metric)
            if isinstance(v, (int, float)):
                cell.values[r.seed] = float(v)
        walls = [r.wall_time_s for r in rs if r.wall_time_s is not None]
        wall = statistics.fmean(walls) if walls else None
        adapter = sorted({int(r.params["adapter"]) for r in rs if isinstance(r.params.get("adapter"), int)})
        trainable = sorted({int(r.params["trainable"]) for r in rs if isinstance(r.params.get("trainable"), int)})
        label = method_label(k[2]) + (f" ({k[3]})" if k[3] else "")
        seeds = ",".join(str(r.seed) for r in rs)
        body.append([k[0], TASK_LABEL.get(k[1], k[1]), (label, tex_escape(label)), MODEL_LABEL.get(k[4], k[4]),
                     mlabel, cell.text(100.0, 1), seeds, NA if wall is None else f"{wall:.1f}",
                     " / ".join(f"{n:,}" for n in adapter) or NA, " / ".join(f"{n:,}" for n in trainable) or NA])
        csv_rows.append({"experiment": k[0], "task": k[1], "method": k[2], "variant": k[3] or "", "model": k[4],
                         "metric": metric, **{f: cell.csv(100.0)[f] for f in ("mean", "std", "n", "seeds")},
                         "wall_time_s_mean": _num(wall, 2), "adapter_params": " ".join(map(str, adapter)),
                         "trainable_params": " ".join(map(str, trainable))})
    caption = [
        f"Finished runs of experiment(s) {', '.join(f'`{e}`' for e in experiments)} under `{results_dir}`, one "
        "row per task, method and model: the paper metric × 100 (GLUE: the task's metric at the best dev epoch; "
        "E2E: BLEU) as mean ± sample standard deviation over the seeds listed; wall time of one run (training "
        "and every evaluation, from the record's `wall_time_s`; mean over seeds, on whatever machine ran it); "
        "trainable parameters without the task head (Adapter) and with it (Trainable).",
    ]
    notes = [] if body else [f"No finished runs of {', '.join(experiments)} yet."]
    fields = ["experiment", "task", "method", "variant", "model", "metric", "mean", "std", "n", "seeds",
              "wall_time_s_mean", "adapter_params", "trainable_params"]
    return Table("cost", "Run cost: score, wall time and trainable parameters per run", caption, header,
                 [(None, body)], notes, fields, csv_rows, align="lllllrrrrr", md_align="lllllrrrrr")


# --------------------------------------------------------------------------------------------------
# Tables 4 and 5 (grids)
# --------------------------------------------------------------------------------------------------
def _targets_label(targets: tuple[str, ...], tex: bool = False) -> str:
    if not targets:
        return "?"
    if tex:
        return "$" + ", ".join(f"W_{{{t.replace('_', '')}}}" for t in targets) + "$"
    return ", ".join(f"W{t}" for t in targets)


def _grid_runs(runs, problems, lay):
    mine = [r for r in runs if r.experiment == lay.experiment]
    return _dedupe(mine, lambda r: (r.task, r.method, r.model, r.targets, r.r), problems)


def _cell_rank(c: tuple[tuple[str, ...], int | None], expected: Sequence) -> tuple:
    if c in expected:
        return (0, list(expected).index(c))
    return (1, len(c[0]), [(_order_targets([t]), t) for t in c[0]], c[1] if c[1] is not None else -1)


def _models_text(mine: Sequence[Run], paper: Mapping[str, Any], key: str) -> str:
    models = sorted({r.model for r in mine}) or [_paper_model(paper, key)]
    return ", ".join(MODEL_LABEL.get(m, m) for m in models)


def table_targets(runs, problems, lay: Layout, paper, summary: Summary, results_dir: str) -> Table:
    """Table 4: columns = (targets, r), rows = tasks (per method when not HUT)."""
    mine = _grid_runs(runs, problems, lay)
    cols = sorted(set(lay.cells) | {(r.targets, r.r) for r in mine}, key=lambda c: _cell_rank(c, lay.cells))
    rowkeys = sorted({(r.method, r.task) for r in mine} | {("hut", t) for t in lay.tasks},
                     key=lambda k: (_method_rank(k[0]), _task_rank(k[1])))
    cells = {(rk, c): Cell(expected=lay.seeds) for rk in rowkeys for c in cols}
    for r in mine:
        _add(cells[((r.method, r.task), (r.targets, r.r))], r, _value(r, "score", problems))

    def rlabel(rk, tex=False):
        s = TASK_LABEL.get(rk[1], rk[1])
        return s if rk[0] == "hut" else f"{s} ({method_label(rk[0], tex)})"

    header = [("Weight type", "Weight type")] + [(_targets_label(c[0]), _targets_label(c[0], True)) for c in cols]
    rank_row = ["Rank r"] + [str(c[1]) if c[1] is not None else "?" for c in cols]
    body, notes, csv_rows = [rank_row], [], []
    for rk in rowkeys:
        body.append([(rlabel(rk), rlabel(rk, True))] + [cells[(rk, c)].text(GLUE_SCALE, GLUE_DIGITS) for c in cols])
        for c in cols:
            notes += _status_notes(f"{rlabel(rk)} · {_targets_label(c[0])} r={c[1]}", cells[(rk, c)])
            csv_rows.append({"table": "table4", "source": "ours", "experiment": lay.experiment, "method": rk[0],
                             "task": rk[1], "targets": ",".join(c[0]), "r": "" if c[1] is None else str(c[1]),
                             "metric": "score", "scale": "100", **cells[(rk, c)].csv(GLUE_SCALE)})
    prows = (_paper_table(paper, "table4").get("rows") or {})
    same_model = {r.model for r in mine if r.method == "hut"} <= {_paper_model(paper, "table4")}
    ref, diff = [], []
    for task in sorted(set(lay.tasks) | {rk[1] for rk in rowkeys if rk[0] == "hut"}, key=_task_rank):
        if not prows:
            ref = [["HUT (paper)"] + ["n/a"] * len(cols)]
            diff = [[("Ours − paper", "Ours $-$ paper")] + [NA] * len(cols)]
            break
        pv = prows.get(task) or {}
        lab = TASK_LABEL.get(task, task)
        ref.append([f"{lab} (paper)"] + ["n/a" if pv.get(",".join(c[0])) is None else f"{float(pv[','.join(c[0])]):.1f}"
                                         for c in cols])
        dr = [(f"{lab}: ours − paper", f"{lab}: ours $-$ paper")]
        for c in cols:
            ours = cells[(("hut", task), c)].mean(GLUE_SCALE) if ("hut", task) in rowkeys and same_model else None
            p = pv.get(",".join(c[0]))
            dr.append(_signed(ours - float(p) if ours is not None and p is not None else None, GLUE_DIGITS))
        diff.append(dr)
    caption = (f"Which weight matrices to adapt with HUT, experiment `{lay.experiment}`: dev score × 100 (MRPC: "
               f"accuracy; CoLA: Matthews corr.) of the best epoch, model {_models_text(mine, paper, 'table4')}; the "
               f"rank r of each column (from the records' `config.method`) keeps the parameter budget equal.")
    return _grid_table("table4", "Table 4: HUT on different attention weight matrices", caption, header, body,
                       ref + diff, notes, csv_rows, cells, lay, mine, problems, paper, summary, results_dir)


def table_ranks(runs, problems, lay: Layout, paper, summary: Summary, results_dir: str) -> Table:
    """Table 5: columns = r, rows = (task, targets) (per method when not HUT)."""
    mine = _grid_runs(runs, problems, lay)
    ranks = sorted({c[1] for c in lay.cells if c[1] is not None} | {r.r for r in mine if r.r is not None})
    exp_targets = []
    for c in lay.cells:
        if c[0] not in exp_targets:
            exp_targets.append(c[0])
    rowkeys = sorted({(r.method, r.task, r.targets) for r in mine}
                     | {("hut", t, tg) for t in lay.tasks for tg in exp_targets},
                     key=lambda k: (_method_rank(k[0]), _task_rank(k[1]),
                                    _cell_rank((k[2], None), [(tg, None) for tg in exp_targets])))
    cells = {(rk, rr): Cell(expected=lay.seeds) for rk in rowkeys for rr in ranks}
    for r in mine:
        if r.r is None:
            problems.append(Problem(r.path, "no config.method.r (cannot be placed in Table 5)"))
            continue
        _add(cells[((r.method, r.task, r.targets), r.r)], r, _value(r, "score", problems))

    def tlabel(rk, tex=False):
        s = TASK_LABEL.get(rk[1], rk[1])
        return s if rk[0] == "hut" else f"{s} ({method_label(rk[0], tex)})"

    header = ["Task", "Weight type"] + [f"r = {rr}" for rr in ranks]
    body, notes, csv_rows = [], [], []
    for rk in rowkeys:
        body.append([(tlabel(rk), tlabel(rk, True)), (_targets_label(rk[2]), _targets_label(rk[2], True))]
                    + [cells[(rk, rr)].text(GLUE_SCALE, GLUE_DIGITS) for rr in ranks])
        for rr in ranks:
            notes += _status_notes(f"{tlabel(rk)} · {_targets_label(rk[2])} r={rr}", cells[(rk, rr)])
            csv_rows.append({"table": "table5", "source": "ours", "experiment": lay.experiment, "method": rk[0],
                             "task": rk[1], "targets": ",".join(rk[2]), "r": str(rr), "metric": "score",
                             "scale": "100", **cells[(rk, rr)].csv(GLUE_SCALE)})
    prows = (_paper_table(paper, "table5").get("rows") or {})
    same_model = {r.model for r in mine if r.method == "hut"} <= {_paper_model(paper, "table5")}
    ref, diff = [], []
    for rk in [k for k in rowkeys if k[0] == "hut"]:
        if not prows:
            ref = [["HUT (paper)", "all"] + ["n/a"] * len(ranks)]
            diff = [[("Ours − paper", "Ours $-$ paper"), "all"] + [NA] * len(ranks)]
            break
        pv = ((prows.get(rk[1]) or {}).get(",".join(rk[2])) or {})
        lab = TASK_LABEL.get(rk[1], rk[1])
        tl = (_targets_label(rk[2]), _targets_label(rk[2], True))
        ref.append([f"{lab} (paper)", tl] + ["n/a" if pv.get(rr) is None else f"{float(pv[rr]):.1f}" for rr in ranks])
        dr = [(f"{lab}: ours − paper", f"{lab}: ours $-$ paper"), tl]
        for rr in ranks:
            ours = cells[(rk, rr)].mean(GLUE_SCALE) if same_model else None
            d = ours - float(pv[rr]) if ours is not None and pv.get(rr) is not None else None
            dr.append(_signed(d, GLUE_DIGITS))
        diff.append(dr)
    caption = (f"HUT's rank r against the adapted matrices, experiment `{lay.experiment}`: dev score × 100 (MRPC: "
               f"accuracy; CoLA: Matthews corr.) of the best epoch, model {_models_text(mine, paper, 'table5')}.")
    return _grid_table("table5", "Table 5: HUT's rank r on different weight matrices", caption, header, body,
                       ref + diff, notes, csv_rows, cells, lay, mine, problems, paper, summary, results_dir)


GRID_FIELDS = ["table", "source", "experiment", "method", "task", "targets", "r", "metric", "scale", "mean", "std", "n",
               "n_expected", "seeds", "missing_seeds", "failed_seeds", "running_seeds", "extra_seeds"]


def _grid_table(key: str, title: str, caption: str, header: list, body: list, reference: list, notes: list[str],
                csv_rows: list[dict], cells: Mapping[Any, Cell], lay: Layout, mine: Sequence[Run],
                problems: list[Problem], paper: Mapping[str, Any], summary: Summary, results_dir: str) -> Table:
    """The part Tables 4 and 5 share: caption, notes on missing/odd records and paper figures, summary."""
    if not mine:
        notes.insert(0, f"No records of experiment `{lay.experiment}` under `{results_dir}` yet.")
    notes += _problem_notes(problems, lay.experiment)
    notes += _paper_missing_note(paper, key)
    _summarise(summary, key, lay, mine, cells.values())
    return Table(key, title, [caption, _std_note(lay.seeds)], header,
                 [(None, body), (_paper_block_title(paper, key), reference)], notes, GRID_FIELDS, csv_rows)


# --------------------------------------------------------------------------------------------------
# Table 2 (FLOPs)
# --------------------------------------------------------------------------------------------------
@dataclass
class FlopsTable(Table):
    """Table 2: an analytic and a measured grid under one caption."""

    analytic: Table | None = None
    measured: Table | None = None


def table_flops(paper: Mapping[str, Any], measure: bool, summary: Summary,
                model: str = "roberta_large") -> FlopsTable:
    from hut import flops

    ptab = _paper_table(paper, "table2")
    setting = dict(flops.PAPER_SETTING)
    setting.update(ptab.get("setting") or {})
    n_mat = int(setting["layers"]) * len(setting["targets"])
    pg = ptab.get("analytic_gflops") or {}
    header = ["Method", "Source", "FLOPs per adapted d×k matrix", "GFLOPs, ours", "GFLOPs, paper", "Ours − paper"]
    body, csv_rows = [], []
    for m in ("lora", "hut"):
        formula, _ = flops.ANALYTIC[m]
        val = flops.analytic_flops(m, int(setting["d"]), int(setting["k"]), int(setting["r"]), n_mat)
        p = pg.get(m)
        ours = round(val / 1e9, 2)
        body.append([(method_label(m), method_label(m, True)), "analytic (Eq. 10–11)", f"`{formula}`",
                     f"{ours:.2f}", "n/a" if p is None else f"{float(p):.2f}",
                     _signed(ours - float(p), 2) if p is not None else NA])
        csv_rows.append({"section": "analytic", "method": m, "formula": formula, "d": str(setting["d"]),
                         "k": str(setting["k"]), "r": str(setting["r"]), "matrices": str(n_mat), "flops": str(val),
                         "gflops": f"{val / 1e9:.6f}", "paper_gflops": "" if p is None else f"{float(p):.2f}"})
    analytic = Table("table2a", "", [], header, [(None, body)], [], [], [], md_align="lllrrr")

    mheader = ["Method", "Adapter params", "Train step GFLOPs", "extra", "Inference GFLOPs", "extra",
               "Extra elementwise MFLOPs (train / infer)", "Mergeable", "Measured on"]
    mbody = []
    mnotes: list[str] = []
    if measure:
        ms = flops.measure_all(model, sorted(flops.registered_methods(), key=_method_rank))
        floor = ms[0]
        for m in ms:
            lab = (method_label(m.method), method_label(m.method, True))
            if m.error:
                mbody.append([lab] + [NA] * 6 + ["", "failed"])
                mnotes.append(f"{lab[0]}: could not be measured ({m.error}).")
                summary.add(f"table2: {m.method}: FLOPs not measured ({m.error})")
                continue
            is_floor = m.method == "frozen"
            dt, di = m.train - floor.train, m.infer - floor.infer
            mbody.append([
                lab, "0" if is_floor else f"{m.params.get('adapter', 0):,}",
                f"{m.train.matmul / 1e9:.2f}", NA if is_floor else _signed(dt.matmul / 1e9, 2),
                f"{m.infer.matmul / 1e9:.2f}", NA if is_floor else _signed(di.matmul / 1e9, 2),
                NA if is_floor else f"{_signed(dt.elementwise / 1e6, 1)} / {_signed(di.elementwise / 1e6, 1)}",
                NA if m.mergeable is None else ("yes" if m.mergeable else "no"), m.measured_on])
            csv_rows.append({"section": "measured", "method": m.method,
                             "adapter_params": str(m.params.get("adapter", "")),
                             "train_flops": str(m.train.matmul), "train_extra_flops": str(dt.matmul),
                             "infer_flops": str(m.infer.matmul), "infer_extra_flops": str(di.matmul),
                             "train_elementwise": str(m.train.elementwise),
                             "infer_elementwise": str(m.infer.elementwise),
                             "train_extra_elementwise": str(dt.elementwise),
                             "infer_extra_elementwise": str(di.elementwise),
                             "mergeable": "" if m.mergeable is None else str(m.mergeable).lower(),
                             "measured_on": m.measured_on, "batch": str(flops.BATCH), "seq_len": str(flops.SEQ_LEN)})
    else:
        mnotes.append("Measured FLOPs skipped (`flops=false`).")
    mname = MODEL_LABEL.get(model, model)
    title = f"Table 2: FLOPs of HUT, LoRA and every registered method ({mname})"
    caption = [
        f"(a) **Analytic** — the paper's count (Eq. 10–11) of the FLOPs to form the updated weights once per "
        f"step, independent of the batch: q and v in all {setting['layers']} layers ({n_mat} matrices), "
        f"d = k = {setting['d']}, r = {setting['r']}.",
        f"(b) **Measured** — what a step actually costs: {mname} built from its config "
        f"(`hut.models.load_model(..., pretrained=False)`, no download) on the meta device where the method's code "
        f"allows it (else on the CPU, see 'Measured on'), each method applied "
        f"with `configs/method/<name>.yaml`, input batch {flops.BATCH} × {flops.SEQ_LEN} tokens, eval mode (dropout "
        f"off), eager attention, 2-label classification head. GFLOPs: matmul FLOPs counted by "
        f"`torch.utils.flop_counter.FlopCounterMode` (2 per multiply-add). Train step = forward + backward of "
        f"`logits.sum()` (no optimiser step); inference = one forward with the method unmerged (a mergeable "
        f"method costs exactly the frozen model's forward once merged). extra = minus the frozen model with only "
        f"its classification head training (the floor). FlopCounterMode does not count elementwise work; the "
        f"extra elementwise column counts 1 FLOP per output element of pointwise ATen ops, in MFLOPs.",
    ]
    notes = ["Analytic and measured counts are different quantities: (a) counts forming ΔW or W_new once per step; "
             "(b) counts a whole forward/backward pass, in which the backward through the frozen network "
             "(needed by every method that adapts early layers) dominates."] + mnotes
    notes += [f"Paper's figures: {paper.get('short_citation', '')}, {ptab.get('source', 'Table 2')}."]
    fields = ["section", "method", "formula", "d", "k", "r", "matrices", "flops", "gflops", "paper_gflops",
              "adapter_params", "train_flops", "train_extra_flops", "infer_flops", "infer_extra_flops",
              "train_elementwise", "infer_elementwise", "train_extra_elementwise", "infer_extra_elementwise",
              "mergeable", "measured_on", "batch", "seq_len"]
    measured = Table("table2b", "", [], mheader, [(None, mbody)], [], [], [], md_align="lrrrrrrll")
    return FlopsTable("table2", title, caption, header, [(None, body)], notes, fields, csv_rows,
                      analytic=analytic, measured=measured)


def render_flops_md(t: FlopsTable, provenance: str) -> str:
    a, m = t.analytic, t.measured
    assert a is not None and m is not None
    out = [f"# {t.title}", "", t.caption[0], ""]
    out += _md_grid(a)
    out += ["", t.caption[1], ""]
    out += _md_grid(m)
    out += ["", "Notes:", ""] + [f"- {n}" for n in t.notes] + ["", provenance]
    return "\n".join(out) + "\n"


def render_flops_tex(t: FlopsTable, provenance: str) -> str:
    a, m = t.analytic, t.measured
    assert a is not None and m is not None

    def tab(x: Table, spec: str) -> list[str]:
        rows = [" & ".join(_tex(c) for c in r) + r" \\" for _, rs in x.blocks for r in rs]
        return ([r"\begin{tabular}{" + spec + "}", r"\toprule", " & ".join(_tex(h) for h in x.header) + r" \\",
                 r"\midrule"] + rows + [r"\bottomrule", r"\end{tabular}"])

    out = [f"% {tex_escape(provenance)}", "% Requires \\usepackage{booktabs}.", r"\begin{table}[t]", r"\centering",
           r"\small", r"\caption{" + tex_escape(_caption_title(t.title)) + ". " + " ".join(tex_escape(p) for p in t.caption) + "}",
           r"\label{tab:table2}"]
    out += tab(a, "lllrrr") + [r"\par\medskip", r"\resizebox{\linewidth}{!}{%"] + tab(m, "lrrrrrrll") + ["}"]
    out.append(r"\par\smallskip\footnotesize")
    out += [tex_escape(n) + r"\par" for n in t.notes]
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# Figure 3
# --------------------------------------------------------------------------------------------------
def _model_cfg_for(run_model_cfg: Mapping[str, Any] | None, model: str) -> dict | None:
    from hut import flops

    if run_model_cfg and "arch" in run_model_cfg:
        return dict(run_model_cfg)
    try:
        return flops.load_config("model", model)
    except FileNotFoundError:
        return None


def _figure_tasks(averages: Mapping[RowKey, tuple[float | None, dict[str, Cell]]], tasks: Sequence[str]) -> list[str]:
    """The tasks the figure averages over: all columns if some row has them all, else the largest
    task set that some row has (ties: the set most rows have), so every plotted point averages the
    same tasks."""
    have = [frozenset(t for t, c in cells.items() if c.values) for _, cells in averages.values()]
    have = [h for h in have if h]
    if not have:
        return list(tasks)
    if any(h >= set(tasks) for h in have):
        return list(tasks)
    best = max(have, key=lambda h: (len(h), sum(1 for o in have if o >= h),
                                    [-tasks.index(t) for t in sorted(h, key=tasks.index)]))
    return [t for t in tasks if t in best]


def figure3(averages: Mapping[RowKey, tuple[float | None, dict[str, Cell]]], runs: Sequence[Run], lay: Layout,
            paper: Mapping[str, Any], out_dir: Path, measure: bool, summary: Summary,
            tasks: Sequence[str]) -> list[Path]:
    """GLUE average (Table 1 rows) against measured training-step GFLOPs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hut import flops

    use = _figure_tasks(averages, list(tasks))
    partial = list(use) != list(tasks)
    points: list[tuple[float, float, str]] = []
    notes: list[str] = []
    by_row: dict[RowKey, Run] = {}
    for r in sorted(runs, key=lambda r: (r.seed, r.path)):
        if r.experiment == lay.experiment and r.status == "success":
            by_row.setdefault((r.method, r.variant, r.model), r)
    order = sorted(averages.items(), key=lambda kv: (_method_rank(kv[0][0]), kv[0][1] or "", kv[0][2] or ""))
    for k, (_, cells) in order:
        means = [cells[t].mean(GLUE_SCALE) for t in use]
        if not means or any(m is None for m in means) or k not in by_row:
            continue
        avg = statistics.fmean(means)
        if not measure:
            notes.append("FLOPs not measured (flops=false)")
            break
        run = by_row[k]
        mcfg = _model_cfg_for(run.model_cfg, run.model)
        meth = dict(run.method_cfg) if run.method_cfg else None
        if meth is None:
            try:
                meth = flops.load_config("method", run.method)
            except FileNotFoundError:
                meth = None
        if mcfg is None or meth is None:
            notes.append(f"{run.method}: no model/method config to measure")
            continue
        m = flops.measure(mcfg, meth)
        if m.error:
            notes.append(f"{run.method}: {m.error}")
            continue
        label = method_label(k[0]) + (f" [{k[1]}]" if k[1] else "")
        points.append((m.train.matmul / 1e9, avg, label))
    paper_pts: list[tuple[float, float, str]] = []
    prows = (_paper_table(paper, "table1").get("rows") or {})
    model_names = {k[2] for k in averages if k[2]}
    if measure and not partial and model_names == {_paper_model(paper, "table1")}:
        mcfg = flops.load_config("model", _paper_model(paper, "table1"))
        for meth, vals in sorted(prows.items(), key=lambda kv: _method_rank(kv[0])):
            if vals.get("avg") is None:
                continue
            try:
                m = flops.measure(mcfg, flops.load_config("method", meth))
            except FileNotFoundError:
                continue
            if not m.error:
                paper_pts.append((m.train.matmul / 1e9, float(vals["avg"]), method_label(meth) + " (paper)"))

    fig = Figure(figsize=(7.0, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if points:
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=36, color="tab:blue", zorder=3, label="ours")
        xs = [p[0] for p in points + paper_pts]
        mid = (min(xs) + max(xs)) / 2
        for i, (x, y, lab) in enumerate(sorted(points)):
            right = x > mid and len(points) > 1
            ax.annotate(lab, (x, y), textcoords="offset points", xytext=(-6 if right else 6, 6 if i % 2 == 0 else -12),
                        ha="right" if right else "left", fontsize=8)
    if paper_pts:
        ax.scatter([p[0] for p in paper_pts], [p[1] for p in paper_pts], s=50, facecolors="none",
                   edgecolors="tab:red", zorder=3, label="paper (reference)")
        for x, y, lab in paper_pts:
            ax.annotate(lab, (x, y), textcoords="offset points", xytext=(6, -14), fontsize=8, color="tab:red")
    if not points and not paper_pts:
        ax.text(0.5, 0.5, "no complete GLUE rows yet\n(every task of a row needs a finished run)",
                transform=ax.transAxes, ha="center", va="center", fontsize=10, color="0.4")
    ax.set_xlabel(f"GFLOPs per training step (forward + backward, batch {flops.BATCH} × {flops.SEQ_LEN} tokens; "
                  f"measured, FlopCounterMode)", fontsize=8)
    ax.set_ylabel(f"GLUE average (%)\nover {', '.join(TASK_LABEL.get(t, t) for t in use)}"
                  + (" (partial)" if partial else ""), fontsize=8)
    model_txt = ", ".join(sorted(model_names)) or "no runs"
    ax.set_title(f"Figure 3: GLUE average vs. training FLOPs (experiment {lay.experiment}; {model_txt})", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.12, y=0.15)
    if points or paper_pts:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    out = out_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    png, pdf = out / "figure3.png", out / "figure3.pdf"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    _write_bytes(png, buf.getvalue())
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    _write_bytes(pdf, buf.getvalue())
    summary.add(f"figure3: {len(points)} of our points (average over {', '.join(use)}), "
                f"{len(paper_pts)} paper reference points"
                + (f"; skipped: {'; '.join(notes)}" if notes else ""))
    return [png, pdf]


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------
def _write_bytes(path: Path, data: bytes) -> None:
    from hut.records import write_atomic

    if path.exists() and path.read_bytes() == data:
        return
    write_atomic(path, data)


def _summarise(summary: Summary, key: str, lay: Layout, mine: Sequence[Run], cells: Iterable[Cell]) -> None:
    cells = list(cells)
    ok = sum(c.n for c in cells)
    failed = sum(len(c.failed) for c in cells)
    running = sum(len(c.running) for c in cells)
    missing = sum(len(c.missing) for c in cells)
    expected = sum(len(c.expected) for c in cells if c.expected is not None)
    summary.add(f"{key} <- experiment '{lay.experiment}': {ok} cell results from {len(mine)} records"
                + (f"; {missing} of {expected} expected seed-runs missing" if expected else "")
                + (f"; {failed} failed" if failed else "") + (f"; {running} running" if running else ""))


@dataclass
class Options:
    results_dir: str = "results/runs"
    out_dir: str = "results"
    experiment_map: dict[str, str] = field(default_factory=lambda: {f"table{i}": f"table{i}" for i in (1, 3, 4, 5)})
    tables: tuple[str, ...] = ("1", "2", "3", "4", "5")
    figure: bool = True
    flops: bool = True
    flops_model: str = "roberta_large"  # the model of Table 2's measured part
    paper: str = str(PAPER_FILE)
    argv: tuple[str, ...] = ()  # as given: the provenance line names the command that rebuilds a table


def parse_args(argv: Sequence[str]) -> Options:
    o = Options(argv=tuple(argv))
    tables_given = False
    for a in argv:
        k, eq, v = a.partition("=")
        k = k.lstrip("+")
        if not eq:
            raise SystemExit(f"bad argument {a!r} (expected key=value)\n{USAGE}")
        if k == "results_dir":
            o.results_dir = v
        elif k == "out_dir":
            o.out_dir = v
        elif k == "experiment":
            o.experiment_map.update({"table1": v, "table3": v})
            if not tables_given:
                o.tables = ("1", "3")
        elif k == "experiment_map":
            for pair in _split(v):
                t, sep, e = pair.partition(":")
                if not sep or t not in ("table1", "table3", "table4", "table5") or not e:
                    raise SystemExit(f"bad experiment_map entry {pair!r} (tableN:experiment, N in 1,3,4,5)\n{USAGE}")
                o.experiment_map[t] = e
        elif k == "tables":
            ts = tuple(x.replace("table", "") for x in _split(v))
            if any(t not in ("1", "2", "3", "4", "5") for t in ts):
                raise SystemExit(f"tables= takes numbers 1-5 (got {v!r})\n{USAGE}")
            o.tables, tables_given = ts, True
        elif k == "flops_model":
            o.flops_model = v
        elif k == "paper":
            o.paper = v
        elif k in ("figure", "flops"):
            if v.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise SystemExit(f"{k}= takes true or false (got {v!r})")
            setattr(o, k, v.lower() in ("true", "1", "yes"))
        else:
            raise SystemExit(f"unknown key {k!r}\n{USAGE}")
    return o


def build(opts: Options, log: Callable[[str], None] = print) -> dict:
    """Write the tables (and Figure 3); return {written, problems, summary}."""
    runs, problems = load_runs(opts.results_dir)
    paper = load_paper(opts.paper)
    out = Path(opts.out_dir)
    summary = Summary()
    written: list[Path] = []
    args = list(opts.argv) or [f"results_dir={opts.results_dir}", f"out_dir={opts.out_dir}"]
    provenance = (f"Generated by `python -m hut.aggregate {' '.join(args)}` from the records under "
                  f"`{opts.results_dir}` (paths relative to it); do not edit by hand.")
    if not Path(opts.results_dir).is_dir():
        summary.add(f"results_dir {opts.results_dir} does not exist: tables are empty")

    def emit(t: Table, md: str, tex: str) -> None:
        d = out / "tables"
        d.mkdir(parents=True, exist_ok=True)
        for ext, text in (("md", md), ("tex", tex), ("csv", render_csv(t))):
            p = d / f"{t.key}.{ext}"
            _write_bytes(p, text.encode("utf-8"))
            written.append(p)

    averages: dict = {}
    lay1 = layout("table1", opts.experiment_map["table1"])
    t1 = None
    if "1" in opts.tables:
        t1, averages = table_glue(runs, problems, lay1, paper, summary, opts.results_dir)
        emit(t1, render_md(t1, provenance), render_tex(t1, provenance))
    if "2" in opts.tables:
        t2 = table_flops(paper, opts.flops, summary, opts.flops_model)
        emit(t2, render_flops_md(t2, provenance), render_flops_tex(t2, provenance))
    if "3" in opts.tables:
        t3 = table_e2e(runs, problems, layout("table3", opts.experiment_map["table3"]), paper, summary,
                       opts.results_dir)
        emit(t3, render_md(t3, provenance), render_tex(t3, provenance))
    if "4" in opts.tables:
        t4 = table_targets(runs, problems, layout("table4", opts.experiment_map["table4"]), paper, summary,
                           opts.results_dir)
        emit(t4, render_md(t4, provenance), render_tex(t4, provenance))
    if "5" in opts.tables:
        t5 = table_ranks(runs, problems, layout("table5", opts.experiment_map["table5"]), paper, summary,
                         opts.results_dir)
        emit(t5, render_md(t5, provenance), render_tex(t5, provenance))
    if "1" in opts.tables or "3" in opts.tables:
        exps = sorted({opts.experiment_map[f"table{i}"] for i in ("1", "3") if i in opts.tables})
        tc = table_cost(runs, exps, opts.results_dir)
        emit(tc, render_md(tc, provenance), render_tex(tc, provenance))
    if opts.figure and "1" in opts.tables:
        tasks = list(next(iter(averages.values()))[1]) if averages else list(lay1.tasks)
        written += figure3(averages, runs, lay1, paper, out, opts.flops, summary, tasks)

    used = set(opts.experiment_map[f"table{i}"] for i in (1, 3, 4, 5) if str(i) in opts.tables)
    other = sorted({r.experiment for r in runs} - used)
    if other:
        summary.add(f"ignored records of experiment(s) not in these tables: {', '.join(other)}")
    for line in summary.lines:
        log(f"[aggregate] {line}")
    seen = set()
    for p in problems:
        if (p.path, p.message) in seen:
            continue
        seen.add((p.path, p.message))
        log(f"[aggregate] WARNING {Path(opts.results_dir) / p.path}: {p.message} (skipped)")
    _log_missing(runs, opts, log)
    for p in written:
        log(f"[aggregate] wrote {p}")
    return {"written": written, "problems": problems, "summary": summary.lines}


def _log_missing(runs: Sequence[Run], opts: Options, log: Callable[[str], None]) -> None:
    """What is still to run, compactly: per table, per method (1, 3) or task (4, 5)."""
    for i in ("1", "3", "4", "5"):
        if i not in opts.tables:
            continue
        lay = layout(f"table{i}", opts.experiment_map[f"table{i}"])
        if lay.seeds is None:
            continue
        ok = [r for r in runs if r.experiment == lay.experiment and r.status == "success"]
        groups: list[tuple[str, list[str]]] = []  # (group, missing cells)
        if i in ("1", "3"):
            have = {(r.task, r.method, r.seed) for r in ok}
            for m in lay.methods:
                miss = []
                for t in lay.tasks:
                    seeds = [s for s in lay.seeds if (t, m, s) not in have]
                    if seeds:
                        miss.append(f"{t} seeds {','.join(map(str, seeds))}")
                groups.append((m, miss))
            n_cells = len(lay.tasks)
        else:
            have = {(r.task, r.method, r.targets, r.r, r.seed) for r in ok}
            for t in lay.tasks:
                miss = []
                for targets, r in lay.cells:
                    seeds = [s for s in lay.seeds if (t, "hut", targets, r, s) not in have]
                    if seeds:
                        miss.append(f"{','.join(targets)} r={r} seeds {','.join(map(str, seeds))}")
                groups.append((t, miss))
            n_cells = len(lay.cells)
        todo = [(g, m) for g, m in groups if m]
        if not todo:
            continue
        if not ok:
            log(f"[aggregate] table{i}: nothing finished yet for experiment '{lay.experiment}'")
            continue
        log(f"[aggregate] table{i}: missing runs (experiment '{lay.experiment}'):")
        for g, miss in todo:
            if len(miss) == n_cells and all(x.endswith("seeds " + ",".join(map(str, lay.seeds))) for x in miss):
                log(f"[aggregate]   {g}: nothing finished yet")
            else:
                log(f"[aggregate]   {g}: " + "; ".join(miss))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    build(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
