"""HUT as a peft method (hut.peft): peft's own functions on a tiny RoBERTa and a tiny GPT-2 built from config.

Identity at init, the paper's parameter count, merge_and_unload to stock modules, an exact unmerge,
save_pretrained / PeftModel.from_pretrained in a fresh process, disable_adapter, named adapters, and
the same numbers as the suite's ``method=hut`` (one implementation). CPU, seconds.
"""
import copy
import enum
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from peft import PeftModel, get_peft_model
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers.pytorch_utils import Conv1D

import hut.peft
from hut.methods import build_method, prepare_model
from hut.methods.hut import HutLinear, hut_layers
from hut.peft import HutConfig, HutLayer

ROOT = Path(__file__).resolve().parents[1]
R = 4
CONFIGS = {  # the paper's placements: RoBERTa's query and value; GPT-2's q and v thirds of c_attn
    "tiny_roberta": dict(r=R, target_modules=["query", "value"], task_type="SEQ_CLS"),
    "tiny_gpt2": dict(r=R, target_modules=["c_attn"], fused_slices={"c_attn": ["q", "v"]}, fan_in_fan_out=True,
                      task_type="CAUSAL_LM"),
}


def _ids(seed=0):
    return torch.randint(5, 1000, (3, 11), generator=torch.Generator().manual_seed(seed))


def _peft(tiny_model, name, **overrides):
    lm = tiny_model(name)
    frozen = copy.deepcopy(lm.model)
    model = get_peft_model(lm.model, HutConfig(**{**CONFIGS[name], **overrides}))
    return frozen, model


def _randomise(model, std=0.2, seed=1):
    """Move every trainable parameter (HUT's factors, the saved head) off its init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * std)


def _trained(tiny_model, name):
    """(frozen model, peft model with every trainable parameter moved, ids, the peft model's logits)."""
    frozen, model = _peft(tiny_model, name)
    _randomise(model)
    ids = _ids()
    return frozen, model, ids, model(ids).logits.detach()


def _hut_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, HutLayer)]


# ------------------------------------------------------------------------------------ registration
def test_import_registers_hut_with_peft():
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
    from peft.utils.peft_types import PeftType

    assert PeftType("HUT") is PeftType.HUT and "HUT" in list(PeftType)
    assert PEFT_TYPE_TO_CONFIG_MAPPING[PeftType.HUT] is HutConfig
    assert PEFT_TYPE_TO_TUNER_MAPPING[PeftType.HUT] is hut.peft.HutModel
    import importlib

    importlib.reload(hut.peft)  # a second import registers nothing twice and raises nothing


def test_a_peft_without_register_peft_method_is_one_line_naming_the_version():
    from hut.peft.register import PEFT_MIN, PEFT_REQUIRED, require_peft

    with pytest.raises(ImportError, match=r"needs peft>=") as e:
        require_peft("0.14.0", has_register=False)
    assert PEFT_REQUIRED in str(e.value) and "\n" not in str(e.value) and "found peft 0.14.0" in str(e.value)
    with pytest.raises(ImportError, match="found peft 0.17.1"):
        require_peft("0.17.1", has_register=True)  # has the hook, but older than the tested range
    with pytest.warns(UserWarning, match="tested with peft"):
        require_peft("9.0.0", has_register=True)
    require_peft(PEFT_MIN, has_register=True)


def test_the_package_pins_the_tested_peft_range():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    from hut.peft.register import PEFT_REQUIRED

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (peft_req,) = [Requirement(d) for d in deps if Requirement(d).name == "peft"]
    assert peft_req.specifier == SpecifierSet(PEFT_REQUIRED)


class Kind(str, enum.Enum):  # a stand-in for peft's PeftType
    A = "A"


def test_add_peft_type_makes_a_full_member():
    from hut.peft.register import add_peft_type

    add_peft_type(Kind, "HUT")
    add_peft_type(Kind, "HUT")  # idempotent
    m = Kind.HUT
    assert Kind("HUT") is m and Kind["HUT"] is m and list(Kind) == [Kind.A, m] and len(Kind) == 2
    assert m == "HUT" and m.value == "HUT" and m.name == "HUT" and isinstance(m, Kind)
    assert {"HUT": 1}[m] == 1 and json.dumps(m) == '"HUT"'
    assert pickle.loads(pickle.dumps(m)) is m


@pytest.mark.parametrize("kwargs,match", [
    (dict(r=0), "HutConfig.r must be a positive integer"),
    (dict(init="zeros"), "HutConfig.init must be one of"),
    (dict(bias_mode="x"), "HutConfig.bias_mode must be one of"),
    (dict(compact="three"), "HutConfig.compact must be None or one of"),
    (dict(fused_slices={"c_attn": ["q", "o"]}), r"fused_slices\['c_attn'\] must list some of q, k, v"),
])
def test_bad_config_is_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HutConfig(target_modules=["query"], **kwargs)


def test_config_errors_that_need_the_model(tiny_model):
    with pytest.raises(ValueError, match="set fan_in_fan_out=True"):
        get_peft_model(tiny_model("tiny_gpt2").model, HutConfig(target_modules=["c_attn"]))
    with pytest.raises(ValueError, match=r"no default for model type 'gpt2'.*fused_slices"):
        get_peft_model(tiny_model("tiny_gpt2").model, HutConfig(fan_in_fan_out=True))
    with pytest.raises(ValueError, match=r"fused_slices pattern\(s\) \['c_atn'\] match no adapted module"):
        get_peft_model(tiny_model("tiny_gpt2").model,
                       HutConfig(target_modules=["c_attn"], fan_in_fan_out=True, fused_slices={"c_atn": ["q"]}))


# ------------------------------------------------------------------------------------ the model
@pytest.mark.parametrize("name", list(CONFIGS))
def test_identity_at_init_and_the_papers_parameter_count(tiny_model, name):
    frozen, model = _peft(tiny_model, name)
    ids = _ids()
    assert torch.equal(model(ids).logits, frozen(ids).logits)
    layers = _hut_layers(model)
    d = frozen.config.hidden_size
    blocks = 1 if name == "tiny_roberta" else 2  # query or value: one matrix; c_attn: its q and v thirds
    assert len(layers) == 2 * frozen.config.num_hidden_layers // blocks
    head = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" in n)
    trainable, _ = model.get_nb_trainable_parameters()
    assert trainable == 2 * frozen.config.num_hidden_layers * (d * R + R * d + 2 * d) + head


@pytest.mark.parametrize("name", list(CONFIGS))
def test_merge_and_unload_gives_stock_modules_with_the_same_logits(tiny_model, name):
    frozen, model, ids, before = _trained(tiny_model, name)
    assert (before - frozen(ids).logits).abs().max() > 1e-2  # the adapter changes the function
    merged = model.merge_and_unload()
    kinds = {type(m) for m in merged.modules()}
    assert not any(issubclass(k, BaseTunerLayer) for k in kinds)
    assert all(k.__module__.startswith(("torch.", "transformers.")) for k in kinds), kinds
    assert type(merged) is type(frozen)
    assert (merged(ids).logits - before).abs().max() <= 1e-4


@pytest.mark.parametrize("name", list(CONFIGS))
def test_unmerge_restores_the_base_weights_bit_for_bit(tiny_model, name):
    frozen, model, ids, before = _trained(tiny_model, name)
    base_state = {n: p.detach().clone() for n, p in model.named_parameters() if "base_layer" in n}
    model.merge_adapter()
    assert all(m.merged for _, m in _hut_layers(model))
    assert (model(ids).logits - before).abs().max() <= 1e-4
    assert any(not torch.equal(p, base_state[n]) for n, p in model.named_parameters() if n in base_state)
    model.unmerge_adapter()
    for n, p in model.named_parameters():
        if n in base_state:
            assert torch.equal(p, base_state[n]), n
    assert torch.equal(model(ids).logits, before)


def test_merge_adds_a_bias_to_a_bias_free_layer_and_unmerge_removes_it():
    base = nn.Sequential(nn.Linear(6, 5, bias=False))
    model = get_peft_model(base, HutConfig(r=2, target_modules=["0"]))
    _randomise(model)
    x = torch.randn(4, 6)
    before = model(x).detach()
    model.merge_adapter()
    layer = _hut_layers(model)[0][1].get_base_layer()
    assert layer.bias is not None and torch.allclose(model(x), before, atol=1e-6)
    model.unmerge_adapter()
    assert layer.bias is None and torch.equal(model(x), before)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_disable_adapter_gives_the_frozen_model(tiny_model, name):
    frozen, model, ids, trained = _trained(tiny_model, name)
    model.merge_adapter()
    with model.disable_adapter():  # unmerges first, as peft's layers do; a head in modules_to_save is the original
        out = model(ids).logits
    assert not any(m.merged for _, m in _hut_layers(model))
    assert torch.equal(out, frozen(ids).logits)
    assert torch.equal(model(ids).logits, trained)


def test_named_adapters_switch_and_one_runs_at_a_time(tiny_model):
    frozen, model = _peft(tiny_model, "tiny_roberta")
    model.add_adapter("other", HutConfig(**CONFIGS["tiny_roberta"], compact="folded"))
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".other." in n)  # added, not active
    model.set_adapter("other")
    assert all(p.requires_grad for n, p in model.named_parameters() if ".other." in n and "hut_" in n)
    _randomise(model, seed=2)
    ids = _ids()
    out_other = model(ids).logits.detach()
    model.set_adapter("default")  # untouched: still the identity
    assert torch.equal(model.base_model.model.roberta(ids).last_hidden_state,
                       frozen.roberta(ids).last_hidden_state)
    model.set_adapter("other")
    assert torch.equal(model(ids).logits, out_other)
    model.delete_adapter("default")
    assert all("default" not in m.hut_options for _, m in _hut_layers(model))
    assert torch.equal(model(ids).logits, out_other)


def test_two_active_adapters_are_an_error(tiny_model):
    _, model = _peft(tiny_model, "tiny_gpt2")  # no modules_to_save: peft itself allows several active
    model.add_adapter("other", HutConfig(**CONFIGS["tiny_gpt2"]))
    model.base_model.set_adapter(["default", "other"])
    with pytest.raises(ValueError, match=r"HUT runs one adapter at a time, and \['default', 'other'\] are active"):
        model(_ids())


def test_merging_two_adapters_composes_them_in_order():
    """merge_adapter([a, b]): b's HUT on the layer a's merge left, h = s_b ⊙ f_a(a_b ⊙ x) + t_b."""
    torch.manual_seed(0)
    model = get_peft_model(nn.Sequential(nn.Linear(6, 5)), HutConfig(r=2, target_modules=["0"]), adapter_name="a")
    model.add_adapter("b", HutConfig(r=3, target_modules=["0"]))
    for name in ("a", "b"):
        model.set_adapter(name)
        _randomise(model, seed=len(name) + ord(name))
    layer = _hut_layers(model)[0][1]
    f_a = copy.deepcopy(layer.get_base_layer())
    with torch.no_grad():
        for name, f in (("a", layer.hut_w["a"]), ("b", layer.hut_w["b"])):
            a, s, t = f.M_A.mean(1), f.M_B.mean(0) * f.gamma, f.beta
            if name == "a":
                f_a.weight.copy_(f_a.weight * a[None, :] * s[:, None])
                f_a.bias.copy_(s * f_a.bias + t)
        x = torch.randn(4, 6)
        expected = s * f_a(a * x) + t
    model.merge_adapter(["a", "b"])
    assert layer.merged_adapters == ["a", "b"]
    assert torch.allclose(model(x), expected, atol=1e-6)


@pytest.mark.parametrize("compact,per_matrix", [("split", lambda d, k: d + 3 * k), ("folded", lambda d, k: d + 2 * k)])
def test_compact_forms(tiny_model, compact, per_matrix):
    frozen, model = _peft(tiny_model, "tiny_roberta", compact=compact)
    d = frozen.config.hidden_size
    n = sum(p.numel() for n_, p in model.named_parameters() if p.requires_grad and "hut_" in n_)
    assert n == 2 * frozen.config.num_hidden_layers * per_matrix(d, d)
    assert torch.equal(model(_ids()).logits, frozen(_ids()).logits)


# ------------------------------------------------------------------------------------ save / load
LOAD_SCRIPT = """
import sys, torch, hut.peft
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
for kind, base_dir, adapter_dir, out in zip(*[iter(sys.argv[1:])] * 4):
    auto = AutoModelForSequenceClassification if kind == "cls" else AutoModelForCausalLM
    model = PeftModel.from_pretrained(auto.from_pretrained(base_dir), adapter_dir).eval()
    torch.save(model(torch.load(out + ".ids")).logits, out)
"""


def test_save_pretrained_and_a_fresh_process_loads_the_same_logits(tmp_path, tiny_model):
    args, expected = [], {}
    for name in CONFIGS:
        lm = tiny_model(name)
        lm.model.save_pretrained(tmp_path / name / "base")
        model = get_peft_model(lm.model, HutConfig(**CONFIGS[name]))
        _randomise(model)
        model.save_pretrained(tmp_path / name / "adapter")
        cfg = json.loads((tmp_path / name / "adapter" / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "HUT" and cfg["r"] == R
        out = tmp_path / name / "logits.pt"
        torch.save(_ids(), str(out) + ".ids")
        expected[out] = model(_ids()).logits.detach()
        args += ["cls" if name == "tiny_roberta" else "lm", tmp_path / name / "base", tmp_path / name / "adapter", out]
    proc = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for out, want in expected.items():
        assert torch.equal(torch.load(out), want), out


# ------------------------------------------------------------------------------------ one implementation
def _suite(tiny_model, name):
    lm = tiny_model(name)
    return prepare_model(lm.model, build_method({"name": "hut", "r": R, "targets": ["q", "v"]}), lm.family,
                         lm.head_prefixes)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_peft_and_the_suite_give_the_same_logits_and_gradients(tiny_model, name, dtype):
    suite = _suite(tiny_model, name)
    _, model = _peft(tiny_model, name)
    _randomise(suite)
    pairs = []
    for n, layer in hut_layers(suite):
        peft_layer = model.base_model.model.get_submodule(n)
        assert isinstance(layer, HutLinear) and isinstance(peft_layer, HutLayer)
        for key, f in layer.hut.items():
            g = getattr(peft_layer, f"hut_{key}")["default"]
            g.load_state_dict(f.state_dict())
            pairs += [(f"{n}.{key}.{p}", getattr(f, p), getattr(g, p)) for p, _ in f.named_parameters()]
    if name == "tiny_roberta":  # peft trains a copy of the head (modules_to_save): the same values
        model.base_model.model.classifier.modules_to_save["default"].load_state_dict(suite.classifier.state_dict())
    ids = _ids()
    outs = []
    for m in (suite, model):
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            logits = m(ids).logits
        logits.float().pow(2).mean().backward()
        outs.append(logits.detach())
    assert torch.equal(outs[0], outs[1])
    for label, p_suite, p_peft in pairs:
        assert torch.equal(p_suite.grad, p_peft.grad), label


def test_a_bf16_model_keeps_float32_factors_and_warns_about_small_updates(tiny_model):
    """peft keeps the adapter in float32 on a bf16 model, and HUT folds its scales into the bf16 weight's one
    rounding. A bf16-stored weight is on the bf16 grid, so a scale update under half a bf16 step (2^-9)
    rounds back to it: the warning says to load the model in float32 and train under autocast."""
    lm = tiny_model("tiny_roberta")
    with pytest.warns(UserWarning, match="bfloat16-stored weights.*load the model in float32"):
        model = get_peft_model(lm.model.to(torch.bfloat16), HutConfig(**CONFIGS["tiny_roberta"]))
    layer = _hut_layers(model)[0][1]
    f = layer.hut_w["default"]
    assert f.M_A.dtype == torch.float32 and layer.get_base_layer().weight.dtype == torch.bfloat16
    x = torch.randn(2, 5, layer.in_features, dtype=torch.bfloat16)
    before = layer(x)
    with torch.no_grad():
        f.gamma.mul_(1.001)
    assert torch.equal(layer(x), before)  # what the warning is about
    with torch.no_grad():
        f.gamma.mul_(1.02)
    after = layer(x)
    assert after.dtype == torch.bfloat16 and not torch.equal(after, before)
    model(_ids()).logits.float().sum().backward()
    assert f.M_A.grad is not None and f.M_A.grad.dtype == torch.float32


def test_conv1d_targets_need_fan_in_fan_out_and_linear_ones_refuse_it():
    with pytest.raises(ValueError, match="set fan_in_fan_out=False"):
        get_peft_model(nn.Sequential(nn.Linear(4, 4)), HutConfig(target_modules=["0"], fan_in_fan_out=True))
    model = get_peft_model(nn.Sequential(Conv1D(6, 4)), HutConfig(target_modules=["0"], fan_in_fan_out=True))
    assert isinstance(model.base_model.model[0], HutLayer)
