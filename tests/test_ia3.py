"""(IA)^3 on HUT's layer computes what peft's IA3 layer computes (float32): same outputs, same
gradients, same parameter count, on whole modules (RoBERTa) with the paper's [k, v, ffn_out]."""
import copy

import torch

from hut.methods import build_method, count_parameters, prepare_model
from hut.methods.ia3 import IA3Linear


def _peft_ia3(model, family):
    from peft import IA3Config
    from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING

    from hut.methods.targets import resolve_targets

    names = [t.name for t in resolve_targets(model, family, ["k", "v", "ffn_out"])]
    ff = [t.name for t in resolve_targets(model, family, ["ffn_out"])]
    cfg = IA3Config(target_modules=names, feedforward_modules=ff, init_ia3_weights=True)
    PEFT_TYPE_TO_TUNER_MAPPING[cfg.peft_type](model, cfg, adapter_name="default")
    return model


def test_ia3_equals_peft_ia3_in_float32(tiny_model):
    lm = tiny_model("tiny_roberta")
    ours = prepare_model(copy.deepcopy(lm.model), build_method({"name": "ia3"}), lm.family, lm.head_prefixes)
    for p in lm.model.parameters():
        p.requires_grad_(False)
    ref = _peft_ia3(lm.model, lm.family)
    g = torch.Generator().manual_seed(0)
    pairs = []
    for name, layer in ours.named_modules():
        if isinstance(layer, IA3Linear):
            theirs = ref.get_submodule(name).ia3_l["default"]
            v = 1 + 0.2 * torch.randn(layer.factors["w"].l.shape, generator=g)
            with torch.no_grad():
                layer.factors["w"].l.copy_(v)
                theirs.copy_(v.view_as(theirs))
            pairs.append((layer.factors["w"].l, theirs))
    assert len(pairs) == 3 * lm.model.config.num_hidden_layers
    heads = lm.head_prefixes
    assert count_parameters(ours, heads)["adapter"] == sum(p.numel() for _, p in pairs)
    ids = torch.randint(5, 1000, (3, 11), generator=g)
    labels = torch.tensor([0, 1, 1])
    out_ours, out_ref = ours(ids, labels=labels), ref(ids, labels=labels)
    torch.testing.assert_close(out_ours.logits, out_ref.logits, atol=1e-6, rtol=1e-5)
    out_ours.loss.backward()
    out_ref.loss.backward()
    for mine, theirs in pairs:
        torch.testing.assert_close(mine.grad, theirs.grad.view_as(mine.grad), atol=1e-7, rtol=1e-4)


def test_ia3_on_gpt2_rescales_only_the_k_and_v_slices(tiny_model):
    lm = tiny_model("tiny_gpt2")
    model = prepare_model(lm.model, build_method({"name": "ia3"}), lm.family, lm.head_prefixes)
    c_attn = model.transformer.h[0].attn.c_attn
    assert isinstance(c_attn, IA3Linear) and set(c_attn.factors) == {"k", "v"}
    assert model.transformer.h[0].mlp.c_proj.factors["w"].input_side
