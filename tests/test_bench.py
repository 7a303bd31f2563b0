"""hut.bench at its smallest size (preset=test): arguments, the statistics, the output files and
their fields. No assertion on a timing: speed belongs to the benchmark's own printed ratios."""
import json
import math

import pytest
import torch

from hut import bench
from hut.bench import candidates
from hut.bench.measure import agree, interleaved, paired_ratio
from hut.activations import SavedTensors


def test_options_presets_and_errors(tmp_path):
    s = bench.options(["preset=quick", "methods=[hut,lora]", "rounds=3", f"out={tmp_path}"])
    assert s["rounds"] == 3 and s["layers"] == 2 and s["methods"] == ["hut", "lora"] and s["out"] == str(tmp_path)
    assert s["preset"] == "quick" and s["command"].startswith("python -m hut.bench ")
    assert bench.options(["preset=full"])["layers"] is None  # the whole model
    assert bench.options([])["preset"] == "quick"
    for bad in (["preset=nope"], ["device=tpu"], ["dtype=fp8"], ["colour=red"], ["quick"]):
        with pytest.raises(SystemExit):
            bench.options(bad)


def test_candidates_floor_first_and_paper_settings():
    assert candidates.candidate_names(["hut", "lora"]) == ["floor", "hut", "lora"]
    assert candidates.candidate_names(["floor", "hut"]) == ["floor", "hut"]
    # the paper's rows: Table 1 (RoBERTa-large) r=8 on q, v; Table 3 (GPT-2 medium) r=4
    assert candidates.method_config("hut", "roberta_large")["r"] == 8
    lora = candidates.method_config("lora", "gpt2_medium")
    assert lora["r"] == 4 and lora["dropout"] == 0.0  # no dropout while timing
    assert candidates.method_config("hut@folded", "roberta_large")["name"] == "hut"
    with pytest.raises(SystemExit, match="layers=99"):
        candidates.model_config("roberta_large", 99)


def test_shared_copy_shares_frozen_weights():
    base = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    for p in base.parameters():
        p.requires_grad_(False)
    m = candidates.shared_copy(base)
    assert all(p.data_ptr() == q.data_ptr() for p, q in zip(m.parameters(), base.parameters()))
    assert all(p is not q for p, q in zip(m.parameters(), base.parameters()))


def test_the_folded_alternative_runs_hut_on_the_folded_path_only():
    from hut.methods.hut import hut_layers

    base = candidates.build_base("roberta_large", 1, 512, "cpu", 0)
    paths = {name: {layer.path for _, layer in hut_layers(candidates.build_candidate(name, base).model)}
             for name in ("hut", "hut@folded")}
    assert paths == {"hut": {"auto"}, "hut@folded": {"folded"}}
    # and the base model's frozen weights are shared, not copied, by both
    for name in ("hut", "hut@folded"):
        cand = candidates.build_candidate(name, base)
        frozen = [p for p in cand.model.parameters() if not p.requires_grad]
        assert frozen and all(p.untyped_storage().data_ptr() in base.ptrs for p in frozen)


def test_saved_tensor_counter_counts_activations_not_parameters():
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)
    with SavedTensors(lin.parameters()) as saved:
        y = torch.tanh(lin(x))  # linear saves x (weight grad) and its weight; tanh saves its output
    y.sum().backward()
    assert saved.bytes == 2 * 4 * 8 * 4  # x and tanh's output, not the weight


def test_paired_ratio_and_agreement():
    a, b = [2.0, 2.2, 1.8, 2.0], [1.0, 1.1, 0.9, 1.0]
    r = paired_ratio(a, b)
    assert r.value == pytest.approx(2.0) and r.lo == pytest.approx(2.0) and r.hi == pytest.approx(2.0)
    noisy = paired_ratio([1.0, 1.3, 0.8, 1.1, 0.95], [1.0] * 5)
    assert noisy.lo < noisy.value < noisy.hi
    assert agree(r, noisy) is False and agree(noisy, noisy) is True and agree(None, r) is None
    assert paired_ratio([1.0], [1.0]) is None  # one round has no interval


def test_interleaved_rotates_and_drops_warmup():
    calls = []
    t = interleaved(["x", "y", "z"], lambda it: (calls.append(it), (1.0, 1.0))[1], rounds=2, warmup=1)
    assert calls == ["x", "y", "z", "y", "z", "x", "z", "x", "y"]
    assert all(len(t[k].cpu) == 2 for k in "xyz")


def test_test_preset_writes_json_and_markdown(tmp_path):
    res = bench.run(bench.options(["preset=test", f"out={tmp_path}"]), log=lambda *_: None)
    js, md = tmp_path / "test-cpu.json", tmp_path / "test-cpu.md"  # the names in INTERFACE.md
    data = json.loads(js.read_text())
    assert data["setup"]["preset"] == "test" and data["setup"]["threads"] == 1
    assert data["setup"]["versions"]["torch"] == torch.__version__
    assert set(data["models"]) == {"roberta_large", "gpt2_medium"}
    for name, m in data["models"].items():
        assert not m["failed"], m["failed"]
        assert [r["method"] for r in m["rows"]] == ["floor", "hut", "lora"]
        assert m["repeatable"]["pairs"] == 4  # hut and lora against the floor and each other
    rows = data["rows"]  # the primary model's rows, one per method
    assert data["primary_model"] == "roberta_large" and rows == data["models"]["roberta_large"]["rows"]
    for r in rows:
        assert r["train_step_s"] > 0 and math.isfinite(r["peak_mem_mb"]) and r["peak_mem_mb"] > 0
        for key in ("ratio_to_floor", "ratio_to_lora"):  # a number, and the same with its interval
            lo, hi = r[f"{key}_ci"]["ci95"]
            assert isinstance(r[key], float) and r[key] == r[f"{key}_ci"]["ratio"]
            assert lo <= r[key] <= hi and r[f"{key}_ci"]["rounds"] == 3
    by = {r["method"]: r for r in rows}
    assert by["floor"]["ratio_to_floor"] == 1.0 and by["lora"]["ratio_to_lora"] == 1.0
    assert by["floor"]["extra_act_mb"] == 0.0
    assert by["hut"]["trainable_params"] > by["floor"]["trainable_params"]
    inf = data["inference"]
    assert inf["merged_over_base"] == inf["merged_over_base_ci"]["ratio"] > 0 and inf["merged_max_abs_diff"] < 1e-4
    assert inf["base_copy_over_base_ci"]["ratio"] > 0 and "A/A control" in md.read_text()
    assert len(data["goals"]) == 6 and all(g["line"].startswith("GOAL [") for g in data["goals"])
    assert all(("NOT MET" in g["line"]) == (g["met"] is False) for g in data["goals"])
    text = md.read_text()
    assert "| method |" in text and "| hut |" in text and "merged/base" in text and "Command: `python -m hut.bench" in text
    assert res["rows"] == rows


def test_train_check_tiny_on_cpu(tmp_path):
    from hut.bench import train_check

    train_check.main(["device=cpu", "layers=1", "vocab=512", "steps=4", "batch=2", "seq=16", "window=2",
                      f"out={tmp_path}"])
    res = json.loads((tmp_path / "train-check-cpu.json").read_text())
    assert [(r["method"], r["dtype"]) for r in res["runs"]] == [("hut", "float32"), ("hut", "bf16"),
                                                                ("lora", "float32"), ("lora", "bf16")]
    assert {r["method"]: r["lr"] for r in res["runs"]} == {"hut": 2e-3, "lora": 2e-4}  # Table 3's rows
    assert all(len(r["losses"]) == 4 and all(math.isfinite(x) for x in r["losses"]) for r in res["runs"])
    assert set(res["drop_ratio"]) == {"hut", "lora"}
    assert "| hut | bf16 |" in (tmp_path / "train-check-cpu.md").read_text()
    with pytest.raises(SystemExit, match="not a language model"):
        train_check.main(["device=cpu", "model=roberta_large", "layers=1", f"out={tmp_path}"])


def test_gpu_check_stops_without_cuda(tmp_path):
    import subprocess
    import sys

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: make gpu-check runs for real")
    p = subprocess.run(["bash", "scripts/gpu_check.sh"], env={"PY": sys.executable, "OUT": str(tmp_path),
                                                              "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert p.returncode != 0 and "no CUDA device" in p.stderr
    assert not any(tmp_path.iterdir())  # nothing written
