"""E2E decoding: the suite's batched beam search against a plain ``generate`` per MR.

    python -m hut.bench.decode [mrs=12] [pairs=3] [batch=12] [out=results/bench]   (configs/cli/decode.yaml)

On SmolLM2-135M (the real model of ``make demo``, a Llama architecture) and real E2E test MRs (a
seeded subset), with Table 7's decoding (beam 10, length penalty 0.9, no repeated 4-grams, at most
64 new tokens):

* the suite: ``hut.tasks.E2ETask.generate``, the MRs in left-padded batches of ``batch``;
* plain: one ``model.generate`` call per MR (batch 1, as the LoRA reference's gpt2_beam.py decodes);

interleaved ``pairs`` times on one CPU thread; MRs per second (process CPU time) and the ratio with a
bootstrap 95% interval; how many outputs the two give identically. Then the share of an E2E epoch
spent decoding, *extrapolated* from measured rates: a training step of HUT (batch 4, as Table 7)
timed on this model, times the 10,516 steps of one epoch on the 42,061 training pairs, against
decoding the 630 test MRs at the suite's measured rate.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from hut.bench.measure import paired_ratio
from hut.bench.report import write
from hut.build import build
from hut.config import cli_options, compose
from hut.runtime.provenance import versions
from hut.tasks import build_task, first_line
from hut.results.render.formats import markdown as md_table

E2E_TRAIN_PAIRS, E2E_TEST_MRS, TABLE7_BATCH = 42_061, 630, 4


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    s = cli_options(argv, "decode", "hut.bench.decode")
    data_dir = s["data_dir"]
    if not data_dir or not (Path(data_dir) / "e2e").is_dir():
        raise SystemExit("hut.bench.decode: needs the E2E test set: set HUT_DATA (e.g. ../shared/data) or data_dir=")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    cfg = OmegaConf.to_container(compose([
        "experiment=demo_e2e", "row=demo_e2e/hut", "task.num_beams=10", "task.length_penalty=0.9",
        "task.no_repeat_ngram_size=4", "task.max_new_tokens=64", f"trainer.eval_batch_size={s['batch']}",
        f"data.dir={data_dir}", f"data.max_eval_samples={s['mrs']}"]), resolve=True)
    adapted = build(cfg["model"], cfg["method"], "generation")
    model = adapted.model.eval()
    task = build_task(cfg, adapted.tokenizer)
    mrs = [it["mr"] for it in task.eval_items()]
    tok, t = adapted.tokenizer, cfg["task"]

    def plain() -> list[str]:
        outs = []
        with torch.no_grad():
            for mr in mrs:
                enc = tok(task._prompt(mr), return_tensors="pt", add_special_tokens=False)
                gen = model.generate(**enc, **task.generate_kwargs())  # the same settings, one MR per call
                outs.append(first_line(tok.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)))
        return outs

    runs = {"suite": [], "plain": []}
    outputs = {}
    for i in range(s["pairs"]):
        for name in (("suite", "plain") if i % 2 == 0 else ("plain", "suite")):
            c0 = time.process_time()
            outputs[name] = task.generate(model, mrs, "cpu") if name == "suite" else plain()
            runs[name].append(time.process_time() - c0)
            print(f"pair {i + 1}: {name} {len(mrs) / runs[name][-1]:.3f} MRs/s", flush=True)
    ratio = paired_ratio([len(mrs) / x for x in runs["suite"]], [len(mrs) / x for x in runs["plain"]])
    same = sum(a == b for a, b in zip(outputs["suite"], outputs["plain"]))

    # one training step of HUT at Table 7's batch, on E2E training pairs of this model
    model.train()
    train_cfg = dict(cfg, data={**cfg["data"], "max_train_samples": 64})
    train_task = build_task(train_cfg, tok)
    pairs = train_task.train_dataset()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    steps = []
    for k in range(6):
        batch = train_task.collate(pairs[TABLE7_BATCH * k: TABLE7_BATCH * (k + 1)])
        c0 = time.process_time()
        train_task.loss(model, batch).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps.append(time.process_time() - c0)
    step_s = statistics.median(steps[1:])
    decode_mr_s = statistics.median(runs["suite"]) / len(mrs)
    epoch_train = math.ceil(E2E_TRAIN_PAIRS / TABLE7_BATCH) * step_s
    epoch_decode = E2E_TEST_MRS * decode_mr_s
    share = epoch_decode / (epoch_train + epoch_decode)
    result = {"setup": {**s, "command": " ".join(["python -m hut.bench.decode", *argv]),
                        "model": "smollm2 (HUT at init)", "decoding": {k: t[k] for k in ("num_beams", "length_penalty",
                                                                                         "no_repeat_ngram_size",
                                                                                         "max_new_tokens")},
                        "threads": 1, "versions": versions(("torch", "transformers"))},
              "mrs_per_s": {k: [len(mrs) / x for x in v] for k, v in runs.items()},
              "suite_over_plain": ratio.as_dict() if ratio else None, "identical_outputs": [same, len(mrs)],
              "train_step_s": step_s, "epoch_share_decoding_extrapolated": share,
              "epoch_seconds_extrapolated": {"train": epoch_train, "decode": epoch_decode}}
    md = (f"# hut.bench.decode\n\nCommand: `{result['setup']['command']}`\n\nSmolLM2-135M, {len(mrs)} E2E test MRs, "
          f"beam {t['num_beams']}, length penalty {t['length_penalty']}, no-repeat {t['no_repeat_ngram_size']}, "
          f"{t['max_new_tokens']} new tokens at most; 1 thread, {s['pairs']} interleaved pairs (process CPU time).\n\n"
          + md_table(["decoding", "MRs/s"], [[k, f"{statistics.fmean(len(mrs) / x for x in v):.3f}"]
                                              for k, v in runs.items()])
          + f"\nSuite (batches of {s['batch']}) / plain generate per MR: **{ratio.text() if ratio else '-'}**; "
          f"identical outputs: {same} of {len(mrs)}.\n\nShare of an E2E epoch spent decoding (extrapolated from the "
          f"measured rates, not run): {share:.1%} (training {epoch_train / 3600:.1f} h = "
          f"{math.ceil(E2E_TRAIN_PAIRS / TABLE7_BATCH):,} steps x {step_s:.3f} s; decoding {epoch_decode / 3600:.2f} h = "
          f"{E2E_TEST_MRS} MRs x {decode_mr_s:.2f} s) on this CPU thread.\n")
    write(result, Path(s["out"]), "decode-cpu", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
