"""HUT in your own training script: peft's get_peft_model, transformers' Trainer, save, reload, merge.

    python examples/hut_peft_trainer.py --model roberta-base [--steps 60] [--out runs/hut-peft]

Any sequence-classification checkpoint works (a hub id or a local folder); BERT, RoBERTa, Llama-style
models need no target names (HUT's default is the query and value projections). The task is a toy one
written here (is the sentence positive?), so that the script runs anywhere in a minute; replace
``toy_dataset`` with your data. The model is loaded in float32; ``--bf16`` trains under bf16
autocast (Trainer's ``bf16=True``), where HUT keeps small updates exact (docs/library.md).

Prints the first and last logged training loss, and checks that the reloaded checkpoint and the merged
model give the trained model's logits.
"""
from __future__ import annotations

import argparse
import itertools
import random
from pathlib import Path

import torch
from datasets import Dataset
from peft import PeftModel, get_peft_model
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments)

import hut.peft  # registers HUT with peft (peft_type "HUT")
from hut.peft import HutConfig

GOOD = ["good", "great", "wonderful", "lovely", "superb", "fine", "excellent", "charming"]
BAD = ["bad", "awful", "dull", "poor", "terrible", "boring", "weak", "dreadful"]
SUBJECTS = ["the film", "this book", "the dinner", "our trip", "the play", "that song", "the hotel", "her talk"]


def toy_dataset(n: int = 256, seed: int = 0) -> Dataset:
    """Sentences "<subject> was <adjective>", label 1 for a positive adjective."""
    rng = random.Random(seed)
    pairs = list(itertools.product(SUBJECTS, GOOD + BAD))
    rows = [rng.choice(pairs) for _ in range(n)]
    return Dataset.from_dict({"text": [f"{s} was {a}" for s, a in rows], "label": [int(a in GOOD) for _, a in rows]})


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="roberta-base", help="a hub id or a local folder (sequence classification)")
    ap.add_argument("--out", default="runs/hut-peft")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--bf16", action="store_true", help="train under bf16 autocast (the model stays float32)")
    ap.add_argument("--cpu", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    torch.manual_seed(0)

    tok = AutoTokenizer.from_pretrained(args.model)
    data = toy_dataset().map(lambda b: tok(b["text"]), batched=True, remove_columns=["text"])
    base = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)

    # --- the ten lines of the README: HUT on the query and value projections, the head trained in full
    model = get_peft_model(base, HutConfig(r=args.r, task_type="SEQ_CLS"))
    model.print_trainable_parameters()
    targs = TrainingArguments(output_dir=str(out), max_steps=args.steps, learning_rate=args.lr,
                              per_device_train_batch_size=16, logging_steps=max(1, args.steps // 6),
                              save_steps=args.steps, report_to=[], bf16=args.bf16, use_cpu=args.cpu, seed=0)
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=DataCollatorWithPadding(tok))
    trainer.train()
    model.save_pretrained(out / "adapter")  # adapter_config.json ("peft_type": "HUT") + the factors and the head
    # ---

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    model.eval()
    batch = {k: v.to(model.device) for k, v in DataCollatorWithPadding(tok)(data.select(range(8))[:8]).items()
             if k != "labels"}
    # accelerate runs a model trained with bf16=True under bf16 autocast from then on: compare in the same precision
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=args.bf16)
    with torch.no_grad(), autocast:
        trained = model(**batch).logits
        fresh = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
        checkpoint = out / f"checkpoint-{args.steps}"
        reloaded = PeftModel.from_pretrained(fresh, checkpoint).to(model.device).eval()
        from_checkpoint = reloaded(**batch).logits
        merged = reloaded.merge_and_unload()  # plain transformers modules, the adapter folded into the weights
        from_merged = merged(**batch).logits
    merged.save_pretrained(out / "merged")
    tok.save_pretrained(out / "merged")
    res = {"first_loss": losses[0], "last_loss": losses[-1],
           "checkpoint_max_diff": float((from_checkpoint - trained).abs().max()),
           "merged_max_diff": float((from_merged - trained).abs().max()), "checkpoint": str(checkpoint)}
    print(f"loss {res['first_loss']:.4f} -> {res['last_loss']:.4f}; reloaded checkpoint max |diff| "
          f"{res['checkpoint_max_diff']:.2e}; merged model max |diff| {res['merged_max_diff']:.2e}")
    return res


if __name__ == "__main__":
    main()
