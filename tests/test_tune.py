"""The learning-rate search (hut.tune) and the tune split it chooses on (data.tune_samples).

* the tune split: held out of the examples trained on, seeded, the same from the hub and local
  layouts, scored every epoch under its own names, refused where it would overlap the reported split;
* the protocol as data: one-line errors for unequal budgets, a grid that is not increasing, a
  selection split the experiment does not hold out;
* the rule: when choosing on dev and choosing on the tune split disagree, the tune split decides;
  ties go to the smaller value; at the grid's edge the search says so and names the value to add;
* the command on the debug experiment: its runs are the runs ``hut.train`` makes, a rerun runs
  nothing, a grown grid runs only its new points, and a search killed anywhere resumes to the
  result of one never killed (kill-chain style, as tests/test_resume.py).
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import pytest

from hut.schema import validate
from hut.data.glue import load_glue
from hut.data.holdout import hold_out
from hut.runs import read_record
from hut.runs.identity import fingerprint
from hut.tasks import build_task
from hut.tune import protocol as proto
from hut.tune.__main__ import main as tune_main
from hut.tune.choose import Point, choose
from hut.tune.search import score
from tests.helpers import FIXTURES, ROOT, make_cfg

DEBUG = ["experiment=debug_tune", f"data.dir={FIXTURES}", "trainer.progress=false"]
RESULT = ("status", "history", "best", "last", "params", "steps", "fingerprint")


# ------------------------------------------------------------------------------------ the tune split
def _task(*overrides):
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(make_cfg("task=stsb", *overrides), resolve=True)
    return build_task(cfg, None)


def _key(e):
    return (e["sentence1"], e["sentence2"], e["label"])


def test_the_tune_split_is_held_out_of_training_seeded_and_the_same_for_every_run():
    full = load_glue("stsb", "train", data_dir=FIXTURES)
    train, tune = _task("data.tune_samples=3", "data.max_train_samples=null")._train_and_tune()
    assert len(tune) == 3 and len(train) == len(full) - 3
    assert not {_key(e) for e in train} & {_key(e) for e in tune}  # never trained on
    again, tune2 = _task("data.tune_samples=3", "method=lora", "seed=4", "trainer.lr=0.5")._train_and_tune()
    assert tune2 == tune and again == train  # every method, lr and seed holds out the same examples
    capped, tune3 = _task("data.tune_samples=3", "data.max_train_samples=2")._train_and_tune()
    assert tune3 == tune and len(capped) == 2 and all(e in train for e in capped)  # the subset from the rest
    _, other = _task("data.tune_samples=3", "data.subset_seed=1")._train_and_tune()
    assert other != tune
    assert _task()._train_and_tune()[1] == []


def test_hub_and_local_layouts_hold_out_the_same_slice(monkeypatch):
    import datasets

    local = load_glue("stsb", "train", data_dir=FIXTURES)
    cols = {"sentence1": [e["sentence1"] for e in local], "sentence2": [e["sentence2"] for e in local],
            "label": [e["label"] for e in local], "idx": list(range(len(local)))}
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_dict(cols))
    hub = _task("data.tune_samples=3", "data.source=hub")._train_and_tune()
    assert hub == _task("data.tune_samples=3")._train_and_tune()
    assert hold_out(local, 3, 0) == hold_out(load_glue("stsb", "train", source="hub"), 3, 0)


@pytest.mark.parametrize("overrides, message", [
    (["task=e2e", "model=tiny_gpt2", "data.tune_samples=4"], "task e2e holds out no tune split"),
    (["data.tune_samples=4", "data.train_split=dev"], "would overlap the reported split"),
    (["data.tune_samples=0"], "data.tune_samples must be a positive integer"),
])
def test_the_schema_refuses_a_tune_split_that_cannot_be(overrides, message):
    with pytest.raises(ValueError, match=message) as e:
        validate(make_cfg(*overrides))
    assert "\n" not in str(e.value)


def test_a_null_tune_split_leaves_the_fingerprint_of_earlier_records_alone():
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(make_cfg(), resolve=True)
    before = {**cfg, "data": {k: v for k, v in cfg["data"].items() if k != "tune_samples"}}
    assert cfg["data"]["tune_samples"] is None and fingerprint(cfg) == fingerprint(before)
    assert fingerprint({**cfg, "data": {**cfg["data"], "tune_samples": 4}}) != fingerprint(cfg)


def test_a_run_scores_the_tune_split_at_its_last_epoch_under_its_own_names(tmp_path):
    from hut.trainer import run

    rec = run(make_cfg("data.tune_samples=2", "trainer.epochs=2", "trainer.max_steps=null",
                       results_dir=tmp_path))
    assert len(rec["history"]) == 2
    assert not any(k.startswith("tune_") for k in rec["history"][0])  # the rule reads the last epoch only
    assert {"score", "tune_score", "tune_accuracy", "tune_f1"} <= set(rec["history"][-1]) <= set(rec["last"])
    assert rec["best"]["score"] == max(h["score"] for h in rec["history"])  # dev still selects the best epoch


# ------------------------------------------------------------------------------------- the protocol
@pytest.mark.parametrize("raw, message", [
    ({"grid": [1e-3, 5e-3, 2e-3]}, "is not increasing"),
    ({"grid": [1e-3, 5e-3]}, "at least 3"),
    ({"grid": [1e-3, 2e-3, 4e-3], "rows": {"demo/lora": [1e-3, 2e-3, 4e-3, 8e-3]}}, "the same budget"),
    ({"grid": [1e-3, 2e-3, -4e-3]}, "must be a positive number"),
    ({"grid": [1e-3, 2e-3, 4e-3], "selection": "dev"}, "unknown selection 'dev'"),
    ({"grid": [1e-3, 2e-3, 4e-3], "key": "trainer.epochs"}, "unknown key 'trainer.epochs'"),
    ({"grid": [1e-3, 2e-3, 4e-3], "search_seeds": []}, "at least one seed"),
])
def test_a_bad_protocol_is_one_line_naming_the_problem(raw, message):
    with pytest.raises(ValueError, match=message) as e:
        proto.from_dict("t", raw)
    assert "\n" not in str(e.value)


def test_a_protocol_against_its_experiment():
    p = proto.from_dict("t", {"grid": [1e-4, 1e-3, 1e-2]})
    with pytest.raises(ValueError, match="holds none out: set data.tune_samples"):
        tune_plan(p, "debug")
    with pytest.raises(ValueError, match="row demo/lorra is not a row of experiment demo"):
        proto.check_cells(proto.from_dict("t", {"grid": [1, 2, 3], "rows": {"demo/lorra": [1, 2, 3]}}), "demo",
                          [({"row": "demo/lora"}, {"data": {"tune_samples": 4}, "task": {"name": "stsb"}})])
    with pytest.raises(SystemExit, match="no search protocol configs/tune/nope.yaml"):
        tune_main(["experiment=debug_tune", "tune=nope"])
    every = {p: proto.load(p) for p in proto.known()}  # every shipped protocol loads and has equal budgets
    assert {"demo", "debug_tune"} <= set(every)


def tune_plan(p, experiment):
    from hut.tune.search import plan

    return plan(p, experiment, [f"data.dir={FIXTURES}"])


# ------------------------------------------------------------------------------------------ the rule
def _record(lr: float, dev: float, tune: float, seed: int = 0) -> dict:
    return {"experiment": "x", "task": "mrpc", "method": "hut", "variant": None, "model": "tiny_roberta",
            "seed": seed, "status": "success", "overrides": {"trainer.lr": lr},
            "last": {"epoch": 2, "score": dev, "tune_score": tune}, "best": {"epoch": 2, "score": dev}}


def test_choosing_on_dev_and_on_the_tune_split_disagree_and_the_tune_split_decides(tmp_path):
    """Dev prefers 1e-2 on both seeds, the held-out tune split 1e-3: the search takes 1e-3."""
    p = proto.from_dict("t", {"grid": [1e-4, 1e-3, 1e-2], "search_seeds": [0, 1]})
    dev = {1e-4: 0.60, 1e-3: 0.70, 1e-2: 0.80}
    tune = {1e-4: 0.55, 1e-3: 0.75, 1e-2: 0.65}
    recs = {(lr, s): _record(lr, dev[lr] + s / 100, tune[lr] - s / 100, s) for lr in dev for s in (0, 1)}
    points = [Point(lr, {s: score(recs[(lr, s)], p, tmp_path) for s in (0, 1)}) for lr in p.grid]
    by_dev = max(dev, key=dev.get)
    choice = choose(points)
    assert choice.chosen == 1e-3 != by_dev and choice.at_edge is None
    assert [round(pt.mean, 3) for pt in choice.points] == [0.545, 0.745, 0.645]


def test_ties_go_to_the_smaller_value_and_a_diverged_point_loses(tmp_path):
    p = proto.from_dict("t", {"grid": [1e-4, 1e-3, 1e-2]})
    diverged = {**_record(1e-2, 0.9, 0.9), "status": "failed", "error": {"reason": "non-finite loss (checked ...)"}}
    assert score(diverged, p, tmp_path) == -math.inf
    choice = choose([Point(1e-4, {0: 0.5}), Point(1e-3, {0: 0.7}), Point(3e-3, {0: 0.7}), Point(1e-2, {0: -math.inf})])
    assert choice.chosen == 1e-3
    crashed = {**diverged, "error": {"reason": "RuntimeError: out of memory"}}
    with pytest.raises(ValueError, match="the run failed .*out of memory"):
        score(crashed, p, tmp_path)
    with pytest.raises(ValueError, match="every grid point diverged"):
        choose([Point(v, {0: -math.inf}) for v in (1.0, 2.0, 3.0)])


@pytest.mark.parametrize("grid, scores, edge, add", [
    ((1e-3, 2e-3, 1e-2), (0.9, 0.5, 0.1), "low", 5e-4),  # one grid step (the grid's ratio there) below
    ((1e-3, 5e-3, 2e-2), (0.1, 0.5, 0.9), "high", 8e-2),  # and above
])
def test_the_search_says_so_when_its_best_point_is_at_the_grids_edge(grid, scores, edge, add):
    choice = choose([Point(v, {0: x}) for v, x in zip(grid, scores)])
    assert choice.at_edge == edge and math.isclose(choice.add, add)
    line = choice.edge_message("task=stsb row=demo/lora", "trainer.lr", "demo")
    side = "smallest" if edge == "low" else "largest"
    assert f"the grid's {side} value" in line and f"add {add:g} to the grid (configs/tune/demo.yaml)" in line
    inside = choose([Point(v, {0: x}) for v, x in ((1e-3, 0.1), (2e-3, 0.9), (4e-3, 0.2))])
    assert inside.at_edge is None and inside.edge_message("c", "trainer.lr", "demo") is None


# ---------------------------------------------------------------------------------------- the command
def _records(root):
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("metrics.json")}


def test_the_search_reruns_nothing_and_a_grown_grid_runs_only_its_new_points(tmp_path, capsys):
    args = [*DEBUG, f"results_dir={tmp_path}"]
    tune_main(args)
    out = capsys.readouterr().out
    sel = json.loads((tmp_path / "debug_tune/mrpc/hut/tiny_roberta/tune-debug_tune.json").read_text())
    assert sel["grid"] == [1e-4, 1e-3, 1e-2] and sel["search_seeds"] == [0] and sel["final_seeds"] == [0, 1]
    assert sel["chosen"] in sel["grid"] and sel["configured"] == 1e-3 and "ties: the smaller value" in sel["rule"]
    assert sel["points"][1]["runs"] == {"0": "debug_tune/mrpc/hut/tiny_roberta/seed=0"}  # the row's own run
    assert "python -m hut.train -m experiment=debug_tune method=hut,lora seed=0 trainer.lr=0.0001,0.001,0.01" in out
    first = _records(tmp_path)
    assert out.count("[done]") == len(first)

    tune_main(args)  # everything finished: nothing runs, nothing is rewritten
    again = capsys.readouterr().out
    assert "[done]" not in again and _records(tmp_path) == first

    tune_main([*args, "tune.grid=[1.0e-5,1.0e-4,1.0e-3,1.0e-2]"])  # one more point below
    grown = capsys.readouterr().out
    now = _records(tmp_path)
    assert {k: v for k, v in now.items() if k in first} == first  # no finished run was touched
    new = set(now) - set(first)
    new_points = {k for k in new if "trainer.lr=1e-05/seed=0" in k}
    assert len(new_points) == 2  # the new point, for each of the two cells
    assert all("trainer.lr=1e-05/" in k for k in new)  # any other new run: a final seed at a new choice there
    assert grown.count("[done]") == len(new)
    sel2 = json.loads((tmp_path / "debug_tune/mrpc/hut/tiny_roberta/tune-debug_tune.json").read_text())
    assert sel2["grid"] == [1e-5, 1e-4, 1e-3, 1e-2]
    assert (tmp_path / "debug_tune/mrpc/hut/tiny_roberta/tune-debug_tune.attempt1.json").exists()  # kept


def _cli(results_dir, fault=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("HUT_FAULT", None)
    if fault:
        env["HUT_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "hut.tune", *DEBUG, f"results_dir={results_dir}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_a_search_killed_anywhere_resumes_to_the_result_of_one_never_killed(tmp_path):
    """Killed in a grid point's second epoch, while writing the selection file, and in a final run;
    each rerun resumes; the records and selections equal those of a search never killed."""
    killed = tmp_path / "killed"
    outs = []
    for fault in ("kill:step:4", "kill:write:tune-debug_tune.json:1", "kill:step:2"):
        outs.append(_cli(killed, fault))
        assert outs[-1].returncode == -signal.SIGKILL, (fault, outs[-1].returncode, outs[-1].stderr[-1500:])
    assert "[resume]" in outs[1].stdout and "[skip]" in outs[1].stdout  # the killed point resumed, the others kept
    assert "[tune] method=hut: trainer.lr=" in outs[2].stdout  # the selection, written again after its kill
    final = _cli(killed)
    assert "[resume]" in final.stdout  # the final run killed mid-way
    assert final.returncode == 0 and "[tune] done" in final.stdout, final.stdout[-1500:] + final.stderr[-1500:]
    tune_main([*DEBUG, f"results_dir={tmp_path / 'clean'}"])
    for rel in _records(tmp_path / "clean"):
        a, b = read_record(killed / rel), read_record(tmp_path / "clean" / rel)
        assert {k: a[k] for k in RESULT} == {k: b[k] for k in RESULT}, rel
    assert set(_records(killed)) == set(_records(tmp_path / "clean"))
    for sel in (tmp_path / "clean").rglob("tune-*.json"):
        mine = json.loads((killed / sel.relative_to(tmp_path / "clean")).read_text())
        assert {k: v for k, v in mine.items() if k != "git_sha"} == \
            {k: v for k, v in json.loads(sel.read_text()).items() if k != "git_sha"}
    assert not list(killed.rglob(".*.tmp"))  # partial writes of killed processes were swept up


def test_two_one_thread_workers_share_a_search(tmp_path, capfd):
    """workers=2 (make demo's default): every run once, in the worker processes, and the same selections."""
    tune_main([*DEBUG, f"results_dir={tmp_path}", "workers=2"])
    out = capfd.readouterr().out
    records = _records(tmp_path)
    assert out.count("[done]") == len(records) == 8  # 2 cells x (2 new points + the row's own + 1 final seed)
    assert "[search 6/6]" in out and "[final 2/2]" in out  # the finals' seed 0 is the chosen point's search run
    assert len(list(tmp_path.rglob("tune-debug_tune.json"))) == 2
