"""Reproduction verdicts, claims and epoch selection (hut.results.judge) on constructed numbers and fixture records.

Expected values are recomputed here from scipy / numpy, never copied from the code under test.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from hut.results.judge import claims as claim_tests
from hut.results.judge import selection as epoch_selection
from hut.results.judge import stats
from hut.results.judge import verdicts as cell_verdicts
from hut.results.runs import Run

# --------------------------------------------------------------------------------------------------
# Verdicts per cell
# --------------------------------------------------------------------------------------------------
PAPER = stats.Reference(90.0, 0.3, 5)  # a printed "90.0 ± 0.3", mean of 5 seeds


def case(values, ref=PAPER, tol=1.0, **kw):
    return cell_verdicts.CellCase("HUT · X", tuple(values), ref, tol, **kw)


def test_a_cell_within_the_tolerance_is_reproduced():
    v, = cell_verdicts.judge([case([90.2, 89.9, 90.1, 90.0, 89.8])])
    assert v.kind == "reproduced" and v.marker == "≈"
    assert v.diff == pytest.approx(0.0) and v.p_equivalence < 0.05


def test_a_cell_three_standard_deviations_away_differs_with_its_direction():
    low = [88.5, 89.2, 88.9, 89.3, 88.6]  # mean 88.9: > 3 of our stds (0.35) and > the tolerance below 90.0
    v, = cell_verdicts.judge([case(low)])
    assert v.kind == "differs below" and v.marker == "↓" and v.diff == pytest.approx(np.mean(low) - 90.0)
    p = scipy_stats.ttest_ind_from_stats(np.mean(low), np.std(low, ddof=1), 5, 90.0, 0.3, 5, equal_var=False).pvalue
    assert v.p_difference == pytest.approx(p)  # one cell: Holm leaves p as it is
    up, = cell_verdicts.judge([case([x + 2.2 for x in low])])
    assert up.kind == "differs above"


def test_two_seeds_with_a_wide_spread_are_inconclusive_with_a_seed_estimate():
    v, = cell_verdicts.judge([case([84.0, 90.0])])
    assert v.kind == "inconclusive" and v.seeds_needed is not None and v.seeds_needed > 2
    assert f"~{v.seeds_needed} seeds" in v.note
    # the estimate: the smallest n at which the observed diff and std would give 80% power
    n, s, margin = v.seeds_needed, np.std([84.0, 90.0], ddof=1), abs(v.diff)  # outside the tolerance: |diff|
    se = lambda k: np.sqrt(s ** 2 / k + 0.3 ** 2 / 5)  # noqa: E731
    assert margin / se(n) >= scipy_stats.t.ppf(0.95, n - 1) + scipy_stats.norm.ppf(0.8) > margin / se(n - 1)


def test_a_demo_cell_is_not_comparable_and_one_seed_is_inconclusive():
    nc, one = cell_verdicts.judge([case([79.6, 80.1], comparable=False, reason="MiniLM, not RoBERTa-large"),
                                   case([90.0])])
    assert nc.kind == "not comparable" and "MiniLM" in nc.text() and nc.p_difference is None
    assert one.kind == "inconclusive" and "1 seed" in one.note


def test_a_median_row_is_compared_through_our_median():
    v, = cell_verdicts.judge([case([85.0, 85.2, 85.1, 80.0, 85.3], ref=stats.Reference(85.0, 0.5, 5),
                                   statistic="median")])
    assert v.ours == pytest.approx(85.1) and v.diff == pytest.approx(0.1)


def test_holm_on_a_constructed_table():
    p = [0.01, 0.04, 0.03, 0.005, None]
    # by hand: sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02, None][:4] + [None]) or stats.holm(p)[4] is None
    assert stats.holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # a table: one cell alone differs (p ~ 0.03), but beside four cells that match the paper exactly,
    # Holm's correction over the table's five cells leaves it inconclusive
    cell = [89.0, 89.8, 89.3, 89.6, 89.1]
    alone, = cell_verdicts.judge([case(cell)])
    raw = scipy_stats.ttest_ind_from_stats(np.mean(cell), np.std(cell, ddof=1), 5, 90.0, 0.3, 5, equal_var=False).pvalue
    assert 0.01 < raw < 0.05 and alone.kind == "differs below"
    same = [90.0, 90.1, 89.9, 90.05, 89.95]
    table = cell_verdicts.judge([case(cell)] + [case(same)] * 4)
    assert table[0].kind == "inconclusive" and table[0].p_difference == pytest.approx(min(1.0, 5 * raw))


def test_every_metric_has_a_tolerance_and_an_unknown_one_is_an_error():
    for m in ("score", "BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr"):
        assert cell_verdicts.tolerance(m) > 0
    with pytest.raises(KeyError, match="TOLERANCES"):
        cell_verdicts.tolerance("exact_match_typo")


def test_the_statistic_of_each_paper_row_comes_from_its_source():
    assert cell_verdicts.reported("table1", {"method": "hut", "params": "0.9M"}).statistic == "mean"
    lora = cell_verdicts.reported("table1", {"method": "lora", "params": "0.8M"})
    assert lora.statistic == "median" and lora.seeds == 5 and "LoRA" in lora.source
    assert cell_verdicts.reported("table1", {"method": "fourierft", "params": "0.048M"}).statistic == "median"
    assert cell_verdicts.reported("table3", {"method": "hut", "params": "0.45M"}).seeds == 3


# --------------------------------------------------------------------------------------------------
# Claims on fixture records
# --------------------------------------------------------------------------------------------------
def run(method, task, seed, score, r=8, experiment="e"):
    return Run(path=f"{experiment}/{task}/{method}/m/seed={seed}/metrics.json", experiment=experiment, task=task,
               method=method, model="m", seed=seed, status="success", variant=None, overrides=None,
               fingerprint="f", label=None, paper_row=None, best={"score": score}, params={}, targets=("q", "v"),
               r=r, method_cfg=None, model_cfg=None, task_cfg=None, error=None)


GREATER = {"id": "x", "sentence": "A beats B", "table": "table1", "test": "paired_greater",
           "a": {"method": "hut"}, "b": {"method": "lora"}, "average": True}


def claim_on(a_scores, b_scores, claim=GREATER, task="stsb"):
    runs = [run("hut", task, s, v) for s, v in enumerate(a_scores)] + \
           [run("lora", task, s, v) for s, v in enumerate(b_scores)]
    return claim_tests.evaluate(claim, runs, {"table1": "e", "table5": "e"}, {})


def test_a_claim_holds_does_not_hold_or_is_inconclusive_on_fixture_records():
    base = [0.50, 0.55, 0.48, 0.60, 0.52]
    assert claim_on([b + 0.08 for b in base], base).verdict == "holds"
    assert claim_on([b - 0.08 for b in base], base).verdict == "does not hold"
    assert claim_on([0.50, 0.60, 0.45, 0.58, 0.49], [0.55, 0.50, 0.52, 0.53, 0.51]).verdict == "inconclusive"
    res = claim_on([b + 0.08 for b in base], base)
    d = np.full(5, 8.0)
    assert res.parts[0].startswith("stsb: mean A − B +8.00") or "+8.00" in res.parts[0]
    assert d.mean() == pytest.approx(8.0)
    assert claim_tests.evaluate(GREATER, [], {"table1": "e"}, {}).verdict == "no records yet"


def test_the_paired_interval_is_scipys_bootstrap_of_the_paired_differences():
    a, b = [0.60, 0.52, 0.66, 0.59, 0.61], [0.50, 0.49, 0.55, 0.51, 0.58]
    iv = stats.paired_interval(np.array(a) * 100, np.array(b) * 100)
    ref = scipy_stats.bootstrap((np.array(a) * 100 - np.array(b) * 100,), np.mean, n_resamples=9999, method="BCa",
                       random_state=np.random.default_rng(0)).confidence_interval
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high)) and iv.n == 5


def test_the_rank_finding_as_a_claim_pairs_by_seed_and_rank():
    claim = {"id": "rank", "sentence": "r is Adam's eps", "table": "table5", "test": "paired_equivalent",
             "a": {"method": "hut"}, "b": {"method": "hut_compact"}, "match": ["r", "targets"]}
    runs = []
    for r in (1, 8, 64):
        for s, v in enumerate([0.80, 0.82, 0.79]):
            runs += [run("hut", "sst2", s, v + r * 1e-4, r=r), run("hut_compact", "sst2", s, v + r * 1e-4, r=r)]
    assert claim_tests.evaluate(claim, runs, {"table5": "e"}, {}).verdict == "holds"
    far = [x if x.method == "hut" else run("hut_compact", "sst2", x.seed, x.best["score"] - 0.05, r=x.r) for x in runs]
    assert claim_tests.evaluate(claim, far, {"table5": "e"}, {}).verdict == "does not hold"


def test_best_of_counts_columns_where_a_beats_every_other_row():
    claim = {"id": "b", "sentence": "HUT best", "table": "table1", "test": "best_of", "a": {"method": "hut"}, "k": 2}
    runs = []
    for task, (hut, lora) in {"sst2": (0.9, 0.8), "stsb": (0.7, 0.6), "cola": (0.5, 0.5)}.items():
        for s, noise in enumerate([0.0, 0.01, -0.01, 0.005]):
            runs += [run("hut", task, s, hut + noise), run("lora", task, s, lora - noise)]
    res = claim_tests.evaluate(claim, runs, {"table1": "e"}, {})
    assert res.verdict == "holds" and "best on 2 of 3" in res.parts[0]
    four = {**claim, "k": 4, "of": 6}  # 2 best, 1 undecided, 3 tasks without records: 4 still possible
    assert claim_tests.evaluate(four, runs, {"table1": "e"}, {}).verdict == "inconclusive"
    assert claim_tests.evaluate({**four, "of": 3}, runs, {"table1": "e"}, {}).verdict == "does not hold"


def test_the_claims_file_loads_and_names_known_tests():
    claims = claim_tests.load_claims()
    ids = {c["id"] for c in claims}
    assert {"hut_vs_lora_glue", "hut_vs_lora_e2e", "hut_fewest_flops", "rank_is_only_adam_eps"} <= ids
    assert all(c["test"] in claim_tests.TESTS and c["sentence"] for c in claims)


# --------------------------------------------------------------------------------------------------
# Epoch selection and seed honesty from per-epoch predictions
# --------------------------------------------------------------------------------------------------
def write_epochs(run_dir: Path, labels, per_epoch):
    from hut.runs import DEV_PREDICTIONS, save_epoch_predictions

    for e, preds in enumerate(per_epoch, 1):
        save_epoch_predictions(run_dir / DEV_PREDICTIONS, e, {"predictions": preds, "labels": labels})


def test_split_dev_selection_and_the_optimism_gap(tmp_path):
    from hut.tasks import TASKS

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 40).tolist()
    epochs = [[int(y) if rng.random() < q else 1 - int(y) for y in labels] for q in (0.6, 0.8, 0.7)]
    write_epochs(tmp_path, labels, epochs)
    sel = epoch_selection.select(TASKS.get("sst2"), tmp_path)
    acc = lambda p, idx: 100 * np.mean([p[i] == labels[i] for i in idx])  # noqa: E731
    a, b = epoch_selection.halves(40)
    assert sorted(a + b) == list(range(40)) and len(a) == 20
    full = [acc(p, range(40)) for p in epochs]
    pick_a = int(np.argmax([acc(p, a) for p in epochs]))
    pick_b = int(np.argmax([acc(p, b) for p in epochs]))
    assert sel.best == pytest.approx(max(full)) and sel.last == pytest.approx(full[-1]) and sel.epochs == 3
    assert sel.split == pytest.approx((acc(epochs[pick_a], b) + acc(epochs[pick_b], a)) / 2)
    assert sel.gap == pytest.approx(sel.best - sel.split) and sel.gap >= -1e-9


def test_a_resumed_run_rewrites_its_later_epochs(tmp_path):
    from hut.runs import DEV_PREDICTIONS, read_epoch_predictions, save_epoch_predictions

    p = tmp_path / DEV_PREDICTIONS
    for e in (1, 2, 3):
        save_epoch_predictions(p, e, {"predictions": [e], "labels": [0]})
    save_epoch_predictions(p, 2, {"predictions": [9], "labels": [0]})  # resumed at epoch 2
    assert [(r["epoch"], r["predictions"]) for r in read_epoch_predictions(p)] == [(1, [1]), (2, [9])]


def test_a_seed_at_the_majority_class_is_flagged_not_dropped(tmp_path):
    from hut.tasks import TASKS

    labels = [1] * 30 + [0] * 10
    good, stuck = tmp_path / "good", tmp_path / "stuck"
    write_epochs(good, labels, [[1] * 28 + [0] * 2 + [0] * 10])  # 95%
    write_epochs(stuck, labels, [[1] * 40])
    runs = [run("hut", "sst2", 0, 0.75), run("hut", "sst2", 1, 0.75)]
    runs = [Run(**{**r.__dict__, "path": f"{d.name}/metrics.json"}) for r, d in zip(runs, (good, stuck))]
    cells = epoch_selection.by_cell(runs, tmp_path, lambda r: ("cell",))
    cell = cells[("cell",)]
    assert cell.chance == pytest.approx(75.0) and cell.not_converged == [1] and sorted(cell.seeds) == [0, 1]
    assert TASKS.get("cola").chance_score(None) == 0.0 and TASKS.get("stsb").chance_score(None) == 0.0


def test_the_trainer_saves_dev_predictions_per_epoch(tmp_path):
    from hut.runs import read_epoch_predictions
    from hut.tasks import TASKS
    from hut.runs import run_paths
    from hut.trainer import run as train
    from tests.helpers import make_cfg

    cfg = make_cfg("task=sst2", "method=hut", "trainer.epochs=2", "trainer.max_steps=null", "trainer.batch_size=16",
                   "data.max_train_samples=16", "data.max_eval_samples=12", results_dir=tmp_path)
    rec = train(cfg)
    d = run_paths(cfg).dir
    rows = read_epoch_predictions(d / rec["dev_predictions"])
    assert [r["epoch"] for r in rows] == [1, 2] and len(rows[0]["labels"]) == rec["eval_subset"]["n_scored"]
    scores = [TASKS.get("sst2").score_predictions(r, list(range(len(r["labels"]))), d) for r in rows]
    assert scores == pytest.approx([h["score"] for h in rec["history"]])
    assert json.loads((d / "metrics.json").read_text())["dev_predictions"] == "dev_predictions.jsonl"


def test_e2e_rescores_a_subset_of_its_saved_outputs_with_bleu(tmp_path):
    from hut.metrics.mteval import mteval_bleu_nist
    from hut.tasks import TASKS

    refs = [["the cat sat on the mat", "a cat sat on a mat"], ["it is a pub near the river"], ["cheap food here"]]
    outs = ["the cat sat on a mat", "it is a pub by the river", "food is cheap here"]
    (tmp_path / "references.txt").write_text("\n\n".join("\n".join(r) for r in refs) + "\n")
    got = TASKS.get("e2e").score_predictions({"outputs": outs}, [0, 2], tmp_path)
    assert got == pytest.approx(mteval_bleu_nist([outs[0], outs[2]], [refs[0], refs[2]])["BLEU"])


# --------------------------------------------------------------------------------------------------
# The report of every experiment file: sections, captions and records named after that experiment
# --------------------------------------------------------------------------------------------------
def _experiment_names() -> list[str]:
    """Every experiment (records' name) whose files feed a table the aggregator writes."""
    from hut import aggregate
    from hut.config import experiments as ex
    from hut.config import CONFIG_DIR

    files = [p.stem for p in sorted((Path(CONFIG_DIR) / "experiment").glob("*.yaml"))]
    names = {ex.meta(f)["experiment_name"] for f in files if ex.meta(f)["table"] in aggregate.TABLE_KEYS}
    assert names, "no experiment file feeds a table"
    return sorted(names)


@pytest.mark.parametrize("experiment", _experiment_names())
def test_the_report_of_each_experiment_speaks_of_that_experiment(experiment, tmp_path):
    import re

    from hut import aggregate
    from hut.results.labels import model_label, task_label

    (tmp_path / "runs").mkdir()
    o = aggregate.options([f"experiment={experiment}", f"results_dir={tmp_path / 'runs'}", f"out_dir={tmp_path}",
                           "flops=false", "figure=false"])
    aggregate.build(o, log=lambda s: None)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    named = set(re.findall(r"experiment `([^`]+)`", report)) | set(re.findall(r"\| `([^`]+)` \| \w+ \| \*\*", report))
    assert named <= {experiment, *o["experiments"].values()} and experiment in named | {""}, named
    assert not named - {o["experiments"][t] for t in o["tables"]}, (named, o["tables"])
    assert "## Seeds, statistics and epoch selection per cell" in report and "| Cell |" not in report  # no runs
    assert "no record here kept per-epoch dev predictions" not in report
    for key in o["tables"]:
        md = (tmp_path / "tables" / f"{key}.md").read_text(encoding="utf-8")
        assert f"experiment `{o['experiments'][key]}`" in md
    if "table5" in o["tables"]:  # the caption names the metrics of the tasks the sweep runs, none other
        from hut.results.layout import layout

        caption = (tmp_path / "tables" / "table5.md").read_text(encoding="utf-8").split("\n\n")[1]
        tasks = {task_label(t) for t in layout("table5", o["experiments"]["table5"]).tasks}
        assert set(re.findall(r"[(;] ?([^:;()]+): (?:accuracy|Matthews corr\.|Pearson corr\.)",
                              caption)) == tasks, caption
        models = {row.key[2] for row in layout("table5", o["experiments"]["table5"]).rows}
        assert all(model_label(m) in caption for m in models), caption
