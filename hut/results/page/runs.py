"""The page's run list: every run the outputs read and every run its sweep still misses, with its
status (finished / failed with the reason / still running / missing from the sweep), scores, wall
time, git sha, versions, its per-epoch dev curve and its resolved config.

A cell's seeds share most of their config: the section shows, per cell (experiment, task, method
row, model), the resolved config its runs share, and per run only the keys where it differs (the
seed, say). Each finished run links to its record, shipped beside the page (``records/...``).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from hut.results.files import RECORDS_DIR
from hut.results.labels import method_label, model_label, task_label, task_metric
from hut.results.page.base import PageInputs, Section, section
from hut.results.page.sections import esc

VERSIONS = ("torch", "transformers", "peft")


def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flat(v, key + "."))
        else:
            out[key] = json.dumps(v, sort_keys=True, default=str)
    return out


def _status(r) -> str:
    if r.status == "failed":
        err = r.error or {}
        return f"failed: {err.get('reason', '?')}" + (f" at step {err['step']}" if err.get("step") is not None else "")
    return {"success": "finished", "running": "running (in progress or interrupted)"}.get(r.status, r.status)


@section("runs", "Runs: status, provenance, dev curves and configs", order=50)
def runs(p: PageInputs) -> Section:
    read = set(p.read)
    mine = [r for r in p.inp.runs if r.path in read]
    cells: dict[tuple, list] = {}
    for r in sorted(mine, key=lambda r: (r.experiment, r.task, r.method, r.variant or "", r.model, r.overrides or "",
                                         r.seed)):
        cells.setdefault((r.experiment, r.task, r.method, r.variant, r.model, r.overrides), []).append(r)
    plots, out = {}, []
    for k, rs in cells.items():
        configs = [flat(r.config or {}) for r in rs]
        common = {kk: v for kk, v in configs[0].items() if all(c.get(kk) == v for c in configs[1:])}
        name = (f"{task_label(k[1])} · {method_label(k[2], rs[0].label)}" + (f" [{k[3]}]" if k[3] else "")
                + (f" [{k[5]}]" if k[5] else "")
                + f" ({model_label(k[4])}), experiment {k[0]}")
        metric = task_metric(k[1])[0]
        pid = f"dev-{len(plots)}"
        plots[pid] = {"kind": "lines", "title": f"dev {metric} per epoch", "x_label": "epoch",
                      "y_label": f"{metric} × 100",
                      "series": [{"label": f"seed {r.seed}", "method": k[2],
                                  "points": [[h.get("epoch"), 100 * h[metric]] for h in r.history
                                             if isinstance(h.get(metric), (int, float))]} for r in rs]}
        rows = []
        for r, c in zip(rs, configs):
            diff = ", ".join(f"{kk}={v}" for kk, v in sorted(c.items()) if kk not in common) or "–"
            score = r.best.get(metric)
            link = (f'<a href="{RECORDS_DIR}/{esc(r.path)}">record</a>' if p.shipped else f"<code>{esc(r.path)}</code>")
            shown = ", ".join(f"{v} {(r.versions or {}).get(v)}" for v in VERSIONS if (r.versions or {}).get(v))
            rows.append(f'<tr data-status="{esc(r.status)}"><td>{r.seed}</td><td>{esc(_status(r))}</td>'
                        f"<td class=\"num\">{'' if not isinstance(score, (int, float)) else f'{100 * score:.2f}'}</td>"
                        f"<td class=\"num\">{'' if r.wall_time_s is None else f'{r.wall_time_s:.1f}'}</td>"
                        f"<td><code>{esc((r.git_sha or '?')[:10])}</code></td><td>{esc(shown)}</td>"
                        f"<td><code>{esc(diff)}</code></td><td>{link}</td></tr>")
        shared = "\n".join(f"{kk}: {v}" for kk, v in sorted(common.items()))
        out.append(f'<details class="cell" data-method="{esc(k[2])}"><summary>{esc(name)}: {len(rs)} run(s)</summary>'
                   f'<figure class="plot small" data-plot="{pid}"></figure>'
                   "<table><thead><tr><th>seed</th><th>status</th><th>best " + esc(metric) + " × 100</th>"
                   "<th>wall time (s)</th><th>git sha</th><th>versions</th><th>config keys of its own</th>"
                   "<th>record</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
                   f"<details><summary>resolved config shared by these runs</summary><pre>{esc(shared)}</pre>"
                   "</details></details>")
    missing = []
    for key, b in p.built.items():
        pr = b.progress
        if pr is None:
            continue
        for unit, (group, detail) in pr.units.items():
            seeds = [s for s in pr.seeds if not {(unit, s)} & (pr.done | pr.failed | pr.running)]
            if seeds:
                missing.append(f"<li>{esc(key)} · {esc(group)} · {esc(detail)}: seed(s) "
                               f"{', '.join(map(str, seeds))} missing from the sweep (experiment "
                               f"<code>{esc(pr.experiment)}</code>)</li>")
    body = [f"<p>{len(mine)} records read"
            + (f", shipped under <code>{RECORDS_DIR}/</code> beside this page (no weights)" if p.shipped else "")
            + ". Open a cell for its runs.</p>"] + out
    if missing:
        body.append(f"<details><summary>{len(missing)} sweep cell(s) with runs still to do</summary><ul>"
                    + "".join(missing) + "</ul></details>")
    return Section("runs", "", "\n".join(body), plots)
