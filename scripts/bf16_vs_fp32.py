"""HUT trained in float32 and under bf16 autocast, the same runs otherwise: does bf16 lose anything?

    HUT_DATA=../shared/data python scripts/bf16_vs_fp32.py [seeds=[0,1]] [epochs=3] [extra Hydra overrides]

MiniLM (the demo's real pretrained encoder) with HUT on real SST-2, the demo's settings (800
training / 400 dev examples, batch 8, lr 5e-3, head lr 2e-2), ``epochs`` epochs of 100 steps; for
each seed one run with ``trainer.mixed_precision=no`` and one with ``bf16``. Runs go to
``results/precision/runs`` (finished ones are reused, as always); the table of per-epoch dev accuracy
and training loss is written to ``results/precision/bf16_vs_fp32.md`` and printed.
"""
from __future__ import annotations

import sys
from pathlib import Path

OUT = Path("results/precision")


def main(argv: list[str]) -> int:
    from hut.config import compose, split_own
    from hut.trainer import run

    own, extra = split_own(argv, ("seeds", "epochs"), "bf16_vs_fp32")
    seeds = [int(s) for s in own.get("seeds", "[0,1]").strip("[]").split(",")]
    epochs = int(own.get("epochs", 3))
    rows = []
    for seed in seeds:
        for mp in ("no", "bf16"):
            ovs = ["experiment=demo", "row=demo/hut", "task=sst2", f"trainer.epochs={epochs}", f"seed={seed}",
                   f"trainer.mixed_precision={mp}", f"results_dir={OUT / 'runs'}", "trainer.progress=false", *extra]
            rec = run(compose(ovs), ovs)
            hist = rec["history"]
            rows.append((seed, "float32" if mp == "no" else "bf16", [h["accuracy"] for h in hist],
                         [h["train_loss"] for h in hist], rec["wall_time_s"]))
    cmd = " ".join(["python scripts/bf16_vs_fp32.py", *argv])
    lines = [f"# HUT, float32 against bf16 autocast\n\nCommand: `{cmd}`\n",
             f"MiniLM + HUT on real SST-2 (800 training / 400 dev examples, the demo's settings), {epochs} epochs "
             "of 100 steps; per epoch: dev accuracy, training loss (epoch mean).\n",
             "| seed | precision | dev accuracy per epoch | train loss per epoch | wall (s) |", "|---|---|---|---|---:|"]
    for seed, prec, acc, loss, wall in rows:
        lines.append(f"| {seed} | {prec} | {' / '.join(f'{a:.4f}' for a in acc)} | "
                     f"{' / '.join(f'{x:.4f}' for x in loss)} | {wall:.0f} |")
    from hut.files.atomic import write_atomic

    text = "\n".join(lines) + "\n"
    write_atomic(OUT / "bf16_vs_fp32.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
