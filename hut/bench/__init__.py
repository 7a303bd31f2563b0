"""The cost benchmark: ``python -m hut.bench [preset=quick|full|test] [key=value ...]``.

    python -m hut.bench                               # quick preset, CPU, float32
    python -m hut.bench dtype=bf16                    # the same under bf16 autocast
    python -m hut.bench preset=full device=cuda dtype=bf16
    python -m hut.bench.pipeline                      # hut.train against transformers' Trainer + peft
    python -m hut.bench.decode                        # E2E beam decoding against plain generate

Arguments: ``configs/cli/bench.yaml`` and a preset from ``configs/cli/preset/``, composed like every
entry point's (a misspelt key is an error naming it). Writes
``<out>/<preset>-<device>.{json,md}`` (float32; ``-bf16`` appended under bf16) and prints the table and the goals.

=============  ====================================================================================
module         what
=============  ====================================================================================
``measure``    thread-CPU-time timing, interleaved rounds, paired ratios with bootstrap intervals
``candidates`` the real-size models from config and each method on them (settings from configs/)
``steps``      one model: training step, memory, merged inference
``report``     JSON, Markdown, the goals
``pipeline``   the whole training pipeline against transformers' Trainer + peft (examples/s)
``decode``     E2E beam decoding: batched against plain ``generate``, and its share of an epoch
=============  ====================================================================================
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from hut.bench.report import goals, markdown, write
from hut.bench.steps import bench_model
from hut.config import cli_options
from hut.runtime.provenance import versions


def options(argv: Sequence[str]) -> dict[str, Any]:
    s = cli_options(argv, "bench", "hut.bench")
    s["preset"] = next((a.split("=", 1)[1] for a in argv if a.startswith("preset=")), "quick")
    if s["device"] not in ("cpu", "cuda") or s["dtype"] not in ("float32", "bf16"):
        raise SystemExit(f"hut.bench: device is cpu or cuda and dtype float32 or bf16 (got {s['device']}, {s['dtype']})")
    if s["device"] == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("hut.bench: device=cuda but torch.cuda.is_available() is False")
    s["command"] = "python -m hut.bench " + " ".join(argv)
    return s


def run(s: dict[str, Any], log: Callable[[str], None] = print) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(int(s["threads"]))
    t0 = time.time()
    setup = {k: s[k] for k in ("preset", "device", "dtype", "rounds", "warmup", "repeats", "infer_rounds", "methods",
                               "models", "seed", "layers", "batch", "seq", "command")}
    setup.update(threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(),
                 versions=versions(("torch", "transformers", "peft")),
                 gpu=torch.cuda.get_device_name(0) if s["device"] == "cuda" else None)
    models = {m: bench_model(m, s, log) for m in s["models"]}
    result = {"schema_version": 2, "setup": setup, "primary_model": s["models"][0],
              "rows": models[s["models"][0]]["rows"], "inference": models[s["models"][0]]["inference"],
              "models": models, "goals": [g for m, res in models.items() for g in goals(m, res)]}
    setup["wall_time_s"] = time.time() - t0
    # <preset>-<device>.json for float32 (the name in ../shared/INTERFACE.md), -bf16 appended otherwise
    stem = f"{s['preset']}-{s['device']}" + ("" if s["dtype"] == "float32" else f"-{s['dtype']}")
    md = markdown(result)
    j, m = write(result, Path(s["out"]), stem, md)
    log("")
    log(md)
    log(f"wrote {j} and {m} ({setup['wall_time_s']:.0f} s)")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run(options(argv))
    return 0
