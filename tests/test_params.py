"""`python -m hut.params`: exact real-size counts (built on the meta device, no download)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hut.params import count, main, resolve_configs

ROOT = Path(__file__).resolve().parent.parent


def _count(*overrides):
    model_cfg, method_cfg, _ = resolve_configs(list(overrides))
    return count(model_cfg, method_cfg)


@pytest.mark.parametrize("overrides,adapter", [
    (("model=roberta_large", "method=hut", "method.r=8", "method.targets=[q,v]"), 884_736),  # 48·(2·1024·8 + 2·1024)
    (("model=roberta_large", "method=lora"), 786_432),                                       # 48·8·(1024+1024)
    (("model=gpt2_medium", "method=hut", "method.r=4", "method.targets=[q,v]"), 491_520),    # 48 slices·(2·1024·4 + 2·1024)
    (("model=roberta_large", "method=hut_compact"), 196_608),                                # 48·(1024 + 3·1024)
    (("model=roberta_large", "method=hut_compact", "method.r=64"), 196_608),                 # r never changes it
    (("model=roberta_large", "method=hut_compact", "method.form=folded"), 147_456),          # 48·(1024 + 2·1024)
    (("model=gpt2_medium", "method=lora", "method.r=4"), 393_216),                           # 48 slices·4·2048
    # the parts of HUT and its relatives (experiment=parts)
    (("model=roberta_large", "row=parts/out"), 49_152),                                       # 48·1024 (γ)
    (("model=roberta_large", "method=ssf"), 98_304),                                          # 48·2·1024 (γ, β)
    (("model=roberta_large", "method=hut_noshift"), 98_304),                                  # 48·(1024 + 1024) (a, γ)
    (("model=roberta_large", "method=hira"), 786_432),                                        # 48·8·(1024+1024), LoRA's
    (("model=roberta_large", "method=dora"), 835_584),                                        # LoRA's + 48·1024
    (("model=gpt2_medium", "method=dora", "method.r=4"), 442_368),                            # 48 slices·(4·2048 + 1024)
])
def test_exact_counts(overrides, adapter):
    res = _count(*overrides)
    assert res["adapter"] == adapter
    assert res["built_on"] == "meta"


def test_total_and_trainable_roberta_large_hut():
    res = _count("model=roberta_large", "method=hut")
    head = 1024 * 1024 + 1024 + 1024 * 2 + 2  # RobertaClassificationHead: dense + out_proj
    assert res["trainable"] == res["adapter"] + head
    frozen_roberta_large_cls = 355_361_794  # RoBERTa-large + 2-label head, as transformers builds it
    assert res["total"] == frozen_roberta_large_cls + res["adapter"]


def test_cli_json_line():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "hut.params", "model=gpt2_medium", "method=hut", "method.r=4",
                          "method.targets=[q,v]", "format=json"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True, timeout=300).stdout.strip().splitlines()
    assert len(out) == 1
    res = json.loads(out[0])
    assert res["adapter"] == 491_520 and res["trainable"] == 491_520 and res["method"] == "hut"


def test_cli_text(capsys):
    assert main(["model=tiny_roberta", "method=lora", "method.r=2"]) == 0
    text = capsys.readouterr().out
    assert "adapter: 512" in text.replace(",", "")  # 2 layers · 2 matrices · 2·(32+32)


def test_cli_errors(capsys):
    assert main(["model=tiny_roberta", "method=hut", "method.r=0"]) == 2
    assert "method.r" in capsys.readouterr().err
    assert main(["model=tiny_roberta", "method=hut", "method.targets=[q,x]"]) == 2
    with pytest.raises(SystemExit, match="unknown method 'nope' \\(method=nope\\); known: bitfit, "):
        main(["model=tiny_roberta", "method=nope"])
    with pytest.raises(SystemExit, match="unknown model 'roberta' \\(model=roberta\\); known: gpt2_medium, "):
        main(["model=roberta", "method=hut"])
    with pytest.raises(SystemExit, match="missing model"):
        main(["method=hut"])


def _registered_with_config():
    from hut.methods import METHODS

    have = {p.stem for p in (ROOT / "configs" / "method").glob("*.yaml")}
    return sorted(set(METHODS.names()) & have)


@pytest.mark.parametrize("method", _registered_with_config())
@pytest.mark.parametrize("model", ["tiny_roberta", "tiny_gpt2"])
def test_every_registered_method_counts(method, model):
    res = _count(f"model={model}", f"method={method}")
    assert res["total"] > 0 and 0 <= res["adapter"] <= res["trainable"] <= res["total"]


def test_falls_back_to_cpu_when_meta_fails(monkeypatch):
    from hut.methods import METHODS, Method

    class NeedsRealTensors(Method):
        name = "needs_real_tensors"

        def apply(self, model, family):
            if next(model.parameters()).is_meta:
                raise RuntimeError("cannot run on meta")
            return model

    monkeypatch.setitem(METHODS._items, NeedsRealTensors.name, NeedsRealTensors)
    model_cfg, _, _ = resolve_configs(["model=tiny_roberta", "method=hut"])
    res = count(model_cfg, {"name": NeedsRealTensors.name})
    assert res["built_on"] == "cpu" and res["adapter"] == 0 and res["total"] > 0
