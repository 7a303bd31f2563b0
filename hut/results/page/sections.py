"""The page's sections, registered in page order: claims first (the page opens on every claim's
verdict), then per-cell seeds, Pareto plots, learning-rate curves, the tables and figures, the runs
and the report. Each returns its HTML and the specs of its plots (:mod:`.base`)."""
from __future__ import annotations

import html
from typing import Any

from hut.results.figures.costs import MEASURES, span_note
from hut.results.figures.lr_curves import at, lr_curves
from hut.results.figures.pareto import METHOD_TABLES, front, pareto_points
from hut.results.labels import task_label
from hut.results.page.base import PageInputs, Section, section
from hut.results.render.formats import to_html
from hut.results.report import TABLE_TITLES, VERDICT_ORDER, changed_by_tuning, experiments_of, tuned_verdict

E2E_SCALE = {"BLEU": (100.0, 1), "NIST": (1.0, 2), "METEOR": (100.0, 1), "ROUGE_L": (100.0, 1), "CIDEr": (1.0, 2)}


def esc(s: Any) -> str:
    return html.escape(str(s))


def verdict_badge(v: str) -> str:
    return f'<span class="verdict v-{esc(v.replace(" ", "-"))}">{esc(v)}</span>' if v else ""


@section("claims", "Claims and their verdicts", order=10)
def claims(p: PageInputs) -> Section:
    rows = []
    twice = any(r.tuned is not None for r in p.claims)
    for r in p.claims:
        tuned_parts = r.tuned.parts if r.tuned is not None else []
        evidence = "".join(f"<li>{esc(x)}</li>" for x in r.parts) + "".join(
            f"<li>tuned: {esc(x)}</li>" for x in tuned_parts)
        changed = ' <strong class="changed">changes with tuning</strong>' if changed_by_tuning(r) else ""
        tuned_cell = f"<td>{verdict_badge(tuned_verdict(r))}{changed}</td>" if twice else ""
        rows.append(f'<tr class="claim" data-verdict="{esc(r.verdict)}"><td><code>{esc(r.claim["id"])}</code></td>'
                    f"<td>{esc(r.claim['sentence'])}{'' if r.claim.get('quoted') else ' <em>(paraphrase)</em>'}"
                    f"<div class=\"where\">{esc(r.claim.get('where', ''))}</div></td>"
                    f"<td>{verdict_badge(r.verdict)}</td>{tuned_cell}<td><code>{esc(r.experiment or '–')}</code></td>"
                    f"<td><details{' open' if r.verdict == 'does not hold' else ''}><summary>"
                    f"{len(r.parts) + len(tuned_parts)} line(s)</summary><ul>{evidence}</ul></details></td></tr>")
    out = ["<p>Each claim of the paper tested on the records shown here (<code>configs/paper/claims.yaml</code>; "
           "the tests: <code>hut/results/judge/claims.py</code>).</p>"]
    glance = {v: [r.claim["id"] for r in p.claims if r.verdict == v] for v in VERDICT_ORDER}
    if p.claims:
        out.append('<p class="glance">At a glance: ' + "; ".join(
            f"{verdict_badge(v)} {', '.join(f'<code>{esc(i)}</code>' for i in ids)}" for v, ids in glance.items() if ids)
            + "</p>")
    if rows:
        verdicts = ("<th>verdict as configured</th><th>verdict tuned</th>" if twice else "<th>verdict</th>")
        out.append(f"<table><thead><tr><th>claim</th><th>sentence</th>{verdicts}<th>records</th>"
                   "<th>evidence</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
        if twice:
            out.append("<p>As configured: every row at its own learning rate. Tuned: each method at the learning rate "
                       "its search chose on data that is not reported (the report's 'Learning-rate search').</p>")
    else:
        out.append("<p>No claim is about the tables of this aggregation.</p>")
    if p.claims_elsewhere:
        out.append("<p>Not tested here (their tables are not part of this aggregation): "
                   + ", ".join(f"<code>{esc(c['id'])}</code> ({esc(TABLE_TITLES.get(c['table'], c['table']))})"
                               for c in p.claims_elsewhere) + ".</p>")
    return Section("claims", "Claims and their verdicts", "\n".join(out),
                   data={"claims": [{"id": r.claim["id"], "verdict": r.verdict, "experiment": r.experiment,
                                     "evidence": list(r.parts),
                                     **({"verdict_tuned": tuned_verdict(r), "evidence_tuned": list(r.tuned.parts)}
                                        if r.tuned is not None else {})} for r in p.claims]})


@section("cells", "Seeds per cell: every seed, mean, 95% interval, the paper's figure and the verdict", order=20)
def cells(p: PageInputs) -> Section | None:
    plots, out = {}, []
    for key, b in p.built.items():
        if not b.cells:
            continue
        by_col: dict[str, list] = {}
        for c in b.cells:
            by_col.setdefault(c.column_label, []).append(c)
        out.append(f"<h3>{esc(b.table.title)}</h3><div class=\"grid\">")
        for col, cs in by_col.items():
            pid = f"cells-{key}-{len(plots)}"
            plots[pid] = {"kind": "strip", "title": f"{col}", "table": key, "x_label": "score (printed units)",
                          "rows": [{"label": c.row, "method": c.method, "values": {str(s): v for s, v in c.values.items()},
                                    "failed": {str(s): why for s, why in c.failed.items()},
                                    "expected": len(c.expected) if c.expected is not None else None,
                                    "paper": c.paper, "paper_std": c.paper_std, "verdict": c.verdict,
                                    "statistic": c.statistic} for c in cs]}
            out.append(f'<figure class="plot" data-plot="{pid}"></figure>')
        out.append("</div>")
    if not plots:
        return None
    head = ("<p>Dots: one per finished seed. Bar: the mean with its 95% t-interval over the seeds (none for one "
            "seed). Diamond: the paper's printed figure (its ± as a thin bar). Right: the cell's verdict against the "
            "paper (<code>hut/results/judge/verdicts.py</code>).</p>")
    return Section("cells", "", head + "\n".join(out), plots)


@section("pareto", "Score against cost: Pareto fronts", order=30)
def pareto(p: PageInputs) -> Section | None:
    plots, out = {}, []
    for key in METHOD_TABLES:
        if key not in p.built or key not in p.inp.experiments or not p.built[key].rows:
            continue
        scale = E2E_SCALE if key == "table3" else {}
        entries = pareto_points(p.inp, key, p.built[key], scale)
        if not entries:
            continue
        out.append(f"<h3>{esc(p.built[key].table.title)}</h3><div class=\"grid\">")
        for entry in entries:
            col = entry["column"]
            title = "average over the tasks" if col == "avg" else (col if key == "table3" else task_label(col))
            pts = entry["points"]
            fronts = {m: front([(q["x"][m], q["y"]) for q in pts if q["x"][m] is not None], MEASURES[m].lower_is_better)
                      for m in MEASURES}
            narrow = {m: span_note([q["x"][m] for q in pts]) for m in MEASURES}
            pid = f"pareto-{key}-{col}"
            plots[pid] = {"kind": "scatter", "title": title, "table": key, "y_label": "mean score (printed units)",
                          "axes": {m: {"label": MEASURES[m].label, "lower_is_better": MEASURES[m].lower_is_better,
                                       "how": MEASURES[m].how, "log": m in ("params", "flops"), "narrow": narrow[m]}
                                   for m in MEASURES},
                          "points": pts, "fronts": fronts}
            out.append(f'<figure class="plot" data-plot="{pid}"></figure>')
        out.append("</div>")
    if not plots:
        return None
    options = "".join(f'<option value="{m}">{esc(MEASURES[m].label)}</option>' for m in MEASURES)
    head = ('<p><label>x axis: <select id="pareto-x">' + options + "</select></label> "
            "Score: higher is better; every cost: lower is better. The line joins the rows no other row beats on "
            "both (the front); a row missing a cost says why under its plot.</p>")
    return Section("pareto", "", head + "\n".join(out), plots)


@section("lr", "Learning-rate sensitivity", order=40)
def learning_rate(p: PageInputs) -> Section | None:
    curves = lr_curves(p.inp.runs, sorted(set(experiments_of(p.inp, p.built).values())), p.inp.searches)
    if not curves:
        return None
    plots, by_task = {}, {}
    for c in curves:
        by_task.setdefault((c["experiment"], c["task_label"], c["metric"]), []).append(c)
    for (exp, task, metric), cs in by_task.items():
        series = []
        for c in cs:
            marks = [{"x": x, "y": at(c, x), "shape": shape, "title": f"{what} {x:g}"} for x, shape, what in
                     ((c["chosen"], "ring", "chosen"),
                      (c["own"], "square", f"{'the paper' if c['own_is_paper'] else 'the row'}'s lr")) if x is not None]
            series.append({"label": c["label"], "method": c["method"],
                           "points": [[q["lr"], q["mean"]] for q in c["points"]],
                           "seeds": [[q["lr"], x] for q in c["points"] for x in q["seeds"].values()],
                           "marks": [m for m in marks if m["y"] is not None]})
            if c["selection"]:
                series.append({"label": f"{c['label']} (on {c['chosen_on']})", "method": c["method"],
                               "points": c["selection"], "dashed": True})
        plots[f"lr-{exp}-{task}"] = {"kind": "lines", "title": f"{task} ({exp})", "x_label": "learning rate",
                                     "y_label": f"{metric} × 100", "log_x": True, "series": series}
    body = ("<p>A row's score on dev at each learning rate its runs used (dots: seeds; line: mean). Where a "
            "learning-rate search ran: dashed, the score on the split it chose on; ring: the chosen learning rate; "
            "square: the row's own (the paper's, for a paper row). The same as "
            "<code>figures/lr_sensitivity.png</code>.</p><div class=\"grid\">"
            + "".join(f'<figure class="plot" data-plot="{pid}"></figure>' for pid in plots) + "</div>")
    return Section("lr", "", body, plots)


@section("tables", "Tables and figures", order=60)
def tables(p: PageInputs) -> Section:
    out = [to_html(b.table) for b in p.built.values()]
    out += [f'<figure class="image"><img src="{esc(f)}" alt="{esc(f)}"><figcaption>{esc(f)}</figcaption></figure>'
            for f in p.figures]
    links = " · ".join(f'<a href="tables/{esc(k)}.csv">{esc(k)}.csv</a>' for k in p.built)
    return Section("tables", "", f"<p>Every table as CSV (one row per cell and seed): {links}</p>" + "\n".join(out))


@section("report", "The reproduction report", order=70)
def report(p: PageInputs) -> Section | None:
    if p.report is None:
        return None
    return Section("report", "", '<p>As <a href="report.md">report.md</a>.</p><details><summary>Show the report'
                   "</summary>" + p.report.html() + "</details>")
