"""Figure 4's mini table: SQuAD v1.1 exact match and F1 of the two runs the figure shows (one per
method, one seed) beside the trivial baseline of :func:`hut.tasks.squad.overlap_baseline` on the same
questions. Each run's scores come from its record, checked against its ``predictions.json``
rescored by :mod:`hut.metrics.squad`. The figure itself: :mod:`hut.results.figures.figure4`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from hut.metrics.squad import squad_scores
from hut.models import load_tokenizer
from hut.runs import read_record
from hut.results.labels import method_label, model_label
from hut.results.render.table import Table
from hut.results.runs import Run
from hut.results.tables.base import Built, Inputs
from hut.tasks import build_task
from hut.tasks.squad import PREDICTIONS_FILE, overlap_baseline

DEFAULT_METHODS, DEFAULT_SEED = ("hut", "lora"), 0  # as configs/cli/figure4.yaml


def figure_runs(runs: Sequence[Run], experiment: str, methods: Sequence[str], seed: int) -> list[Run]:
    """The finished SQuAD run of each method (in ``methods`` order) of ``experiment`` and ``seed``."""
    out = []
    for m in methods:
        found = [r for r in runs if r.experiment == experiment and r.task == "squad" and r.method == m
                 and r.seed == seed and r.status == "success"]
        if len(found) != 1:
            raise ValueError(f"experiment '{experiment}' has {len(found)} finished squad runs of "
                             f"method {m} with seed {seed} (need exactly 1); run them first")
        out.append(found[0])
    return out


def scores_checked(folder: Path, rec: dict, examples: list[dict]) -> tuple[dict, dict[str, str]]:
    preds = json.loads((folder / PREDICTIONS_FILE).read_text(encoding="utf-8"))
    rescored = squad_scores(preds, {ex["id"]: ex["answers"]["text"] for ex in examples})
    last = rec["last"]
    for k in ("exact_match", "f1"):
        if abs(rescored[k] - last[k]) > 1e-9:
            raise ValueError(f"{folder / PREDICTIONS_FILE}: rescored {k} {rescored[k]:.4f} != the record's {last[k]:.4f}")
    return rescored, preds


def evaluated(inp: Inputs, methods: Sequence[str] = DEFAULT_METHODS, seed: int = DEFAULT_SEED):
    """(runs, their records, the task that evaluated them, [(scores, predictions)] per run).

    The runs must have evaluated the same questions (equal ``task`` and ``data`` configs)."""
    runs = figure_runs(inp.runs, inp.experiments["figure4"], methods, seed)
    root = Path(inp.results_dir)
    recs = [read_record(root / r.path) for r in runs]
    for r, rec in zip(runs[1:], recs[1:]):
        for key in ("task", "data"):
            if rec["config"][key] != recs[0]["config"][key]:
                raise ValueError(f"{root / r.path}: its {key} config differs from {root / runs[0].path}'s: "
                                 f"the two runs did not answer the same questions")
    cfg = recs[0]["config"]
    task = build_task(cfg, load_tokenizer(cfg["model"]))
    examples = task.eval_examples()
    return runs, recs, task, [scores_checked((root / r.path).parent, rec, examples) for r, rec in zip(runs, recs)]


def build_figure4_table(inp: Inputs, methods: Sequence[str] = DEFAULT_METHODS, seed: int = DEFAULT_SEED) -> Built:
    """The mini table (the registered builder ``figure4`` of :data:`hut.results.tables.TABLES`)."""
    runs, _, task, checked = evaluated(inp, methods, seed)
    examples = task.eval_examples()
    base = squad_scores(overlap_baseline(examples), {ex["id"]: ex["answers"]["text"] for ex in examples})
    return Built(build_table(runs, [c[0] for c in checked], base, len(examples), inp.experiments["figure4"]))


def build_table(runs: Sequence[Run], scores: Sequence[dict], baseline: dict, n_questions: int, experiment: str) -> Table:
    entries = [(method_label(r.method, r.label), model_label(r.model), str(r.seed), r.params.get("adapter", 0), s)
               for r, s in zip(runs, scores)]
    entries.append(("baseline: the context sentence with most question words", "–", "–", 0, baseline))
    rows = [[m, mo, sd, f"{p:,}", f"{s['exact_match']:.2f}", f"{s['f1']:.2f}"] for m, mo, sd, p, s in entries]
    fields = ["method", "model", "seed", "adapter_params", "exact_match", "f1", "n_questions"]
    csv_rows = [dict(zip(fields, [m, mo, sd, str(p), f"{s['exact_match']:.6f}", f"{s['f1']:.6f}", str(n_questions)]))
                for m, mo, sd, p, s in entries]
    return Table(
        key="figure4", title=f"SQuAD v1.1 exact match and F1 (experiment {experiment})",
        caption=[f"{n_questions} evaluated questions; EM and F1 (%) as the official evaluate-v1.1.py, from each "
                 "run's predictions.json (equal to its record). The paper reports no SQuAD scores."],
        header=["method", "model", "seed", "adapter params", "EM", "F1"], blocks=[(None, rows)], notes=[],
        csv_fields=fields, csv_rows=csv_rows, align="lllrrr", md_align="lllrrr")
