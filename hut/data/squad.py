"""SQuAD v1.1 loaders: the official JSON files (``source="local"``) or the Hugging Face hub
(``source="hub"``), the same examples from both, and the article splits the demo trains on.

Every example is a plain dict, the hub's row as it is::

    {"id": str, "title": str, "context": str, "question": str,
     "answers": {"text": [str, ...], "answer_start": [int, ...]}}

Local layout (the official release)::

    <data_dir>/squad/{train,dev}-v1.1.json      {"version": "1.1", "data": [article, ...]}
    article = {"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}

Hub: ``rajpurkar/squad``, parquet files on its main branch, ``plain_text/{train,validation}-00000-of-00001.parquet``,
loaded with the ``parquet`` builder as GLUE's (:mod:`hut.data.glue`). Its rows are the JSON's questions in
file order (the title is the article's).

Article splits (:func:`select_articles`): ``data.train_articles`` / ``data.eval_articles`` take a
slice ``"start:stop"`` of the split's articles in a seeded order (``data.article_seed``; null = file
order), so that training and evaluation can use disjoint articles of one file (the demo trains on 40
dev articles and evaluates on the other 8: no evaluated context is seen in training).
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from hut.data.glue import resolve_data_dir

HUB_REPO = "rajpurkar/squad"
SPLITS = {"train": ("train-v1.1.json", "train"), "dev": ("dev-v1.1.json", "validation")}


def _check_split(split: str) -> tuple[str, str]:
    if split not in SPLITS:
        raise ValueError(f"unknown SQuAD split '{split}': use one of {', '.join(SPLITS)} (dev = the hub's validation)")
    return SPLITS[split]


def squad_path(split: str, data_dir: str | os.PathLike | None = None) -> Path:
    return resolve_data_dir(data_dir) / "squad" / _check_split(split)[0]


def hub_data_file(split: str) -> str:
    return f"hf://datasets/{HUB_REPO}/plain_text/{_check_split(split)[1]}-00000-of-00001.parquet"


def load_squad(split: str, source: str = "local", data_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every question of one SQuAD v1.1 split (``train`` or ``dev``), in file order."""
    _check_split(split)
    if source == "local":
        return read_squad_json(squad_path(split, data_dir))
    if source == "hub":
        return _load_hub(split)
    raise ValueError(f"unknown data source '{source}': use local or hub (config key data.source)")


# ------------------------------------------------------------------------------------------- local
def _need(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{where}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}: '{key}' is {type(value).__name__}, expected {kind.__name__}")
    return value


def read_squad_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The questions of an official SQuAD v1.1 JSON file.

    Errors (``ValueError`` naming the file and the article, paragraph or question id): not JSON, no
    ``data`` list, a missing or mistyped field, a question without answers, a duplicate question id.
    A missing file is a ``FileNotFoundError`` saying how to provide the data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"SQuAD data not found: {path} does not exist. Provide the official files "
            "<data_dir>/squad/{train,dev}-v1.1.json, with <data_dir> given by the environment variable HUT_DATA "
            "or the config key data.dir=..., or load them from the Hugging Face hub with data.source=hub")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    data = _need(doc, "data", list, str(path))
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for a, article in enumerate(data):
        where = f"{path}: article {a}"
        title = _need(article, "title", str, where)
        where = f"{path}: article {a} ({title!r})"
        for p, para in enumerate(_need(article, "paragraphs", list, where)):
            place = f"article {a} ({title!r}), paragraph {p}"
            context = _need(para, "context", str, f"{path}: {place}")
            for q, qa in enumerate(_need(para, "qas", list, f"{path}: {place}")):
                qid = _need(qa, "id", str, f"{path}: {place}, question {q}")
                at = f"{path}: question {qid} ({place})"
                if qid in seen:
                    raise ValueError(f"{at}: duplicate question id")
                seen.add(qid)
                answers = _need(qa, "answers", list, at)
                if not answers:
                    raise ValueError(f"{at}: no answers (SQuAD v1.1 questions have 1 or more)")
                texts = [_need(x, "text", str, f"{at}, answer {i}") for i, x in enumerate(answers)]
                starts = [_need(x, "answer_start", int, f"{at}, answer {i}") for i, x in enumerate(answers)]
                out.append({"id": qid, "title": title, "context": context,
                            "question": _need(qa, "question", str, at),
                            "answers": {"text": texts, "answer_start": starts}})
    return out


def count_squad(path: str | os.PathLike) -> dict[str, int]:
    """Articles, paragraphs, questions and answers of an official file (the numbers of its README)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    paragraphs = [p for a in data for p in a["paragraphs"]]
    qas = [q for p in paragraphs for q in p["qas"]]
    return {"articles": len(data), "paragraphs": len(paragraphs), "questions": len(qas),
            "answers": sum(len(q["answers"]) for q in qas)}


# --------------------------------------------------------------------------------------------- hub
def _load_hub(split: str) -> list[dict[str, Any]]:
    import datasets  # heavy: imported only for the hub source

    url = hub_data_file(split)
    try:
        ds = datasets.load_dataset("parquet", data_files={split: url}, split=split)
    except Exception as e:  # network, auth, moved files: say what was tried
        raise RuntimeError(
            f"could not load SQuAD {split} from the Hugging Face hub ({url}): {e}. "
            "Without hub access use local files: data.source=local with HUT_DATA or data.dir=...") from e
    return hub_rows_to_examples(ds, origin=url)


def hub_rows_to_examples(rows, origin: str = HUB_REPO) -> list[dict[str, Any]]:
    """The hub's rows (``id, title, context, question, answers{text, answer_start}``) as examples."""
    need = ("id", "title", "context", "question", "answers")
    missing = [c for c in need if c not in rows.column_names]
    if missing:
        raise ValueError(f"{origin}: missing column(s) {missing} (has {rows.column_names})")
    out = []
    for i, (qid, title, context, question, ans) in enumerate(zip(*(rows[c] for c in need))):
        texts, starts = list(ans["text"]), [int(s) for s in ans["answer_start"]]
        if not texts or len(texts) != len(starts):
            raise ValueError(f"{origin}: row {i} (question {qid}): {len(texts)} answer texts, {len(starts)} starts")
        out.append({"id": qid, "title": title, "context": context, "question": question,
                    "answers": {"text": texts, "answer_start": starts}})
    return out


# ---------------------------------------------------------------------------------- article splits
def article_order(examples: list[dict[str, Any]], seed: int | None) -> list[str]:
    """The split's article titles in file order, shuffled with ``random.Random(seed)`` unless seed is None."""
    titles = list(dict.fromkeys(ex["title"] for ex in examples))
    if seed is not None:
        random.Random(int(seed)).shuffle(titles)
    return titles


def parse_slice(spec: str | None, n: int, key: str) -> range:
    """``"start:stop"`` (either may be empty) over ``n`` articles; None = all."""
    if spec is None:
        return range(n)
    start, colon, stop = str(spec).partition(":")
    try:
        if not colon:
            raise ValueError
        r = range(n)[slice(int(start) if start else None, int(stop) if stop else None)]
    except ValueError:
        raise ValueError(f"{key}={spec!r}: expected a slice 'start:stop' of the split's {n} articles "
                         f"(e.g. '0:40'), or null for all") from None
    if not r:
        raise ValueError(f"{key}={spec!r} selects no article of the split's {n}")
    return r


def select_articles(examples: list[dict[str, Any]], spec: str | None, seed: int | None,
                    key: str = "data.train_articles") -> list[dict[str, Any]]:
    """The questions of the articles ``spec`` selects (:func:`parse_slice` of :func:`article_order`)."""
    order = article_order(examples, seed)
    keep = {order[i] for i in parse_slice(spec, len(order), key)}
    return [ex for ex in examples if ex["title"] in keep]
