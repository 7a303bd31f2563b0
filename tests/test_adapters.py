"""Bottleneck adapters: real-size parameter counts against the papers, and where each adapter sits."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hut.methods import build_method, count_parameters, prepare_model  # noqa: E402
from hut.methods.adapters import BottleneckAdapter  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _yaml(group: str, name: str) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CONFIGS / group / f"{name}.yaml"), resolve=True)


def _real_size_count(model_name: str, method: str, **override) -> int:
    """Adapter parameters of ``method`` on a real-size model built on the meta device (no memory)."""
    from hut.models import load_model

    kind = "generation" if model_name.startswith("gpt2") else "classification"
    with torch.device("meta"):
        lm = load_model(_yaml("model", model_name), kind, pretrained=False, with_tokenizer=False)
        model = prepare_model(lm.model, build_method({**_yaml("method", method), **override}), lm.family,
                              lm.head_prefixes)
    return count_parameters(model, lm.head_prefixes)["adapter"]


# (model, method, bottleneck or None = the yaml default, exact count, the paper's figure, its rounding)
PAPER_COUNTS = [
    ("roberta_large", "padapter", None, 3_171_840, 3e6, 0.5e6),       # HUT/LoRA Table 1: PAdapter 3M
    ("roberta_large", "padapter", 16, 811_392, 0.8e6, 0.05e6),        # PAdapter 0.8M
    ("roberta_large", "hadapter", None, 6_343_680, 6e6, 0.5e6),       # HAdapter 6M
    ("roberta_large", "hadapter", 8, 835_968, 0.8e6, 0.05e6),         # HAdapter 0.8M
    ("gpt2_medium", "ladapter", None, 11_089_152, 11.09e6, 0.005e6),  # Table 3: AdapterL 11.09M
    ("gpt2_medium", "ladapter", 6, 368_784, 0.37e6, 0.005e6),         # AdapterL 0.37M
]


@pytest.mark.parametrize("model_name,method,bottleneck,exact,paper,half_unit", PAPER_COUNTS)
def test_real_size_counts_match_the_papers(model_name, method, bottleneck, exact, paper, half_unit):
    override = {} if bottleneck is None else {"bottleneck": bottleneck}
    n = _real_size_count(model_name, method, **override)
    assert n == exact
    assert abs(n - paper) <= half_unit, f"{method} on {model_name}: {n:,} does not round to {paper:,.0f}"


def test_yaml_defaults_are_the_big_rows():
    assert _yaml("method", "padapter")["bottleneck"] == 64
    assert _yaml("method", "hadapter")["bottleneck"] == 64
    assert _yaml("method", "ladapter")["bottleneck"] == 224


# --------------------------------------------------------------------------- placement (tiny models)
def _tiny(name: str):
    torch.manual_seed(0)
    if name == "tiny_llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0)
        return LlamaForCausalLM(cfg).eval(), "llama", ()
    from hut.models import load_model

    kind = "generation" if "gpt2" in name else "classification"
    lm = load_model(_yaml("model", name), kind, pretrained=False, with_tokenizer=False)
    return lm.model.eval(), lm.family, lm.head_prefixes


def _adapted(name: str, method: str, bottleneck: int = 4):
    model, family, heads = _tiny(name)
    frozen = copy.deepcopy(model)
    model = prepare_model(model, build_method({"name": method, "bottleneck": bottleneck}), family, heads)
    torch.manual_seed(1)
    with torch.no_grad():  # make every adapter non-trivial (up starts at zero)
        for m in model.modules():
            if isinstance(m, BottleneckAdapter):
                m.up.weight.normal_(0, 0.5)
                m.up.bias.normal_(0, 0.5)
                if m.norm is not None:
                    m.norm.weight.normal_(1, 0.2)
    return model, frozen


def _ids():
    return torch.randint(5, 1000, (2, 7), generator=torch.Generator().manual_seed(0))


EXPECTED_SITES = {  # method -> family -> (owner of the adapter, hooked module), relative to block N
    "hadapter": {"bert": [("attention.output", "attention.output.dropout"), ("output", "output.dropout")],
                 "gpt2": [("attn", "attn.resid_dropout"), ("mlp", "mlp.dropout")],
                 "llama": [("self_attn", "self_attn.o_proj"), ("mlp", "mlp.down_proj")]},
    "padapter": {"bert": [("output", "output.dropout")], "gpt2": [("mlp", "mlp.dropout")],
                 "llama": [("mlp", "mlp.down_proj")]},
    "ladapter": {"bert": [("", "")], "gpt2": [("", "")], "llama": [("", "")]},
}
BLOCKS = {"tiny_roberta": "roberta.encoder.layer", "tiny_gpt2": "transformer.h", "tiny_llama": "model.layers"}
FAMILY = {"tiny_roberta": "bert", "tiny_gpt2": "gpt2", "tiny_llama": "llama"}


@pytest.mark.parametrize("method", ["hadapter", "padapter", "ladapter"])
@pytest.mark.parametrize("name", ["tiny_roberta", "tiny_gpt2", "tiny_llama"])
def test_adapter_rewrites_exactly_its_sites_output(name, method):
    """Each hooked module's output = adapter(frozen module's output on the same input), nothing else."""
    model, frozen = _adapted(name, method)
    sites = EXPECTED_SITES[method][FAMILY[name]]
    n_adapters = sum(isinstance(m, BottleneckAdapter) for m in model.modules())
    n_blocks = len(model.get_submodule(BLOCKS[name]))
    assert n_adapters == len(sites) * n_blocks
    seen = []
    for i in range(n_blocks):
        block = model.get_submodule(f"{BLOCKS[name]}.{i}")
        fblock = frozen.get_submodule(f"{BLOCKS[name]}.{i}")
        for owner_path, hooked_path in sites:
            adapter = block.get_submodule(owner_path).adapter
            assert isinstance(adapter, BottleneckAdapter)
            assert (adapter.norm is not None) == (method == "ladapter")
            hooked, fhooked = block.get_submodule(hooked_path), fblock.get_submodule(hooked_path)

            def capture(mod, args, kwargs, out, f=fhooked, a=adapter):
                with torch.no_grad():
                    ref = f(*args, **kwargs)
                    ref0 = ref[0] if isinstance(ref, tuple) else ref
                    got = out[0] if isinstance(out, tuple) else out
                    seen.append(torch.allclose(got, a(ref0), atol=1e-6) and not torch.allclose(got, ref0))

            hooked.register_forward_hook(capture, with_kwargs=True)  # runs after the adapter's hook
    with torch.no_grad():
        model(_ids())
    assert seen and all(seen), seen


def test_bert_houlsby_sits_between_dropout_and_add_layernorm():
    model, _ = _adapted("tiny_roberta", "hadapter")
    layer = model.roberta.encoder.layer[0]
    x, res = torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    layer.train()  # dropout active: the adapter must see the dropped-out projection (Houlsby's order)
    for sub, x_in in ((layer.attention.output, x), (layer.output, torch.randn(2, 5, 64))):
        p = sub.dropout.p
        assert p > 0
        torch.manual_seed(3)
        expected = sub.LayerNorm(sub.adapter(torch.nn.functional.dropout(sub.dense(x_in), p, True)) + res)
        torch.manual_seed(3)
        torch.testing.assert_close(sub(x_in, res), expected)


def test_ladapter_is_on_the_block_output():
    model, frozen = _adapted("tiny_gpt2", "ladapter")
    x = torch.randn(2, 5, 32)
    block, fblock = model.transformer.h[1], frozen.transformer.h[1]
    out, ref = block(x), fblock(x)
    out = out[0] if isinstance(out, tuple) else out
    ref = ref[0] if isinstance(ref, tuple) else ref
    torch.testing.assert_close(out, block.adapter(ref))


def test_adapters_are_identity_at_init_and_survive_deepcopy():
    model, family, heads = _tiny("tiny_gpt2")
    frozen = copy.deepcopy(model)
    model = prepare_model(model, build_method({"name": "hadapter", "bottleneck": 4}), family, heads)
    ids = _ids()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, frozen(ids).logits, atol=0, rtol=0)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.transformer.h[0].mlp.adapter.up.bias.fill_(1.0)  # only the copy's adapter changes
        assert torch.equal(model(ids).logits, frozen(ids).logits)
        assert not torch.allclose(twin(ids).logits, frozen(ids).logits)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert "transformer.h.0.attn.adapter.down.weight" in names and "transformer.h.1.mlp.adapter.up.bias" in names
    assert "transformer.h.0.attn.c_proj.weight" in dict(model.named_parameters())  # frozen names unchanged


@pytest.mark.parametrize("cfg,match", [({"bottleneck": 0}, "positive integer"),
                                       ({"bottleneck": 8, "activation": "nope"}, "unknown activation")])
def test_bad_config_is_a_clear_error(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_method({"name": "padapter", **cfg})
