"""The plan's stated figures, each with its source in the file: ``hardware.yaml`` (GPU kinds, FLOP rate,
kernel costs and their calibration) and ``datasets.yaml`` (examples and tokens per task)."""
from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import OmegaConf

HERE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _yaml(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(HERE / name), resolve=True)


def hardware() -> dict:
    return _yaml("hardware.yaml")


def datasets() -> dict:
    return _yaml("datasets.yaml")


def gpu(kind: str) -> dict:
    gpus = hardware()["gpus"]
    if kind not in gpus:
        raise ValueError(f"unknown gpu '{kind}'; known: {', '.join(gpus)} (hut/plan/hardware.yaml)")
    return {"kind": kind, **gpus[kind]}
