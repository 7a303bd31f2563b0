"""hut.plan: counts from the sweeps, finished runs by fingerprint, memory measured and scaled, sizes,
hours from the FLOP time and the kernel floor, unknowns said."""
import math
import os

import pytest
import torch

from hut.config import experiments as ex
from hut.runs import identity
from hut.files.atomic import write_json_atomic
from hut.runs import new_record, run_paths
from hut.config import load_group
from hut.plan import __main__ as cli
from hut import memory
from hut.plan import estimate, hours, kernels, lengths, report


def _no_estimates(monkeypatch):
    monkeypatch.setattr(estimate, "_memory", lambda cfg, line, g: None)
    monkeypatch.setattr(estimate, "_hours", lambda cfg, line, g: None)


@pytest.mark.parametrize("experiment, cells, runs", [("table3", 10, 30), ("table5", 30, 150)])
def test_runs_come_from_the_sweep_and_its_own_seeds(experiment, cells, runs, monkeypatch, tmp_path):
    _no_estimates(monkeypatch)
    lines = estimate.plan_lines(experiment, "rtx3090", str(tmp_path))
    assert len(lines) == cells and sum(len(ln.seeds) for ln in lines) == runs
    assert len({ln.label for ln in lines}) == cells  # every cell named apart (Table 5: its rank)


def test_a_finished_record_of_the_same_config_counts_another_configs_is_a_conflict(monkeypatch, tmp_path):
    _no_estimates(monkeypatch)
    cfg = ex.cells("debug")[0].config
    paths = run_paths({**cfg, "results_dir": str(tmp_path)})
    rec = new_record(cfg, paths, fingerprint=identity.fingerprint(cfg), overrides=None, status="success")
    write_json_atomic(paths.record, rec)
    (line,) = estimate.plan_lines("debug", "rtx3090", str(tmp_path))
    assert line.finished == [0] and line.left == 0
    write_json_atomic(paths.record, {**rec, "fingerprint": "0" * 16})
    (line,) = estimate.plan_lines("debug", "rtx3090", str(tmp_path))
    assert line.finished == [] and line.conflicts == [0]


def test_a_finished_record_of_pretrained_weights_counts_by_the_weights_it_names(monkeypatch, tmp_path):
    """The trainer's fingerprint covers the weights' SHA-256; the plan (before any download) takes the
    record's: the same config with those weights is finished, another config is a conflict."""
    _no_estimates(monkeypatch)
    cfg = ex.cells("debug")[0].config
    paths = run_paths({**cfg, "results_dir": str(tmp_path)})
    w = {"sha256": "ab" * 32}
    rec = new_record(cfg, paths, fingerprint=identity.fingerprint(cfg, weights=w["sha256"]), overrides=None,
                     status="success", weights=w)
    write_json_atomic(paths.record, rec)
    (line,) = estimate.plan_lines("debug", "rtx3090", str(tmp_path))
    assert line.finished == [0]
    write_json_atomic(paths.record, {**rec, "fingerprint": identity.fingerprint(cfg)})
    (line,) = estimate.plan_lines("debug", "rtx3090", str(tmp_path))
    assert line.conflicts == [0]


def test_activations_scale_from_the_measured_points_to_batch_and_depth():
    """The fit is exact at the measured points, and a batch of 2 measured directly agrees with it."""
    mcfg, method = load_group("model", "tiny_roberta"), {"name": "lora", "r": 2, "targets": ["q", "v"]}
    pts = memory._measure(mcfg, method, "no")
    for layers in memory.LAYERS:
        for s, y in zip(memory.SEQS, pts[layers]):
            assert memory.activation_bytes(pts, layers, 1, s) == pytest.approx(y)
    from hut.methods import build_method, prepare_model
    from hut.models import load_model

    torch.manual_seed(0)
    same = {**mcfg, "arch": {**mcfg["arch"], **dict.fromkeys(memory.ATTENTION_DROPOUT, 0.0)}}
    lm = load_model(same, "classification", num_labels=2, pretrained=False, with_tokenizer=False)
    model = prepare_model(lm.model, build_method(method), lm.family, lm.head_prefixes).train()
    ids = torch.full((2, 48), 5, dtype=torch.long)
    seen, weights = {}, {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.zeros(2, dtype=torch.long))
    # tiny_roberta has 2 layers; 48 tokens is between the measured lengths
    assert memory.activation_bytes(pts, 2, 2, 48) == pytest.approx(sum(seen.values()), rel=0.02)


def test_the_plan_prints_memory_hours_and_a_total_for_a_cpu_experiment(capsys, tmp_path):
    assert cli.main(["experiment=debug", f"results_dir={tmp_path}", "gpu=a100"]) == 0
    out = capsys.readouterr().out
    assert "cells 1, seeds 0: 1 runs, 0 finished, 1 left" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("HUT · MRPC"))
    assert "8×64" in row and " yes " in row
    assert "total (est.):" in out and "GPU-hours" in out and "recipe" in out
    assert "python -m hut.train -m experiment=debug" in out


def test_bad_arguments_are_one_line():
    for bad in (["experiment=table1", "gpu=k80"], ["experiment=nosuch"], [], ["experiment=table1", "gpus=0"]):
        with pytest.raises(SystemExit) as e:
            cli.main(bad)
        assert str(e.value).startswith("hut.plan: ") and str(e.value).count("\n") == 1, bad


def test_published_example_counts_agree_with_the_local_copies():
    from hut.data.glue import load_glue

    data = os.environ.get("HUT_DATA")
    if not data:
        pytest.skip("HUT_DATA not set")
    sizes = estimate.datasets()
    for task in ("mrpc", "cola", "stsb"):
        assert len(load_glue(task, "train", source="local", data_dir=data)) == sizes[task]["train"], task
        assert len(load_glue(task, "dev", source="local", data_dir=data)) == sizes[task]["eval"], task


# ------------------------------------------------------------------------------------------ hours
def test_the_kernel_counter_counts_kernels_not_views():
    x = torch.randn(4, 4)
    with kernels.KernelCounter() as k:
        x.view(16).t  # noqa: B018 - views launch nothing
        x.t().unsqueeze(0)
        y = x + 1
        torch.mm(y, x)
    assert dict(k.ops) == {"add": 1, "mm": 1}


def test_a_step_counts_its_phases_and_a_method_adds_kernels_to_the_same_model():
    """LoRA adds kernels to the forward; the bare model trains every weight, so its backward computes the
    weight gradients LoRA's frozen weights skip."""
    mcfg = load_group("model", "tiny_roberta")
    bare = kernels.count(mcfg, None, "classification", "no")
    lora = kernels.count(mcfg, {"name": "lora", "r": 2, "targets": ["q", "v"]}, "classification", "no")
    assert all(bare[p] > 0 for p in kernels.PHASES)
    assert lora["forward"] > bare["forward"] and lora["backward"] < bare["backward"]
    assert lora["inference"] < lora["forward"]  # no dropout, no loss, no autograd in eval


def _debug_cfg(**trainer):
    cfg = ex.cells("debug")[0].config
    return {**cfg, "trainer": {**cfg["trainer"], **trainer}}


def test_the_step_time_is_the_larger_of_flop_time_and_kernel_floor(monkeypatch):
    cfg = _debug_cfg(max_steps=None, epochs=2)
    g = estimate.gpu("rtx3090")
    est = hours.run_time(cfg, g)
    train, ev = est.phases
    k = kernels.count(cfg["model"], cfg["method"], "classification", cfg["trainer"]["mixed_precision"] or "no")
    assert train.kernels == k["forward"] + k["backward"] + k["optimizer"]
    assert train.floor_s == pytest.approx((k["forward"] * 33 + (k["backward"] + k["optimizer"]) * 8) / 1e6)
    assert train.bound == "kernels" and train.step_s == train.floor_s > train.flop_s  # a tiny model: all floor
    assert train.steps == 2 * 4 and ev.steps == 2 * 1  # 32 examples / batch 8, 2 epochs; 32 eval in one batch
    assert est.hours == pytest.approx((train.steps * train.floor_s + ev.steps * ev.step_s) / 3600)
    free = {**g, "kernel_us": {"forward": 0, "backward": 0}}  # no floor: the FLOP time alone
    train0 = hours.run_time(cfg, free).phases[0]
    assert train0.bound == "FLOPs" and train0.step_s == train0.flop_s == train.flop_s
    accum = hours.run_time(_debug_cfg(max_steps=None, epochs=2, batch_size=4, grad_accum=2), g).phases[0]
    assert accum.steps == train.steps and accum.kernels == 2 * (k["forward"] + k["backward"]) + k["optimizer"]


def test_the_hardware_figures_state_their_calibration():
    """kernel_us.forward is the published latency study's figure, recomputed here on the same models."""
    res = kernels.calibrate(estimate.hardware()["calibration"])
    lo, hi = min(res["us_per_kernel"]), max(res["us_per_kernel"])
    for kind, g in estimate.hardware()["gpus"].items():
        assert 0.85 * lo <= g["kernel_us"]["forward"] <= 1.15 * hi, (kind, res["us_per_kernel"])
        assert g["kernel_us"]["backward"] < g["kernel_us"]["forward"]


def test_a_cell_without_sizes_is_unknown_with_the_reason_never_zero(monkeypatch, capsys, tmp_path):
    sizes = {k: v for k, v in estimate.datasets().items() if k != "mrpc"}
    monkeypatch.setattr(hours, "datasets", lambda: sizes)
    (line,) = estimate.plan_lines("debug", "rtx3090", str(tmp_path))
    assert line.hours is None and line.time is None and "no sizes in hut/plan/datasets.yaml" in line.unknown
    monkeypatch.setattr(report, "datasets", lambda: sizes)
    out = report.render("debug", estimate.gpu("rtx3090"), [line], [], str(tmp_path), log=lambda s: None)
    assert out["hours_total"] is None and out["hours_unknown"] == [line.label]
    total = report.total_line([line], "rtx3090")
    assert total.startswith("total (est.): unknown GPU-hours for all 1 runs") and "'mrpc' has no sizes" in total
    assert "0.00" not in total
    monkeypatch.undo()
    (known,) = estimate.plan_lines("debug", "rtx3090", str(tmp_path))
    mixed = report.total_line([known, line], "rtx3090")
    assert mixed.startswith("total (est.): unknown for all 2 runs") and "at least" in mixed and "1 runs in 1 cells" in mixed


def test_squad_and_e2e_sizes_count_windows_and_agree_with_the_local_dev_files():
    d = estimate.datasets()
    assert hours.examples(d["squad"], "train", None) == math.ceil(87599 * d["squad"]["features_per_example"])
    assert hours.examples(d["squad"], "train", 1000) == math.ceil(1000 * d["squad"]["features_per_example"])
    if not os.environ.get("HUT_DATA"):
        pytest.skip("HUT_DATA not set")
    squad = lengths.measure("squad", "dev", 16, 384)  # windows of the local dev file, as recorded
    assert squad["examples"] == hours.examples(d["squad"], "eval", None) == 10784
    assert (squad["padded_tokens"], squad["mean_tokens"]) == (d["squad"]["padded_tokens"], d["squad"]["eval_tokens"])
    e2e = lengths.measure("e2e", "dev", 16, 512)
    assert (e2e["padded_tokens"], e2e["mean_tokens"]) == (d["e2e"]["padded_tokens"], d["e2e"]["eval_tokens"])


def test_a_search_adds_its_runs_and_each_points_hours(capsys, tmp_path):
    """debug_tune's protocol: 2 cells × 3 values × 1 search seed, less each row's own run (its 1e-3 on seed 0
    is the experiment's), and at most the final seed 1 at the chosen value; each point's hours from its own
    composed config."""
    from hut.config import compose
    from hut.plan import search
    from omegaconf import OmegaConf

    g = estimate.gpu("rtx3090")
    p, lines = search.search_lines("debug_tune", "debug_tune", g)
    assert [(ln.search_runs, ln.final_runs) for ln in lines] == [(2, 1), (2, 1)]
    cfgs = {v: OmegaConf.to_container(compose(["experiment=debug_tune", "method=hut", "seed=0",
                                               f"trainer.lr={v!r}"]), resolve=True) for v in p.grid}
    per = {v: hours.run_time(c, g).hours for v, c in cfgs.items()}
    assert math.isclose(lines[0].hours, per[1e-4] + per[1e-2] + max(per.values()))
    assert cli.main(["experiment=debug_tune", "tune=true", f"results_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "protocol debug_tune (configs/tune/debug_tune.yaml)" in out
    assert "search total (est.): 4 search runs + at most 2 final runs" in out
