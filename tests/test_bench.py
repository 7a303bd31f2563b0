"""hut.bench at its smallest size (preset=test): the output files and their fields, no timing assertions."""
import json
import math

import pytest
import torch

from hut import bench


def test_parse_args_presets_and_errors():
    s = bench.parse_args(["preset=quick", "device=cpu", "methods=hut,lora", "rounds=3", "out=/tmp/x"])
    assert s["methods"] == ["floor", "hut", "lora"]  # the floor is always measured (ratios need it)
    assert s["rounds"] == 3 and s["layers"] == 4 and s["out"] == "/tmp/x"
    assert bench.parse_args(["preset=full"])["layers"] is None  # the whole model
    for bad in (["preset=nope"], ["device=tpu"], ["colour=red"], ["rounds=x"], ["models=bert_huge"], ["quick"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_shared_copy_shares_frozen_weights_and_unshares_trained_ones():
    base = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    for p in base.parameters():
        p.requires_grad_(False)
    ptrs = bench._storages(base.parameters())
    m = bench.shared_copy(base)
    assert all(p.data_ptr() == q.data_ptr() for p, q in zip(m.parameters(), base.parameters()))
    m[1].weight.requires_grad_(True)
    bench._unshare_trainable(m, ptrs)
    assert m[1].weight.data_ptr() != base[1].weight.data_ptr()
    assert m[0].weight.data_ptr() == base[0].weight.data_ptr()
    assert not base[1].weight.requires_grad


def test_saved_tensor_counter_counts_activations_not_parameters():
    lin = torch.nn.Linear(8, 8)
    counter = bench.SavedTensorCounter(bench._storages(lin.parameters()))
    x = torch.randn(4, 8)
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        y = torch.tanh(lin(x))  # linear saves x (weight grad) and its weight; tanh saves its output
    y.sum().backward()
    assert counter.nbytes == 2 * 4 * 8 * 4  # x and tanh's output, not the weight


def test_bench_test_preset_writes_json_and_markdown(tmp_path):
    s = bench.parse_args(["preset=test", "device=cpu", f"out={tmp_path}"])
    res = bench.run(s, log=lambda *_: None)
    js = tmp_path / "test-cpu.json"
    md = tmp_path / "test-cpu.md"
    assert js.exists() and md.exists()
    data = json.loads(js.read_text())
    assert data["setup"]["preset"] == "test" and data["setup"]["threads"] >= 1
    assert data["setup"]["torch"] == torch.__version__
    assert set(data["models"]) == {"roberta_large", "gpt2_medium"}
    for name, m in data["models"].items():
        assert m["setup"]["layers"] == 1 and m["setup"]["hidden"] == 1024
        assert {r["method"] for r in m["rows"]} == {"floor", "hut", "lora"}, m["failed"]
    rows = data["rows"]  # the contract: the primary model's rows, one per method
    assert [r["method"] for r in rows] == ["floor", "hut", "lora"]
    for r in rows:
        for k in ("method", "train_step_s", "peak_mem_mb", "ratio_to_floor", "ratio_to_lora"):
            assert k in r
        for k in ("train_step_s", "peak_mem_mb", "ratio_to_floor", "ratio_to_lora", "saved_activations_mb"):
            assert isinstance(r[k], float) and r[k] > 0 and math.isfinite(r[k]), (r["method"], k, r[k])
    by = {r["method"]: r for r in rows}
    assert by["floor"]["ratio_to_floor"] == 1.0 and by["lora"]["ratio_to_lora"] == 1.0
    assert by["floor"]["extra_act_mb"] == 0.0
    inf = data["inference"]
    for k in ("merged_over_base", "unmerged_over_base"):
        assert isinstance(inf[k], float) and inf[k] > 0
    assert inf["merged_max_abs_diff"] < 1e-3  # the merged model computes the unmerged one's function
    goals = {(g["model"], g["goal"]) for g in data["goals"]}
    assert ("roberta_large", "hut step vs floor") in goals and ("gpt2_medium", "merged inference vs base") in goals
    assert all(g["line"].startswith("GOAL [") for g in data["goals"])
    text = md.read_text()
    assert "| method |" in text and "| hut |" in text and "merged/base" in text and "GOAL [" in text
    assert res["rows"] == data["rows"] or len(res["rows"]) == len(rows)
