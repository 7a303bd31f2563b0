"""A short training of HUT and LoRA on a real-size model, float32 against bf16: ``python -m hut.bench.train_check``.

What it answers: does a method learn under bf16 autocast as it does in float32, and what does a
step cost? The model is built from ``configs/model/<model>.yaml``'s ``arch`` (random weights, no
download); the task is next-token prediction on a fixed set of random sequences (``sequences``
of ``seq`` tokens, drawn once), which the adapters can only learn by moving the frozen model's
function, so the loss falls only as far as their updates reach the output. Each method gets its
paper row's learning rate and weight decay (Table 3 on GPT-2 medium: HUT 2e-3, LoRA 2e-4), AdamW,
no warmup, the same batches in the same order for every (method, dtype).

Per (method, dtype): the loss over the first and last ``window`` steps, the drop, the bf16 drop over
the float32 drop (≈ 1 when bf16 loses nothing; ≈ 0 when the updates are rounded away, as HUT's
were before its scales were folded into the float weight), the median step time and, on CUDA, the
peak memory. Writes ``<out>/train-check-<device>.{json,md}``.
"""
from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from hut.config import experiments as ex
from hut.bench import candidates
from hut.bench.measure import Timer
from hut.bench.report import write
from hut.bench.steps import train_step
from hut.config import cli_options
from hut.runtime.provenance import versions
from hut.results.render.formats import markdown as md_table


def lr_and_wd(method: str, model: str) -> tuple[float, float]:
    for cell in ex.cells(candidates.PAPER_TABLE[model]):
        if cell.config["method"]["name"] == method:
            t = cell.config["trainer"]
            return float(t["lr"]), float(t["weight_decay"])
    raise SystemExit(f"hut.bench.train_check: no {candidates.PAPER_TABLE[model]} row for method {method!r}")


def train(method: str, dtype: str, s: dict[str, Any], base, data: torch.Tensor) -> dict[str, Any]:
    torch.manual_seed(s["seed"])
    c = candidates.build_candidate(method, base)
    lr, wd = lr_and_wd(method, base.name)
    for g in c.optimizer.param_groups:
        g["lr"], g["weight_decay"] = lr, wd
    device, timer = s["device"], Timer(s["device"])
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    g = torch.Generator().manual_seed(s["seed"])
    losses, times = [], []
    for _ in range(int(s["steps"])):
        ids = data[torch.randint(0, data.shape[0], (int(s["batch"]),), generator=g)].to(device)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
        box: dict[str, torch.Tensor] = {}
        cpu, _ = timer(lambda: box.update(loss=train_step(c, batch, device, dtype)))
        losses.append(float(box["loss"]))
        times.append(cpu)
    if not all(math.isfinite(x) for x in losses):
        raise SystemExit(f"hut.bench.train_check: {method} {dtype}: a loss is not finite: {losses}")
    w = int(s["window"])
    first, last = statistics.fmean(losses[:w]), statistics.fmean(losses[-w:])
    return {"method": method, "dtype": dtype, "lr": lr, "weight_decay": wd, "losses": losses,
            "loss_first": first, "loss_last": last, "drop": first - last,
            "step_s": statistics.median(times[1:] or times),
            "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None}


def markdown(res: dict[str, Any]) -> str:
    s = res["setup"]
    lines = [f"# hut.bench.train_check\n\nCommand: `{s['command']}`\n",
             f"{s['model']} ({s['layers']} layers) built from config, random weights; next-token loss on "
             f"{s['sequences']} fixed random sequences of {s['seq']} tokens; batch {s['batch']}, {s['steps']} steps, "
             f"AdamW at each method's paper-row lr; {s['device']}; loss means over the first and last "
             f"{s['window']} steps.\n"]
    rows = []
    for r in res["runs"]:
        ratio = res["drop_ratio"].get(r["method"]) if r["dtype"] == "bf16" else None
        rows.append([r["method"], r["dtype"], f"{r['lr']:g}", f"{r['loss_first']:.4f}", f"{r['loss_last']:.4f}",
                     f"{r['drop']:.4f}", "–" if ratio is None else f"{ratio:.3f}", f"{r['step_s'] * 1e3:.1f}",
                     "–" if r["peak_mem_mb"] is None else f"{r['peak_mem_mb']:.0f}"])
    lines.append(md_table(["method", "dtype", "lr", "loss first", "loss last", "drop", "bf16 drop / float32 drop",
                           "step (ms)", "peak mem (MiB)"], rows, align="llrrrrrrr"))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    s = cli_options(argv, "train_check", "hut.bench.train_check")
    if s["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("hut.bench.train_check: device=cuda but torch.cuda.is_available() is False")
    if s["device"] == "cpu":
        torch.set_num_threads(int(s["threads"]))
    base = candidates.build_base(s["model"], s["layers"], s["vocab"], s["device"], s["seed"])
    if base.kind != "generation":
        raise SystemExit(f"hut.bench.train_check: model={s['model']} is not a language model (the task is "
                         "next-token prediction); use gpt2_medium")
    vocab = int(base.model.config.vocab_size)
    data = torch.randint(3, vocab, (int(s["sequences"]), int(s["seq"])),
                         generator=torch.Generator().manual_seed(s["seed"]))
    runs = [train(m, d, s, base, data) for m in s["methods"] for d in ("float32", "bf16")]
    by = {(r["method"], r["dtype"]): r for r in runs}
    ratio = {m: by[(m, "bf16")]["drop"] / by[(m, "float32")]["drop"] if by[(m, "float32")]["drop"] > 0 else None
             for m in s["methods"]}
    depth = base.model.config.num_hidden_layers  # GPT-2's config maps it to n_layer
    setup = {**s, "layers": int(depth), "command": " ".join(["python -m hut.bench.train_check", *argv]),
             "versions": versions(("torch", "transformers", "peft")),
             "gpu": torch.cuda.get_device_name(0) if s["device"] == "cuda" else None}
    res = {"setup": setup, "runs": runs, "drop_ratio": ratio}
    md = markdown(res)
    write(res, Path(s["out"]), f"train-check-{s['device']}", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
