"""SQuAD v1.1: extractive question answering with a start/end span head, scored as the official script.

* Model: ``AutoModelForQuestionAnswering`` (kind ``qa``; its head ``qa_outputs`` is the task head that
  every method keeps trainable, :data:`hut.models.HEAD_OF_KIND`).
* Features: question + context through the fast tokenizer with ``truncation="only_second"``, a sliding
  window of ``trainer.max_length`` tokens that moves by ``task.doc_stride`` overlap, and the character
  offsets of every token (``return_overflowing_tokens``, ``return_offsets_mapping``; transformers'
  own pieces). A training window that does not hold the whole first answer is labelled with the
  first token ([CLS]/<s>), as BERT's and transformers' run_qa do.
* Answers: per window, the ``task.n_best`` highest start and end logits; a pair is a candidate if
  both tokens lie in the context, start <= end and it spans at most ``task.max_answer_length``
  tokens; its score is start + end logit; the best over all windows of a question is its answer
  (the context's characters between the two offsets). No candidate: the empty answer.
* Metrics: :mod:`hut.metrics.squad` (EM, F1 as ``evaluate-v1.1.py``); ``predictions.json`` (question
  id -> answer, the official script's input) is written into the run folder at every evaluation.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hut.runtime import faults
from hut.data.glue import subsample
from hut.data.squad import SPLITS, article_order, load_squad, parse_slice, select_articles
from hut.metrics.squad import normalize_answer, squad_scores
from hut.files.atomic import write_atomic
from hut.tasks.base import TASKS, DataConfig, Task, TaskConfig
from hut.config.typed import option

PREDICTIONS_FILE = "predictions.json"


@dataclass(frozen=True)
class SquadDataConfig(DataConfig):
    """SQuAD's own data keys (``configs/task/squad.yaml``): slices of a split's articles."""

    train_articles: str | None = option(None)  # "start:stop" of the split's articles in article_seed's order
    eval_articles: str | None = option(None)
    article_seed: int | None = option(0)  # null: the file's order


@dataclass(frozen=True)
class SquadTaskConfig(TaskConfig):
    """SQuAD's ``task`` keys (``configs/task/squad.yaml``: windows and answer extraction, run_qa's defaults)."""

    metric: str = option("f1")  # the metric the paper reports (the record's; tables read best_metric)
    doc_stride: int = option(128, minimum=1)  # overlap of consecutive windows (below trainer.max_length)
    n_best: int = option(20, minimum=1)  # start and end candidates per window
    max_answer_length: int = option(30, minimum=1)  # tokens


@TASKS.register("squad")
class SquadTask(Task):
    """SQuAD v1.1 (``configs/task/squad.yaml``). ``data.max_train_samples`` / ``max_eval_samples``
    draw seeded subsets of the questions (``data.subset_seed``); ``data.train_articles`` /
    ``eval_articles`` / ``article_seed`` select articles (:func:`hut.data.squad.select_articles`)."""

    name = "squad"
    label = "SQuAD v1.1"
    kind = "qa"
    splits = tuple(SPLITS)
    data_config = SquadDataConfig
    task_config = SquadTaskConfig
    best_metric = "f1"
    metric_label = "F1"

    def __init__(self, cfg, tokenizer):
        super().__init__(cfg, tokenizer)
        t, d = cfg["task"], cfg["data"]
        self.max_len, self.stride = int(cfg["trainer"]["max_length"]), int(t["doc_stride"])
        self.n_best, self.max_answer = int(t["n_best"]), int(t["max_answer_length"])
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("task squad needs a fast tokenizer (character offsets of every token)")
        if self.stride >= self.max_len:
            raise ValueError(f"task.doc_stride ({self.stride}) must be below trainer.max_length ({self.max_len})")
        self._check_disjoint(d)

    # ------------------------------------------------------------------------------------- data
    def _split(self, which: str) -> list[dict[str, Any]]:
        """The questions of ``data.<which>_split``, its selected articles, then its seeded subset."""
        d = self.cfg["data"]
        split = d.get(f"{which}_split", "train" if which == "train" else "dev")
        cache = self.__dict__.setdefault("_splits", {})
        if split not in cache:
            cache[split] = load_squad(split, source=self.source, data_dir=self.data_dir)
        examples = select_articles(cache[split], d.get(f"{which}_articles"), d.get("article_seed"),
                                   key=f"data.{which}_articles")
        return subsample(examples, d.get(f"max_{which}_samples"), int(d.get("subset_seed", 0)))

    @staticmethod
    def _check_disjoint(d) -> None:
        """Training and evaluation on one split must take different articles when they take slices."""
        if d.get("train_split") != d.get("eval_split") or (d.get("train_articles") is None
                                                           and d.get("eval_articles") is None):
            return
        a = parse_slice(d.get("train_articles"), 10**6, "data.train_articles")
        b = parse_slice(d.get("eval_articles"), 10**6, "data.eval_articles")
        if set(a) & set(b):
            raise ValueError(f"data.train_articles={d.get('train_articles')!r} and data.eval_articles="
                             f"{d.get('eval_articles')!r} overlap on split {d.get('train_split')!r}: evaluated "
                             f"contexts would be seen in training; give disjoint slices")

    def _encode(self, examples: list[dict[str, Any]]):
        # Leading spaces of a question only waste window tokens (some SQuAD questions have many).
        return self.tok([ex["question"].lstrip() for ex in examples], [ex["context"] for ex in examples],
                        truncation="only_second", max_length=self.max_len, stride=self.stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)

    def train_dataset(self):
        examples = self._split("train")
        enc = self._encode(examples)
        out = []
        for i, offsets in enumerate(enc["offset_mapping"]):
            ex = examples[enc["overflow_to_sample_mapping"][i]]
            seq = enc.sequence_ids(i)
            first, last = seq.index(1), len(seq) - 1 - seq[::-1].index(1)
            a0 = ex["answers"]["answer_start"][0]
            a1 = a0 + len(ex["answers"]["text"][0])
            start = end = 0  # the answer is not (wholly) in this window: label the first token
            if offsets[first][0] <= a0 and offsets[last][1] >= a1:
                start = first
                while start <= last and offsets[start][0] <= a0:
                    start += 1
                start -= 1
                end = last
                while end >= first and offsets[end][1] >= a1:
                    end -= 1
                end += 1
            feat = {k: enc[k][i] for k in enc if k not in ("offset_mapping", "overflow_to_sample_mapping")}
            out.append({**feat, "start_positions": start, "end_positions": end})
        return out

    def eval_examples(self) -> list[dict[str, Any]]:
        if not hasattr(self, "_eval_examples"):
            self._eval_examples = self._split("eval")
        return self._eval_examples

    def eval_features(self) -> list[dict[str, Any]]:
        """Windows of the evaluation questions: model inputs plus ``example`` (its question's index)
        and ``offsets`` (character span of each token, None outside the context)."""
        if not hasattr(self, "_eval_features"):
            enc = self._encode(self.eval_examples())
            feats = []
            for i, offsets in enumerate(enc["offset_mapping"]):
                seq = enc.sequence_ids(i)
                feat = {k: enc[k][i] for k in enc if k not in ("offset_mapping", "overflow_to_sample_mapping")}
                feat["example"] = enc["overflow_to_sample_mapping"][i]
                feat["offsets"] = [o if s == 1 else None for o, s in zip(offsets, seq)]
                feats.append(feat)
            self._eval_features = feats
        return self._eval_features

    def eval_subset(self):
        d = self.cfg["data"]
        split = d.get("eval_split", "dev")
        examples = select_articles(load_squad(split, source=self.source, data_dir=self.data_dir),
                                   d.get("eval_articles"), d.get("article_seed"), key="data.eval_articles")
        out = self._eval_subset_of(split, "question", len(examples))
        out.update(articles=d.get("eval_articles"), article_seed=d.get("article_seed"),
                   n_articles=len(article_order(examples, None)))
        return out

    MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")

    def collate(self, batch):
        feats = [{k: ex[k] for k in self.MODEL_KEYS if k in ex} for ex in batch]
        out = dict(self.tok.pad(feats, return_tensors="pt"))
        for k in ("start_positions", "end_positions"):
            if k in batch[0]:
                out[k] = torch.tensor([ex[k] for ex in batch], dtype=torch.long)
        return out

    # ------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def logits(self, model, device, features: list[dict[str, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(start, end) logits of every window, unpadded, in the order of ``features``."""
        bs = int(self.cfg["trainer"].get("eval_batch_size") or 32)
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        out: list[Any] = [None] * len(features)
        for i in tqdm(range(0, len(order), bs), desc="eval", leave=False, disable=self.bar_disable()):
            idx = order[i : i + bs]
            batch = {k: v.to(device) for k, v in self.collate([features[j] for j in idx]).items()}
            res = model(**batch)
            s, e = res.start_logits.float().cpu().numpy(), res.end_logits.float().cpu().numpy()
            for r, j in enumerate(idx):
                n = len(features[j]["input_ids"])
                out[j] = (s[r, :n], e[r, :n])
            faults.point("eval")
        return out

    def candidates(self, feature: dict[str, Any], start: np.ndarray, end: np.ndarray) -> list[tuple[float, int, int]]:
        """(score, start token, end token) of every valid pair of one window's ``n_best`` starts and ends:
        both in the context, start <= end, at most ``max_answer_length`` tokens; score = start + end logit."""
        offs = feature["offsets"]
        out = []
        for s in np.argsort(start)[::-1][: self.n_best]:
            for e in np.argsort(end)[::-1][: self.n_best]:
                if offs[s] is None or offs[e] is None or e < s or e - s + 1 > self.max_answer:
                    continue
                out.append((float(start[s] + end[e]), int(s), int(e)))
        return out

    def best_span(self, feature: dict[str, Any], start: np.ndarray, end: np.ndarray) -> tuple[float, int, int] | None:
        """The best of :meth:`candidates` (the first on a tie), or None."""
        return max(self.candidates(feature, start, end), key=lambda c: c[0], default=None)

    def predict(self, features, logits) -> dict[str, tuple[str, int, int, int]]:
        """question id -> (answer, window index, start token, end token) of its best candidate
        (("", -1, -1, -1) when no window has one)."""
        examples = self.eval_examples()
        best: dict[int, tuple[float, int, int, int]] = {}
        for f, (feat, (s, e)) in enumerate(zip(features, logits)):
            cand = self.best_span(feat, s, e)
            if cand is not None and (feat["example"] not in best or cand[0] > best[feat["example"]][0]):
                best[feat["example"]] = (cand[0], f, cand[1], cand[2])
        out = {}
        for k, ex in enumerate(examples):
            if k not in best:
                out[ex["id"]] = ("", -1, -1, -1)
                continue
            _, f, s, e = best[k]
            offs = features[f]["offsets"]
            out[ex["id"]] = (ex["context"][offs[s][0] : offs[e][1]], f, s, e)
        return out

    def evaluate(self, model, accelerator, run_dir):
        features = self.eval_features()
        model.eval()
        logits = self.logits(model, accelerator.device, features)
        model.train()
        preds = {qid: p[0] for qid, p in self.predict(features, logits).items()}
        if accelerator.is_main_process:
            write_atomic(Path(run_dir) / PREDICTIONS_FILE, json.dumps(preds, ensure_ascii=False, indent=0) + "\n")
        return squad_scores(preds, {ex["id"]: ex["answers"]["text"] for ex in self.eval_examples()})


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def overlap_baseline(examples: list[dict[str, Any]]) -> dict[str, str]:
    """The trivial baseline: for each question, the whole context sentence that shares the most
    distinct words with the question (words as the official normalisation gives them: lower case, no
    punctuation, no articles), the first such sentence on a tie. Sentences: the context split after
    ``.``, ``!`` or ``?`` followed by whitespace (a plain rule, not a trained splitter: nltk's punkt
    needs a data download, and the baseline only has to be simple and stated)."""
    out = {}
    for ex in examples:
        q = set(normalize_answer(ex["question"]).split())
        sentences = [s for s in _SENTENCE_END.split(ex["context"]) if s.strip()] or [ex["context"]]
        out[ex["id"]] = max(sentences, key=lambda s: len(q & set(normalize_answer(s).split())))
    return out
