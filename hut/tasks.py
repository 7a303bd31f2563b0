"""Tasks: how a run turns data into batches, a loss and dev metrics.

The trainer is task-agnostic: it asks the registered task for a training dataset, a collate
function, the loss of a batch and the evaluation metrics. GLUE tasks are sequence
classification/regression; E2E is causal-LM generation scored with the official-equivalent metrics.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hut import faults
from hut.registry import Registry

TASKS: Registry[type["Task"]] = Registry("task")


class Task:
    name: str
    label: str  # how tables name the task
    kind: str  # classification | regression | generation
    num_labels: int = 1
    best_metric: str = "score"  # the dev metric that selects the best epoch (higher is better)
    metric_label: str = "score"  # how tables name best_metric (GLUE: the paper's metric of the task)

    def __init__(self, cfg: Mapping[str, Any], tokenizer):
        self.cfg = cfg
        self.tok = tokenizer
        data = cfg["data"]
        self.source = data["source"]
        self.data_dir = data.get("dir")
        if self.source == "local" and not self.data_dir:
            raise FileNotFoundError(
                "data.dir is not set: point the environment variable HUT_DATA (or data.dir=...) at a "
                "directory in the GLUE/E2E layout (see README 'Data'), or use data.source=hub"
            )

    def train_dataset(self) -> list[dict]:
        raise NotImplementedError

    def collate(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, model, batch) -> torch.Tensor:
        return model(**batch).loss

    def evaluate(self, model, accelerator, run_dir: Path) -> dict[str, float]:
        raise NotImplementedError

    def eval_subset(self) -> dict[str, Any] | None:
        """Which items :meth:`evaluate` scores, for the run record; None when the task cannot say.

        The tasks that can say return :meth:`_eval_subset_of`'s dict: ``split``, ``unit`` (what an
        item is), ``n_scored`` of ``n_total``, ``max_eval_samples`` and ``subset_seed`` as
        configured, and ``indices``: the 0-based positions of the scored items in file order, or
        None when the whole split is scored.
        """
        return None

    def _eval_subset_of(self, split: str, unit: str, n_total: int) -> dict[str, Any]:
        """:meth:`eval_subset` for a split of ``n_total`` items subsampled the suite's way
        (:func:`hut.data.glue.subsample`, ``data.max_eval_samples`` seeded by ``data.subset_seed``)."""
        from hut.data.glue import subsample

        d = self.cfg["data"]
        max_samples, seed = d.get("max_eval_samples"), int(d.get("subset_seed", 0))
        indices = subsample(range(n_total), max_samples, seed)
        return {"split": split, "unit": unit, "n_scored": len(indices), "n_total": n_total,
                "max_eval_samples": None if max_samples is None else int(max_samples),
                "subset_seed": seed, "indices": None if len(indices) == n_total else indices}


def build_task(cfg: Mapping[str, Any], tokenizer) -> Task:
    name = cfg["task"]["name"]
    try:
        cls = TASKS.get(name)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return cls(cfg, tokenizer)


def task_info(name: str) -> tuple[str, int]:
    """(kind, num_labels) of a task without building it (the model depends on it)."""
    try:
        cls = TASKS.get(name)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return cls.kind, cls.num_labels


def _cache_dir(cfg) -> str:
    return cfg["data"].get("cache_dir") or os.environ.get("HUT_CACHE") or str(Path.home() / ".cache" / "hut")


# --------------------------------------------------------------------------------------------- GLUE
class GlueTask(Task):
    def _load(self, split: str, max_samples):
        from hut.data.glue import load_glue

        return load_glue(self.name, split, source=self.source, data_dir=self.data_dir,
                         max_samples=max_samples, seed=int(self.cfg["data"].get("subset_seed", 0)))

    def _tokenize(self, split: str, max_samples) -> list[dict]:
        from hut.data.cache import tokenize_glue

        examples = self._load(split, max_samples)
        self.labels_of = getattr(self, "labels_of", {})
        enc = tokenize_glue(
            examples, self.tok, int(self.cfg["trainer"]["max_length"]),
            cache_dir=os.path.join(_cache_dir(self.cfg), "tokenized"),
            key_parts=(self.name, split, self.source, str(self.data_dir), max_samples,
                       self.cfg["data"].get("subset_seed", 0)),
        )
        return enc

    def train_dataset(self):
        d = self.cfg["data"]
        return self._tokenize(d.get("train_split", "train"), d.get("max_train_samples"))

    def collate(self, batch):
        feats = [{k: v for k, v in ex.items() if k != "label"} for ex in batch]
        out = self.tok.pad(feats, return_tensors="pt")
        dtype = torch.float if self.kind == "regression" else torch.long
        out["labels"] = torch.tensor([ex["label"] for ex in batch], dtype=dtype)
        return dict(out)

    def eval_subset(self):
        split = self.cfg["data"].get("eval_split", "dev")
        return self._eval_subset_of(split, "example", len(self._load(split, None)))

    @torch.no_grad()
    def evaluate(self, model, accelerator, run_dir):
        from hut.metrics.glue import glue_metrics

        d = self.cfg["data"]
        if not hasattr(self, "_eval"):
            self._eval = self._tokenize(d.get("eval_split", "dev"), d.get("max_eval_samples"))
        bs = int(self.cfg["trainer"].get("eval_batch_size") or 32)
        model.eval()
        # Batches of similar length pad less (same predictions: padding is masked); the metrics see
        # the examples in file order again.
        order = sorted(range(len(self._eval)), key=lambda i: len(self._eval[i]["input_ids"]))
        preds, labels = [], []
        batches = range(0, len(order), bs)
        for i in tqdm(batches, desc="eval", leave=False, disable=not accelerator.is_main_process):
            batch = self.collate([self._eval[j] for j in order[i : i + bs]])
            y = batch.pop("labels")
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            logits = model(**batch).logits.float().cpu()
            preds.append(logits[:, 0] if self.kind == "regression" else logits.argmax(-1))
            labels.append(y)
            faults.point("eval")
        model.train()
        back = torch.empty(len(order), dtype=torch.long)
        back[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        p, y = torch.cat(preds)[back], torch.cat(labels)[back]
        return glue_metrics(self.name, p.numpy(), y.numpy())


def register_glue_task(spec) -> type[Task]:
    """Register a GLUE-like task from its :class:`hut.data.glue.GlueTaskSpec` (added to GLUE_TASKS).

    Adding such a task is its spec, this one call and its ``configs/task/<name>.yaml``: loaders,
    metrics, the trainer and Table 1's column follow from the spec.
    """
    from hut.data.glue import GLUE_TASKS
    from hut.metrics.glue import METRIC_LABELS

    if spec.name in GLUE_TASKS and GLUE_TASKS[spec.name] is not spec:
        raise ValueError(f"duplicate GLUE task name '{spec.name}'")
    GLUE_TASKS[spec.name] = spec
    cls = type(f"Glue_{spec.name}", (GlueTask,), {
        "name": spec.name, "label": spec.label, "kind": spec.kind, "num_labels": spec.num_labels,
        "metric_label": METRIC_LABELS.get(spec.metric, spec.metric),
    })
    TASKS.add(spec.name, cls)
    return cls


def _register_glue():
    from hut.data.glue import GLUE_TASKS

    for spec in list(GLUE_TASKS.values()):
        register_glue_task(spec)


_register_glue()


# ---------------------------------------------------------------------------------------------- E2E
@TASKS.register("e2e")
class E2ETask(Task):
    """E2E NLG with a causal LM: prompt = MR + separator, target = reference + end-of-text.

    The loss covers the reference tokens (and the end-of-text token) only; label smoothing as in
    Table 7. Evaluation decodes one output per distinct MR with beam search and scores it with the
    official-equivalent metrics (hut.metrics.e2e). ``data.max_train_samples`` and
    ``data.max_eval_samples`` draw seeded random subsets (of the rows, and of the MRs) with
    ``data.subset_seed``, as for GLUE; :meth:`eval_subset` says which MRs were scored.
    """

    name = "e2e"
    label = "E2E"
    kind = "generation"
    best_metric = "BLEU"
    metric_label = "BLEU"

    def __init__(self, cfg, tokenizer):
        super().__init__(cfg, tokenizer)
        self.t = cfg["task"]
        self.sep = self.t.get("separator", " ||")
        self.max_len = int(cfg["trainer"]["max_length"])

    def _prompt(self, mr: str) -> str:
        return f"{mr}{self.sep}"

    def train_dataset(self):
        from hut.data.e2e import load_e2e_pairs

        d = self.cfg["data"]
        pairs = load_e2e_pairs(d.get("train_split", "train"), source=self.source, data_dir=self.data_dir,
                               max_items=d.get("max_train_samples"), seed=int(d.get("subset_seed", 0)))
        out = []
        for ex in pairs:
            p = self.tok(self._prompt(ex["mr"]), add_special_tokens=False)["input_ids"]
            r = self.tok(" " + ex["ref"].strip(), add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
            ids = (p + r)[: self.max_len]
            labels = ([-100] * len(p) + r)[: self.max_len]
            out.append({"input_ids": ids, "labels": labels})
        return out

    def collate(self, batch):
        n = max(len(ex["input_ids"]) for ex in batch)
        pad = self.tok.pad_token_id
        ids = torch.full((len(batch), n), pad, dtype=torch.long)
        labels = torch.full((len(batch), n), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for i, ex in enumerate(batch):  # right padding for training
            k = len(ex["input_ids"])
            ids[i, :k] = torch.tensor(ex["input_ids"])
            labels[i, :k] = torch.tensor(ex["labels"])
            mask[i, :k] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def loss(self, model, batch):
        labels = batch.pop("labels")
        logits = model(**batch).logits
        batch["labels"] = labels
        return lm_loss(logits, labels, float(self.t.get("label_smoothing", 0.0)))

    def _eval_split(self) -> tuple[str, list[dict]]:
        """The evaluation split's name and all its MRs (read once)."""
        from hut.data.e2e import load_e2e_eval

        split = self.cfg["data"].get("eval_split", "test")
        if not hasattr(self, "_all_eval"):
            self._all_eval = load_e2e_eval(split, source=self.source, data_dir=self.data_dir)
        return split, self._all_eval

    def eval_subset(self):
        split, items = self._eval_split()
        return self._eval_subset_of(split, "MR", len(items))

    def eval_items(self):
        """The scored MRs (``{"mr", "refs"}``, file order): those of :meth:`eval_subset`, i.e.
        what ``load_e2e_eval(..., max_items=data.max_eval_samples, seed=data.subset_seed)`` gives."""
        _, items = self._eval_split()
        indices = self.eval_subset()["indices"]
        return items if indices is None else [items[i] for i in indices]

    def generate_kwargs(self) -> dict:
        """``model.generate`` settings of the task config (Table 7: beam, length penalty, no-repeat, length)."""
        t = self.t
        return dict(num_beams=int(t["num_beams"]), length_penalty=float(t["length_penalty"]),
                    no_repeat_ngram_size=int(t["no_repeat_ngram_size"]), max_new_tokens=int(t["max_new_tokens"]),
                    early_stopping=True, do_sample=False, eos_token_id=self.tok.eos_token_id,
                    pad_token_id=self.tok.pad_token_id)

    @torch.no_grad()
    def generate(self, model, mrs: list[str], device) -> list[str]:
        """Batched beam search (Table 7 settings from the task config); cut at EOS or newline."""
        bs = int(self.cfg["trainer"].get("eval_batch_size") or 16)
        prompts = [self._prompt(m) for m in mrs]
        # MRs of similar length share a batch (less padding); the outputs come back in input order.
        lengths = [len(ids) for ids in self.tok(prompts, add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        outs: list[str] = [""] * len(prompts)
        old_side = self.tok.padding_side
        self.tok.padding_side = "left"  # decoder-only generation needs left padding
        try:
            for i in tqdm(range(0, len(order), bs), desc="decode", leave=False):
                idx = order[i : i + bs]
                enc = self.tok([prompts[j] for j in idx], return_tensors="pt", padding=True,
                               add_special_tokens=False).to(device)
                gen = model.generate(**enc, **self.generate_kwargs())
                for j, row in zip(idx, gen[:, enc["input_ids"].shape[1]:]):
                    outs[j] = first_line(self.tok.decode(row, skip_special_tokens=True))
                faults.point("eval")
        finally:
            self.tok.padding_side = old_side
        return outs

    def evaluate(self, model, accelerator, run_dir):
        from hut.metrics.e2e import e2e_scores
        from hut.records import write_atomic

        items = self.eval_items()
        model.eval()
        unwrapped = accelerator.unwrap_model(model)
        preds = self.generate(unwrapped, [it["mr"] for it in items], accelerator.device)
        model.train()
        if accelerator.is_main_process:
            write_atomic(Path(run_dir) / "predictions.txt", "\n".join(preds) + "\n")
            write_atomic(Path(run_dir) / "references.txt",
                         "\n\n".join("\n".join(it["refs"]) for it in items) + "\n")
        refs = [it["refs"] for it in items]
        # An empty output is scored as empty, as the official script scores it (a "." in its place,
        # as this code once did, earned BLEU/NIST credit for the references' full stops).
        return e2e_scores(preds, refs)


def first_line(text: str) -> str:
    """A generated E2E output: its first non-empty line. Beam search may open with a newline before
    the sentence (SmolLM2 after 40 demo steps did for 7 of 20 MRs); cutting at the first newline
    before stripping made those outputs empty."""
    return text.strip().split("\n", 1)[0].strip()


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Next-token cross-entropy over positions whose label is not -100 (the reference tokens)."""
    logits = logits[:, :-1].float()
    target = labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100,
                           label_smoothing=label_smoothing)
