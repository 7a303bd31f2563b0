"""The cost table: what each (task, method row, model) scored, how long a run took, how much it trained.

One row per (experiment, task, method, variant, model, override variant) of the finished runs of
Tables 1 and 3's experiments: the task's paper metric × 100 (GLUE: ``score``; E2E: BLEU), the mean
wall time of one run (training and every evaluation, the record's ``wall_time_s``) and the
trainable parameters without and with the task head.
"""
from __future__ import annotations

import statistics
from typing import Sequence

from hut.results.labels import method_label, model_label, task_label, task_metric
from hut.results.render.table import NA, Table, num, tex_escape
from hut.results.runs import Cell, Run
from hut.results.tables.base import Built, Inputs


def build_cost(inp: Inputs) -> Built:
    experiments = sorted({inp.experiments[t] for t in ("table1", "table3")})
    mine = [r for r in inp.runs if r.experiment in experiments and r.status == "success"]
    groups: dict[tuple, list[Run]] = {}
    for r in mine:
        groups.setdefault((r.experiment, r.task, r.method, r.variant, r.model, r.overrides), []).append(r)

    def order(k: tuple) -> tuple:
        return (k[0], k[1], k[2], k[3] or "", k[4], k[5] or "")

    header = ["Experiment", "Task", "Method", "Model", "Metric", "Score", "Seeds", "Wall time / run (s)",
              "Adapter params", "Trainable params"]
    body, csv_rows = [], []
    for k in sorted(groups, key=order):
        rs = sorted(groups[k], key=lambda r: r.seed)
        metric, mlabel = task_metric(k[1])
        cell = Cell(expected=tuple(r.seed for r in rs))  # a seed whose record lacks the metric shows as [n/N]
        for r in rs:
            v = r.best.get(metric)
            if isinstance(v, (int, float)):
                cell.values[r.seed] = float(v)
                cell.fingerprints[r.seed] = r.fingerprint
                cell.paths[r.seed] = r.path
        walls = [r.wall_time_s for r in rs if r.wall_time_s is not None]
        wall = statistics.fmean(walls) if walls else None
        adapter = _counts(rs, "adapter")
        trainable = _counts(rs, "trainable")
        label = method_label(k[2], rs[0].label) + (f" ({k[3]})" if k[3] and not rs[0].label else "")
        label += f" [{k[5]}]" if k[5] else ""
        seeds = ",".join(str(r.seed) for r in rs)
        body.append([k[0], task_label(k[1]), (label, tex_escape(label)), model_label(k[4]), mlabel, cell.text(100.0, 1),
                     seeds, NA if wall is None else f"{wall:.1f}", " / ".join(f"{n:,}" for n in adapter) or NA,
                     " / ".join(f"{n:,}" for n in trainable) or NA])
        csv_rows.append({"experiment": k[0], "task": k[1], "method": k[2], "variant": k[3] or "", "model": k[4],
                         "overrides": k[5] or "", "metric": metric,
                         **{f: cell.csv(100.0)[f] for f in ("mean", "std", "n", "seeds")},
                         "wall_time_s_mean": num(wall, 2), "adapter_params": " ".join(map(str, adapter)),
                         "trainable_params": " ".join(map(str, trainable))})
    caption = [
        f"Finished runs of experiment(s) {', '.join(f'`{e}`' for e in experiments)} under `{inp.results_dir}`, one "
        "row per task, method and model: the paper metric × 100 (GLUE: the task's metric at the best dev epoch; "
        "E2E: BLEU) as mean ± sample standard deviation over the seeds listed; wall time of one run (training "
        "and every evaluation, from the record's `wall_time_s`; mean over seeds, on whatever machine ran it); "
        "trainable parameters without the task head (Adapter) and with it (Trainable).",
    ]
    notes = [] if body else [f"No finished runs of {', '.join(experiments)} yet."]
    fields = ["experiment", "task", "method", "variant", "model", "overrides", "metric", "mean", "std", "n", "seeds",
              "wall_time_s_mean", "adapter_params", "trainable_params"]
    return Built(Table("cost", "Run cost: score, wall time and trainable parameters per run", caption, header,
                       [(None, body)], notes, fields, csv_rows, align="lllllrrrrr", md_align="lllllrrrrr"))


def _counts(rs: Sequence[Run], key: str) -> list[int]:
    return sorted({int(r.params[key]) for r in rs if isinstance(r.params.get(key), int)})
