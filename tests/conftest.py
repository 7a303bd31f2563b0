"""Shared fixtures: tiny models built from config (random weights, no download)."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def model_cfg(name: str) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CONFIGS / "model" / f"{name}.yaml"), resolve=True)


@pytest.fixture
def tiny_model():
    """``tiny_model(name, kind=None, seed=0)`` -> LoadedModel in eval mode (dropout off), float32."""
    import torch

    from hut.models import load_model

    def make(name: str = "tiny_roberta", kind: str | None = None, seed: int = 0):
        kind = kind or ("generation" if "gpt2" in name else "classification")
        torch.manual_seed(seed)
        lm = load_model(model_cfg(name), kind, pretrained=False, with_tokenizer=False)
        lm.model.eval()
        return lm

    return make
