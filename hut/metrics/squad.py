"""SQuAD v1.1 exact match and F1, as the official ``evaluate-v1.1.py`` computes them.

    python -m hut.metrics.squad DATA.json PRED.json      # prints {"exact_match": ..., "f1": ...}

``DATA.json`` is an official SQuAD v1.1 file (``dev-v1.1.json``), ``PRED.json`` maps question id ->
answer text (what a run writes as ``predictions.json``). The command prints what the official script
prints: one line of JSON with both figures in percent; an unanswered question scores 0 and is named
on stderr, as there; a file of another version is said on stderr and scored anyway, as there.

Why written here: the ``evaluate`` library's ``squad`` metric is this same script, but it is fetched
from the Hugging Face hub when loaded; these few lines run offline. The rules (the published
normalisation) are:

* normalise an answer: lower case, remove every ``string.punctuation`` character, remove the
  words ``a``, ``an``, ``the`` (as whole words), collapse whitespace to single spaces;
* exact match: the normalised prediction equals a normalised ground truth;
* F1: over the normalised whitespace tokens, precision and recall of the multiset intersection;
  0 when nothing is shared (so an empty prediction scores 0 even against an empty ground truth);
* each question takes the maximum over its ground truths; the means over the questions are × 100.
"""
from __future__ import annotations

import json
import re
import string
import sys
from collections import Counter
from typing import Iterable, Mapping

EXPECTED_VERSION = "1.1"
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation, drop the articles a/an/the, collapse whitespace (in that order)."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def max_over_ground_truths(metric, prediction: str, ground_truths: Iterable[str]) -> float:
    return max(float(metric(prediction, g)) for g in ground_truths)


def squad_scores(predictions: Mapping[str, str], answers: Mapping[str, list[str]],
                 warn=None) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in percent over the questions of ``answers`` (id -> ground truths).

    A question without a prediction scores 0 (``warn`` is called with the official message).
    """
    em = f1 = 0.0
    for qid, golds in answers.items():
        if qid not in predictions:
            if warn is not None:
                warn(f"Unanswered question {qid} will receive score 0.")
            continue
        em += max_over_ground_truths(exact_match_score, predictions[qid], golds)
        f1 += max_over_ground_truths(f1_score, predictions[qid], golds)
    n = len(answers)
    return {"exact_match": 100.0 * em / n if n else 0.0, "f1": 100.0 * f1 / n if n else 0.0}


def answers_of_dataset(dataset: list) -> dict[str, list[str]]:
    """question id -> its ground-truth texts, from the ``data`` list of an official JSON file."""
    return {qa["id"]: [a["text"] for a in qa["answers"]]
            for article in dataset for paragraph in article["paragraphs"] for qa in paragraph["qas"]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        print("usage: python -m hut.metrics.squad DATA.json PRED.json  "
              f"(Evaluation for SQuAD {EXPECTED_VERSION})", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        dataset_json = json.load(f)
    if dataset_json.get("version") != EXPECTED_VERSION:
        print(f"Evaluation expects v-{EXPECTED_VERSION}, but got dataset with v-{dataset_json.get('version')}",
              file=sys.stderr)
    with open(argv[1], encoding="utf-8") as f:
        predictions = json.load(f)
    scores = squad_scores(predictions, answers_of_dataset(dataset_json["data"]),
                          warn=lambda m: print(m, file=sys.stderr))
    print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
