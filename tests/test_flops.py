"""FLOPs: the paper's analytic figures (Table 2) and measured counts against hand counts."""
import pytest

from hut import flops
from hut.config import load_group


def test_paper_analytic_figures():
    # RoBERTa-large, q and v in all 24 layers: 48 matrices, d = k = 1024, r = 8.
    assert flops.hut_matrix_flops(1024, 1024, 8) == 4 * 1024 * 1024 + 8 * 1024 + 8 * 1024
    assert flops.lora_matrix_flops(1024, 1024, 8) == 17 * 1024 * 1024
    assert flops.analytic_flops("hut", 1024, 1024, 8, 48) == 202_113_024
    assert flops.analytic_flops("lora", 1024, 1024, 8, 48) == 855_638_016
    assert f"{flops.paper_setting_gflops('hut'):.2f}" == "0.20"
    assert f"{flops.paper_setting_gflops('lora'):.2f}" == "0.86"


def test_the_papers_table2_prints_the_analytic_figures():
    from hut.config.paper import published_rows

    printed = {r["method"]: r["gflops"] for r in published_rows("table2") if r["method"] in ("hut", "lora")}
    assert printed == {m: round(flops.paper_setting_gflops(m), 2) for m in ("hut", "lora")}


def _one_layer():
    cfg = load_group("model", "tiny_roberta")
    cfg["arch"]["num_hidden_layers"] = 1
    return cfg


def test_hut_measured_against_hand_count():
    """One tiny RoBERTa layer (h = 32, FFN 64), HUT on q and v, 1 × 128 tokens, matmul FLOPs (2 per MAC)."""
    mc = _one_layer()
    h, i, T = 32, 64, flops.SEQ_LEN
    hut = flops.measure(mc, load_group("method", "hut"))
    floor = flops.measure(mc, None)
    assert hut.error is None and floor.error is None
    # forward: q, k, v, o; QK^T and AV; FFN in/out; classifier dense + out_proj on the first token
    fwd = 4 * 2 * T * h * h + 2 * 2 * T * T * h + 2 * 2 * T * h * i + 2 * h * h + 2 * h * 2
    # backward of logits.sum(): head weight + input grads; FFN out/in and o input grads; attention:
    # grad of probs and of V (AV), grad of Q only (K is frozen with a frozen input); q and v: the
    # gradient w.r.t. the scaled input (g·s)·W^T, which HUT needs for M_A even where x needs none.
    bwd = (2 * h * h + 2 * h * h) + (4 * h + 4 * h) + 2 * (2 * T * h * i) + 2 * T * h * h \
        + 3 * (2 * T * T * h) + 2 * (2 * T * h * h)
    assert hut.infer.matmul == fwd  # HUT adds no matmul: ((x ⊙ a) W0) ⊙ s + t
    assert floor.infer.matmul == fwd
    assert hut.train.matmul == fwd + bwd
    assert hut.params["adapter"] == 2 * (h * 8 + 8 * h + 2 * h)  # d·r + r·k + 2k per matrix

    # Elementwise: per token, HUT adds x ⊙ a (d) and one fused addcmul t + v ⊙ s (k) per adapted matrix
    # (the counter counts 1 per output element of a pointwise op).
    short = flops.measure(mc, load_group("method", "hut"), seq_len=T // 2)
    short_floor = flops.measure(mc, None, seq_len=T // 2)
    extra_long = hut.infer.elementwise - floor.infer.elementwise
    extra_short = short.infer.elementwise - short_floor.infer.elementwise
    per_tokens = extra_long - extra_short
    assert per_tokens == 2 * (h + h) * (T - T // 2)


def test_lora_measured_extra_matmul():
    """LoRA (unmerged) adds x·A (2·d·r) and ·B (2·r·k) per token and adapted matrix."""
    mc = _one_layer()
    h, T = 32, flops.SEQ_LEN
    cfg = load_group("method", "lora")
    lora, floor = flops.measure(mc, cfg), flops.measure(mc, None)
    assert lora.measured_on == "meta"
    assert lora.infer.matmul - floor.infer.matmul == 2 * (2 * h * cfg["r"] + 2 * cfg["r"] * h) * T


@pytest.mark.parametrize("method", ["hut", "lora"])
def test_depth_extrapolation_is_exact(method):
    """The CPU fallback (real width, 1-3 layers, extrapolated) equals measuring the whole model."""
    mc = load_group("model", "tiny_roberta")
    mc["arch"]["num_hidden_layers"] = 4
    cfg = load_group("method", method)
    params, train, infer = flops._measure_on(flops._count_model_cfg(mc), cfg, "cpu", 1, 64)
    p2, t2, i2, how = flops._extrapolate(mc, cfg, 1, 64)
    assert (params, train, infer) == (p2, t2, i2)
    assert "extrapolated to 4" in how


def test_every_registered_method_is_measured():
    from hut.methods import METHODS

    ms = flops.measure_all("tiny_roberta", seq_len=32)
    assert [m.method for m in ms] == ["frozen"] + METHODS.names()
    failed = {m.method: m.error for m in ms if m.error}
    assert not failed, failed
    floor = ms[0]
    for m in ms[1:]:
        assert m.train.matmul >= floor.train.matmul, m.method


def test_counts_are_cached_on_disk_by_config(tmp_path, monkeypatch):
    """A second process (the per-process cache cleared) reads the count back instead of measuring."""
    from hut import flops
    from hut.config import load_group

    monkeypatch.setenv("HUT_CACHE", str(tmp_path))
    monkeypatch.setattr(flops, "_CACHE", {})
    cfg = load_group("model", "tiny_roberta")
    first = flops.measure(cfg, {"name": "lora", "r": 2, "targets": ["q", "v"]})
    assert first.error is None and len(list((tmp_path / "flops").glob("*.json"))) == 1
    monkeypatch.setattr(flops, "_CACHE", {})

    def no_measuring(*a, **k):
        raise AssertionError("measured again")

    monkeypatch.setattr(flops, "_measure_on", no_measuring)
    assert flops.measure(cfg, {"name": "lora", "r": 2, "targets": ["q", "v"]}) == first
    other = flops.measure(cfg, {"name": "lora", "r": 4, "targets": ["q", "v"]})  # another config: measured
    assert other.error is not None and "measured again" in other.error


def test_a_count_not_made_on_meta_says_why_once(tmp_path, monkeypatch, capsys):
    """A method that cannot run on meta is counted on the CPU; the reason is kept in the measurement and
    said once per method and model, whether counted now or read back from the disk cache."""
    monkeypatch.setenv("HUT_CACHE", str(tmp_path))
    monkeypatch.setattr(flops, "_CACHE", {})
    monkeypatch.setattr(flops, "_SAID", set())
    real = flops._measure_on

    def no_meta(model_cfg, method_cfg, device, *a):
        if device == "meta":
            raise RuntimeError("Tensor.item() cannot be called on meta tensors\nmore")
        return real(model_cfg, method_cfg, device, *a)

    monkeypatch.setattr(flops, "_measure_on", no_meta)
    cfg, lora = load_group("model", "tiny_roberta"), {"name": "lora", "r": 2, "targets": ["q", "v"]}
    m = flops.measure(cfg, lora, seq_len=16)
    assert m.error is None and m.measured_on.startswith("cpu") and m.fallback == (
        "RuntimeError: Tensor.item() cannot be called on meta tensors")
    flops.measure(cfg, lora, seq_len=16)
    said = capsys.readouterr().err.splitlines()
    assert said == [f"[flops] lora on tiny_roberta: counted on {m.measured_on}, not on meta ({m.fallback})"]
    monkeypatch.setattr(flops, "_CACHE", {})
    monkeypatch.setattr(flops, "_SAID", set())
    assert flops.measure(cfg, lora, seq_len=16) == m and capsys.readouterr().err.splitlines() == said  # from disk
