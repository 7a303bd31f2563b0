"""The reproduction report: ``<out_dir>/report.{md,tex,csv}`` (and the page's claims), written by
``python -m hut.aggregate``.

Sections, each derived from the tables this aggregation built and their experiments: the claims
with their verdicts (:mod:`hut.results.judge.claims`; a claim about a table not built here is named,
not tested); per table, the verdict of every cell of ours that stands for a paper cell (returned by
the table builders); per cell, every seed's statistics, the seeds at chance level and the selection
figures (:mod:`hut.results.judge.selection`); the protocol differences between the paper's figures
and ours. The CSV holds one row per claim, verdict and cell.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from hut.config.paper import settings_file
from hut.results.files import write_bytes
from hut.results.judge import claims as claim_tests
from hut.results.judge import protocols
from hut.runs.tuning import SPLIT_LABELS
from hut.results.judge import selection as epoch_selection
from hut.results.judge import stats
from hut.results.judge import verdicts as cell_verdicts
from hut.results.labels import method_label, model_label, task_label, task_metric
from hut.results.layout import layout
from hut.results.render.doc import Doc
from hut.results.render.formats import csv_text
from hut.results.render.table import tex_escape
from hut.results.runs import Run
from hut.results.tables.base import Built, Inputs

TABLE_TITLES = {"table1": "Table 1 (GLUE)", "table2": "Table 2 (FLOPs)", "table3": "Table 3 (E2E NLG)",
                "table4": "Table 4", "table5": "Table 5", "parts": "Parts of HUT (GLUE)"}
CSV_FIELDS = ["kind", "table", "experiment", "id", "label", "task", "method", "variant", "model", "overrides", "n",
              "mean", "std", "median", "statistic", "ours", "paper", "diff", "verdict", "p_equivalence",
              "p_difference", "seeds_needed", "not_converged", "epochs", "best", "last", "split", "gap", "detail"]
VERDICT_ORDER = ("does not hold", "inconclusive", "no records yet", "holds")


def fixed(x: float | None, d: int = 2) -> str:
    return "–" if x is None else f"{x:.{d}f}"


def experiments_of(inp: Inputs, built: Mapping[str, Built]) -> dict[str, str]:
    """table -> the records' experiment, for the tables built here that read records."""
    return {t: inp.experiments[t] for t in built if t in inp.experiments and t not in ("cost", "table2")}


def evaluate_claims(inp: Inputs, built: Mapping[str, Built],
                    claims_file: str | Path | None = None) -> tuple[list[claim_tests.ClaimResult], list[dict]]:
    """(the results of the claims about tables built here, the claims about other tables)."""
    exps = experiments_of(inp, built)
    tables = {k: b.table for k, b in built.items()}
    claims = claim_tests.load_claims(claims_file or claim_tests.CLAIMS_FILE)
    here = [c for c in claims if c["table"] in built]
    # judged twice: on the runs as configured (the rows' own learning rates) and, where a learning-rate
    # search ran, on the tuned runs (each cell at its chosen learning rate)
    configured = protocols.configured(inp.runs)
    searches = [x for x in inp.searches if x.experiment in set(exps.values())]
    tuned = protocols.tuned(inp.runs, searches, inp.results_dir) if searches else None
    out = []
    for c in here:
        res = claim_tests.evaluate(c, configured, exps, tables)
        if tuned is not None and c["test"] != "fewest_flops":
            res.tuned = claim_tests.evaluate(c, tuned, exps, tables)
        out.append(res)
    return out, [c for c in claims if c["table"] not in built]


def _cell_key(r) -> tuple:
    return (r.experiment, r.task, r.method, r.variant, r.model, r.overrides)


def _cell_name(k: tuple, label: str | None) -> str:
    exp, task, method, variant, model, overrides = k
    s = method_label(method, label) + (f" [{variant}]" if variant else "") + (f" [{overrides}]" if overrides else "")
    return f"{task_label(task)} · {s} ({model_label(model)})"


def seed_rows(runs: Sequence[Run], results_dir: str,
              experiments: Sequence[str]) -> tuple[list[list[str]], list[dict], list[float]]:
    """Per cell: every seed's statistics, chance-level seeds and the selection figures."""
    mine = [r for r in runs if r.experiment in experiments]
    sels = epoch_selection.by_cell(mine, Path(results_dir), _cell_key)
    groups: dict[tuple, list] = {}
    for r in mine:
        if r.status == "success":
            groups.setdefault(_cell_key(r), []).append(r)
    rows, csv_rows, gaps = [], [], []
    for k in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
        rs = sorted(groups[k], key=lambda r: r.seed)
        metric, _ = task_metric(k[1])
        vals = {r.seed: 100.0 * float(r.best[metric]) for r in rs if isinstance(r.best.get(metric), (int, float))}
        s = stats.summary(list(vals.values()))
        sel = sels.get(k)
        nc = sel.not_converged if sel else []
        name = _cell_name(k, rs[0].label)
        best, last, split = (sel.mean("best"), sel.mean("last"), sel.mean("split")) if sel and sel.seeds else (None,) * 3
        gap = best - split if best is not None and split is not None else None
        if gap is not None:
            gaps.append(gap)
        values = " ".join(f"{seed}:{v:.1f}" for seed, v in sorted(vals.items()))
        rows.append([name, str(s.n), values, fixed(s.mean, 1), fixed(s.std, 1), fixed(s.median, 1),
                     (f"{len(nc)} ({','.join(map(str, nc))})" if nc else "0") if sel and sel.chance is not None else "?",
                     sel.epochs if sel and sel.seeds else "–", fixed(best), fixed(last), fixed(split), fixed(gap)])
        csv_rows.append({"kind": "cell", "experiment": k[0], "task": k[1], "method": k[2], "variant": k[3] or "",
                         "model": k[4], "overrides": k[5] or "", "label": name, "n": str(s.n),
                         "mean": fixed(s.mean, 6), "std": fixed(s.std, 6), "median": fixed(s.median, 6),
                         "not_converged": " ".join(map(str, nc)), "epochs": sel.epochs if sel else "",
                         "best": fixed(best, 6), "last": fixed(last, 6), "split": fixed(split, 6), "gap": fixed(gap, 6),
                         "detail": values})
    return rows, csv_rows, gaps


def _protocol(doc: Doc, inp: Inputs, built: Mapping[str, Built], cells: int, gaps: Sequence[float],
              experiments: Mapping[str, str]):
    doc.h("Protocol differences")
    items = []
    for key in ("table1", "table3"):
        if key not in built:
            continue
        prows = inp.paper_rows(key)
        rep = [(r, cell_verdicts.reported(key, r)) for r in prows]
        by_stat: dict[str, list[str]] = {}
        for r, x in rep:
            by_stat.setdefault(f"{x.statistic} of {x.seeds}" if x.statistic != "single" else "one figure, seeds not "
                               "stated", []).append(f"{r['method']} {r.get('params', '')}".strip())
        items.append(f"{TABLE_TITLES[key]}: the paper's rows report " + "; ".join(
            f"the {k} ({', '.join(v)})" for k, v in by_stat.items()) + ". Ours is compared with each row through "
            "that row's statistic (our mean and median are both in the per-cell list below); sources: the "
            "`reported` entry of each row in `configs/paper/table6.yaml` / `table7.yaml`.")
        lay = layout(key, experiments.get(key, key))
        paper_seeds = sorted({x.seeds for _, x in rep})
        items.append(f"{TABLE_TITLES[key]}: seeds run here: {len(lay.seeds or ())} "
                     f"({', '.join(map(str, lay.seeds or ()))}) per cell (experiment `{lay.experiment}`); the paper's "
                     f"rows: {', '.join(map(str, paper_seeds))} seeds.")
    if gaps:
        items.append(f"Epoch selection: the paper (and the `best` figure of every record) takes the best dev epoch, "
                     f"chosen on the set it reports. Choosing the epoch on one half of dev and scoring it on the "
                     f"other half instead gives an optimism gap best − split of {sum(gaps) / len(gaps):+.2f} points "
                     f"on average over {len(gaps)} cells (range {min(gaps):+.2f} to {max(gaps):+.2f}; a gap near 0 "
                     f"means the best epoch is also the one a held-out half picks).")
    elif cells:
        items.append("Epoch selection: the paper reports the best dev epoch chosen on the set it reports; none of the "
                     f"{cells} cells here has per-epoch dev predictions its task can rescore, so the optimism gap "
                     "could not be measured.")
    nc = [v for b in built.values() for v in b.verdicts if v.kind == "not comparable"]
    if nc:
        reasons = sorted({v.case.reason for v in nc})
        items.append(f"{len(nc)} cell(s) of ours are not comparable with the paper's: " + "; ".join(reasons)
                     + ". They are listed with the paper's figure for orientation only.")
    if {"table1", "parts"} & set(built):  # tables that print the paper's Table 1 rows, LoRA's among them
        lora = ((settings_file("table6").get("rows") or {}).get("lora") or {}).get("cite", "")
        items.append("LoRA's GLUE row: " + " ".join(str(lora).split()) + ". Its numbers are LoRA's †-row, trained "
                     "without the MNLI initialisation LoRA's own scripts use for MRPC, RTE and STS-B.")
    doc.ul(items)


def tuned_verdict(r: claim_tests.ClaimResult) -> str:
    """The claim's verdict on the tuned runs: 'not searched' where no search ran, 'no tuned runs' where
    none of a search's final runs is about this claim."""
    if r.tuned is None:
        return "not searched"
    return "no tuned runs" if r.tuned.verdict == "no records yet" else r.tuned.verdict


def changed_by_tuning(r: claim_tests.ClaimResult) -> bool:
    return r.tuned is not None and tuned_verdict(r) != "no tuned runs" and tuned_verdict(r) != r.verdict


def _claims(doc: Doc, results: Sequence[claim_tests.ClaimResult], elsewhere: Sequence[dict],
            csv_rows: list[dict]) -> None:
    doc.h("Claims")
    twice = any(r.tuned is not None for r in results)
    if results:
        counts = {v: [r.claim["id"] for r in results if r.verdict == v] for v in VERDICT_ORDER}
        doc.p("At a glance" + (" (as configured)" if twice else "") + ": "
              + "; ".join(f"**{v}**: {', '.join(ids)}" for v, ids in counts.items() if ids) + ".")
    if twice:
        doc.p("Each claim is judged twice: **as configured** (every row at its own learning rate: the runs without a "
              "`trainer.lr` override) and **tuned** (each method at the learning rate its search chose on data that is "
              "not reported, its final seeds; section 'Learning-rate search'). Both read the same figure of each run "
              "(the best dev epoch, as the paper reports).")
        for r in results:
            if changed_by_tuning(r):
                doc.p(f"**{r.claim['id']}: the verdict changes with tuning**: {r.verdict} as configured, "
                      f"{tuned_verdict(r)} tuned.")
    head = ["Claim", "Records", "Test"] + (["Verdict as configured", "Verdict tuned"] if twice else ["Verdict"])
    doc.table(head, [[f"{r.claim['id']}: {r.claim['sentence']}" + ("" if r.claim.get("quoted") else " (paraphrase)"),
                      f"`{r.experiment}`" if r.experiment else "–", r.claim["test"], f"**{r.verdict}**"]
                     + ([f"**{tuned_verdict(r)}**"] if twice else []) for r in results])
    for r in results:
        if r.parts:
            doc.p(f"*{r.claim['id']}* ({r.claim.get('where', '')})" + (", as configured:" if twice else ":"))
            doc.ul(r.parts)
        if r.tuned is not None and r.tuned.parts:
            doc.p(f"*{r.claim['id']}*, tuned:")
            doc.ul(r.tuned.parts)
        csv_rows.append({"kind": "claim", "table": r.claim["table"], "experiment": r.experiment, "id": r.claim["id"],
                         "label": r.claim["sentence"], "verdict": r.verdict, "detail": " | ".join(r.parts)})
        if r.tuned is not None:
            csv_rows.append({"kind": "claim tuned", "table": r.claim["table"], "experiment": r.experiment,
                             "id": r.claim["id"], "label": r.claim["sentence"], "verdict": tuned_verdict(r),
                             "detail": " | ".join(r.tuned.parts)})
    if elsewhere:
        doc.p("Not tested here (their tables are not part of this aggregation): " + ", ".join(
            f"{c['id']} ({TABLE_TITLES.get(c['table'], c['table'])})" for c in elsewhere) + ".")


def _lead(x: protocols.Search, runs: Sequence[Run]) -> str:
    """The chosen point's lead over the runner-up, beside the final seeds' spread on the same split."""
    lead, std = protocols.choice_margin(x, runs)
    if lead is None:
        return "—"
    text = f"{100 * lead:+.1f}" + ("" if std is None else f" (seeds' std {100 * std:.1f})")
    return text + (" **within the seeds' spread**" if std is not None and lead < std else "")


def _searches(doc: Doc, searches: Sequence[protocols.Search], runs: Sequence[Run], csv_rows: list[dict]) -> None:
    """Each search's grid, every point's score on the selection split, the choice, its lead over the next
    best point and the grid's edge."""
    if not searches:
        return
    doc.h("Learning-rate search")
    for proto in sorted({x.protocol for x in searches}):
        rules = sorted({x.rule for x in searches if x.protocol == proto})
        doc.p(f"Protocol `{proto}` (`configs/tune/{proto}.yaml`, run by `python -m hut.tune`): the chosen value is "
              + "; ".join(rules) + ". Per point: the mean × 100 over the search seeds on the selection split "
              "(± sample std with two or more seeds); **bold**: chosen; (own): the row's own value, its run as "
              "configured; lead: the chosen point's margin over the next best, beside the sample std of the same "
              "score over the final seeds at the chosen value (a lead within it is a choice another search seed "
              "could reverse, and the tuned verdict rests on it). Score against learning rate on dev, every seed: "
              "`figures/lr_sensitivity.png`.")
    rows = []
    for x in sorted(searches, key=lambda x: (x.experiment, x.task, x.method, x.variant or "", x.other)):
        pts = []
        for pt in x.points:
            mean, std = pt.get("mean"), pt.get("std")
            text = "diverged" if mean is None else f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if std else "")
            own = math.isclose(float(pt["value"]), x.configured)
            mark = f"{float(pt['value']):g}: {text}" + (" (own)" if own else "")
            pts.append(f"**{mark}**" if math.isclose(float(pt["value"]), x.chosen) else mark)
        edge = "inside the grid" if x.at_edge is None else (
            f"**at the grid's {'smallest' if x.at_edge == 'low' else 'largest'} value: add {x.add:g}**")
        name = _cell_name((x.experiment, x.task, x.method, x.variant, x.model, x.other or None), None)
        rows.append([name, SPLIT_LABELS.get(x.selection, x.selection), "; ".join(pts), f"{x.chosen:g}",
                     _lead(x, runs), f"{x.configured:g}", edge,
                     f"{', '.join(map(str, x.search_seeds))} / {', '.join(map(str, x.final_seeds))}"])
        csv_rows.append({"kind": "search", "experiment": x.experiment, "task": x.task, "method": x.method,
                         "variant": x.variant or "", "model": x.model, "overrides": x.other, "label": name,
                         "split": x.selection, "ours": f"{x.chosen:g}", "verdict": x.at_edge or "inside",
                         "detail": "; ".join(f"{float(p['value']):g}:{p.get('mean')}" for p in x.points)})
    doc.table(["Cell", "chosen on", "grid: score on the selection split", "chosen", "lead", "row's own", "edge",
               "search / final seeds"], rows)
    for x in searches:
        if x.at_edge is not None:
            side = "smallest" if x.at_edge == "low" else "largest"
            doc.p(f"At the edge: {task_label(x.task)} · {method_label(x.method)}: the best learning rate "
                  f"{x.chosen:g} is the grid's {side} value; the best may lie outside the grid: add {x.add:g} to "
                  f"`configs/tune/{x.protocol}.yaml` and rerun `python -m hut.tune` (only the new points run).")


def _verdicts(doc: Doc, built: Mapping[str, Built], exps: Mapping[str, str], csv_rows: list[dict]) -> None:
    doc.h("Verdicts per table")
    for key, b in built.items():
        vs = list(b.verdicts)
        if not vs:
            continue
        n = cell_verdicts.counts(vs)
        doc.h(f"{TABLE_TITLES.get(key, key)}, experiment `{exps.get(key, key)}`", 3)
        doc.p("; ".join(f"{k}: {c}" for k, c in sorted(n.items())) + " (cells of ours that stand for a paper cell"
              + ("; 'no runs': nothing finished yet, not listed" if n.get("no runs") else "") + ").")
        vs = [v for v in vs if v.kind != "no runs"]
        doc.ul([v.text(2 if v.case.tol < 1 else 1) for v in vs])
        for v in vs:
            csv_rows.append({"kind": "verdict", "table": key, "experiment": exps.get(key, ""), "label": v.case.label,
                             "n": str(len(v.case.values)), "statistic": v.case.statistic, "ours": fixed(v.ours, 6),
                             "paper": fixed(v.case.ref.value if v.case.ref else None, 6), "diff": fixed(v.diff, 6),
                             "verdict": v.kind, "p_equivalence": fixed(v.p_equivalence, 6),
                             "p_difference": fixed(v.p_difference, 6),
                             "seeds_needed": "" if v.seeds_needed is None else str(v.seeds_needed),
                             "detail": v.case.reason or v.note})
    if not any(b.verdicts for b in built.values()):
        doc.p("No row of ours stands for a paper row yet.")


def build_report(inp: Inputs, built: Mapping[str, Built], provenance: str,
                 claims_file: str | Path | None = None) -> tuple[Doc, list[dict]]:
    """The report's document and its CSV rows (one per claim, verdict and cell)."""
    exps = experiments_of(inp, built)
    doc = Doc()
    doc.h("Reproduction report: verdicts, claims, seeds and selection", 1)
    doc.p(provenance)
    doc.p("Verdicts per cell against the paper's printed figure: **reproduced** (two one-sided tests put ours "
          "within ± the tolerance), **differs** ↑/↓ (Welch's t-test from the paper's ± and seed count, or a "
          "one-sample t-test where it prints no ±), **inconclusive** (neither; with the seeds that would decide "
          "it at the observed std), **not comparable** (another model, data or setting than the paper's). "
          f"α = {stats.ALPHA}, Holm's correction over each table's cells. Tolerances (printed units): "
          + ", ".join(f"{k} ±{v:g}" for k,
                      v in cell_verdicts.TOLERANCES.items()) + " (why: `hut/results/judge/verdicts.py`). "
          "Markers beside ours − paper in the tables: ≈ reproduced, ↑/↓ differs, ? inconclusive.")
    csv_rows: list[dict] = []
    results, elsewhere = evaluate_claims(inp, built, claims_file)
    _claims(doc, results, elsewhere, csv_rows)
    _searches(doc, [x for x in inp.searches if x.experiment in set(exps.values())], inp.runs, csv_rows)
    _verdicts(doc, built, exps, csv_rows)
    t5 = built.get("table5")
    if t5 is not None and any(r.experiment == exps.get("table5") for r in inp.runs):
        compact = any(r.experiment == exps["table5"] and r.method == "hut_compact" for r in inp.runs)
        doc.h(f"Table 5 (rank r), experiment `{exps['table5']}`")
        doc.p(" ".join(t5.table.caption[:1])
              + (" Rows named (HUT-compact): `hut_compact` with Adam's ε × r (claim `rank_is_only_adam_eps` above)."
                 if compact else "") + " The full table with the paper's rows: `tables/table5.md`.")
        doc.table([h if isinstance(h, str) else h[0] for h in t5.table.header],
                  [[c if isinstance(c, str) else c[0] for c in row] for row in t5.table.blocks[0][1]])
    shown = protocols.for_tables(inp.runs, inp.searches, inp.results_dir)  # search points: the section above
    rows, cell_csv, gaps = seed_rows(shown, inp.results_dir, sorted(set(exps.values())))
    doc.h("Seeds, statistics and epoch selection per cell")
    if rows:
        doc.p("Every finished seed (task metric × 100 at the best dev epoch), mean, sample std, median, and the seeds "
              f"at chance level (within {epoch_selection.CHANCE_MARGIN:g} point of the majority class's accuracy, "
              "or of MCC / Pearson 0: not converged; counted, never dropped; ? where the chance level is unknown). "
              "From the per-epoch dev predictions: best = the best epoch on all of dev (the paper's protocol), "
              "last = the last "
              "epoch, split = the epoch chosen on one half of dev and scored on the other, both ways, averaged "
              f"(halves: seed {epoch_selection.SPLIT_SEED}), gap = best − split; means over seeds.")
        doc.table(["Cell", "n", "per seed", "mean", "std", "median", "not converged", "epochs", "best", "last",
                   "split", "gap"], rows)
    else:
        doc.p(f"No finished run of experiment(s) {', '.join(f'`{e}`' for e in sorted(set(exps.values())))} under "
              f"`{inp.results_dir}` yet.")
    csv_rows += cell_csv
    _protocol(doc, inp, built, len(rows), gaps, exps)
    return doc, csv_rows


def write_report(inp: Inputs, built: Mapping[str, Built], out_dir: Path, provenance: str,
                 claims_file: str | Path | None = None) -> tuple[list[Path], Doc]:
    """report.{md,tex,csv} in ``out_dir``; (the paths, the document: the page shows it too)."""
    doc, rows = build_report(inp, built, provenance, claims_file)
    tex = ("% " + tex_escape(provenance) + "\n% Requires \\usepackage{booktabs}.\n" + doc.tex())
    out = []
    for ext, text in (("md", doc.md()), ("tex", tex), ("csv", csv_text(CSV_FIELDS, rows))):
        p = Path(out_dir) / f"report.{ext}"
        write_bytes(p, text.encode("utf-8"))
        out.append(p)
    return out, doc
