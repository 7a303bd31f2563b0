"""GLUE tasks: sequence classification / regression, one task class per :class:`GlueTaskSpec`."""
from __future__ import annotations

import os

import numpy as np
import torch
from tqdm.auto import tqdm

from hut.runtime import faults
from hut.data.cache import tokenize_glue
from hut.data.glue import GLUE_TASKS, SPLITS, load_glue, subsample
from hut.data.holdout import hold_out
from hut.metrics.glue import METRIC_LABELS, glue_metrics
from hut.tasks.base import TASKS, Task, cache_dir


class GlueTask(Task):
    score_metric = "accuracy"  # which GLUE metric `score` is (the spec's `metric`)
    splits = SPLITS
    tune_split = True

    def _load(self, split: str, max_samples):
        return load_glue(self.name, split, source=self.source, data_dir=self.data_dir,
                         max_samples=max_samples, seed=int(self.cfg["data"].get("subset_seed", 0)))

    def _tokenize(self, examples: list[dict], key_parts: tuple) -> list[dict]:
        return tokenize_glue(examples, self.tok, int(self.cfg["trainer"]["max_length"]),
                             cache_dir=os.path.join(cache_dir(self.cfg), "tokenized"),
                             key_parts=(self.name, self.source, str(self.data_dir), *key_parts))

    def _train_and_tune(self) -> tuple[list[dict], list[dict]]:
        """(the examples trained on, the held-out tune slice): without ``data.tune_samples`` the seeded
        ``max_train_samples`` subset of the training split and no slice; with it, the slice is held out
        first (:func:`hut.data.holdout.hold_out`) and the subset drawn from the rest."""
        d = self.cfg["data"]
        split, cap, seed = d.get("train_split", "train"), d.get("max_train_samples"), int(d.get("subset_seed", 0))
        if not d.get("tune_samples"):
            return self._load(split, cap), []
        pool, tune = hold_out(self._load(split, None), int(d["tune_samples"]), seed)
        return subsample(pool, cap, seed), tune

    def train_dataset(self):
        d = self.cfg["data"]
        train, _ = self._train_and_tune()
        return self._tokenize(train, (d.get("train_split", "train"), d.get("max_train_samples"),
                                      d.get("subset_seed", 0), "tune_samples", d.get("tune_samples")))

    def collate(self, batch):
        feats = [{k: v for k, v in ex.items() if k != "label"} for ex in batch]
        out = self.tok.pad(feats, return_tensors="pt")
        dtype = torch.float if self.kind == "regression" else torch.long
        out["labels"] = torch.tensor([ex["label"] for ex in batch], dtype=dtype)
        return dict(out)

    def eval_subset(self):
        split = self.cfg["data"].get("eval_split", "dev")
        return self._eval_subset_of(split, "example", len(self._load(split, None)))

    def evaluate(self, model, accelerator, run_dir):
        d = self.cfg["data"]
        if not hasattr(self, "_eval"):
            split, cap = d.get("eval_split", "dev"), d.get("max_eval_samples")
            self._eval = self._tokenize(self._load(split, cap), (split, cap, d.get("subset_seed", 0)))
        p, y = self._predict(model, accelerator, self._eval)
        # Kept per epoch (hut.results.judge.selection): a class id or a regression score, and the label, per example.
        self._dev_predictions = {"predictions": [round(float(v), 6) for v in p.tolist()],
                                 "labels": [float(v) for v in y.tolist()]}
        return glue_metrics(self.name, p.numpy(), y.numpy())

    def evaluate_tune(self, model, accelerator):
        d = self.cfg["data"]
        if not d.get("tune_samples"):
            return None
        if not hasattr(self, "_tune"):
            _, tune = self._train_and_tune()
            self._tune = self._tokenize(tune, (d.get("train_split", "train"), "tune", d["tune_samples"],
                                               d.get("subset_seed", 0)))
        p, y = self._predict(model, accelerator, self._tune)
        return glue_metrics(self.name, p.numpy(), y.numpy())

    @torch.no_grad()
    def _predict(self, model, accelerator, examples: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """(predictions, labels) of ``examples`` in their order: a class id or a regression score each."""
        bs = int(self.cfg["trainer"].get("eval_batch_size") or 32)
        model.eval()
        # Batches of similar length pad less (same predictions: padding is masked); the metrics see
        # the examples in file order again.
        order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
        preds, labels = [], []
        batches = range(0, len(order), bs)
        for i in tqdm(batches, desc="eval", leave=False, disable=self.bar_disable()):
            batch = self.collate([examples[j] for j in order[i : i + bs]])
            y = batch.pop("labels")
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            logits = model(**batch).logits.float().cpu()
            preds.append(logits[:, 0] if self.kind == "regression" else logits.argmax(-1))
            labels.append(y)
            faults.point("eval")
        model.train()
        back = torch.empty(len(order), dtype=torch.long)
        back[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        return torch.cat(preds)[back], torch.cat(labels)[back]

    @classmethod
    def score_predictions(cls, saved, indices, run_dir):
        p, y = np.asarray(saved["predictions"]), np.asarray(saved["labels"])
        if cls.kind != "regression":
            p, y = p.astype(int), y.astype(int)
        return float(glue_metrics(cls.name, p[indices], y[indices])[cls.best_metric])


    @classmethod
    def chance_score(cls, saved):
        """Pearson and Matthews: 0; accuracy: the majority class's share of the scored labels (needs them)."""
        if cls.kind == "regression" or cls.score_metric in ("matthews", "pearson", "spearman"):
            return 0.0
        if not saved:
            return None
        labels = np.asarray(saved["labels"]).astype(int)
        majority = np.bincount(labels).argmax()
        return cls.score_predictions({"predictions": [int(majority)] * len(labels), "labels": saved["labels"]},
                                     list(range(len(labels))), None)


def register_glue_task(spec) -> type[Task]:
    """Register a GLUE-like task from its :class:`hut.data.glue.GlueTaskSpec` (added to GLUE_TASKS).

    Adding such a task is its spec, this one call and its ``configs/task/<name>.yaml``: loaders,
    metrics, the trainer and Table 1's column follow from the spec.
    """
    if spec.name in GLUE_TASKS and GLUE_TASKS[spec.name] is not spec:
        raise ValueError(f"duplicate GLUE task name '{spec.name}'")
    GLUE_TASKS[spec.name] = spec
    cls = type(f"Glue_{spec.name}", (GlueTask,), {
        "name": spec.name, "label": spec.label, "kind": spec.kind, "num_labels": spec.num_labels,
        "metric_label": METRIC_LABELS.get(spec.metric, spec.metric), "score_metric": spec.metric,
    })
    TASKS.add(spec.name, cls)
    return cls


def _register_glue():
    for spec in list(GLUE_TASKS.values()):
        register_glue_task(spec)


_register_glue()
