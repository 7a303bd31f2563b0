"""Tokenisation of GLUE examples with an on-disk cache.

``tokenize_glue`` tokenises sentence (pairs) once and stores the result under a key that hashes

* ``key_parts`` given by the caller (task, split, source, data dir, max_samples, seed, ...),
* a fingerprint of the examples' content (every sentence and label, so an edited data file, another
  subset or another source never reuses a stale entry -- stronger than a file size + mtime),
* the tokenizer: class, ``name_or_path``, ``vocab_size``, ``len(tokenizer)`` and a hash of its
  vocabulary, plus its truncation side,
* ``max_length`` and the cache format version.

A second call with the same key reads the file and calls the tokenizer not at all. Nothing is
padded (the collate function pads each batch dynamically); sequences are truncated to
``max_length``.

Files: ``<cache_dir>/glue-<sha256>.npz`` (numpy, no pickle): each field's token lists are stored
flattened with an offsets array. Writes are :func:`hut.files.atomic.write_atomic`'s (a temporary file in
the same directory, then ``os.replace``), so concurrent runs never see a half-written file (the last writer wins, with the
same content). A file that cannot be read is treated as a miss and rewritten.

The cache directory is ``cache_dir`` if given, else ``$HUT_CACHE/tokenized``, else
``~/.cache/hut/tokenized``.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from hut.files.atomic import write_atomic

CACHE_VERSION = 1
BATCH = 1000  # examples per tokenizer call


def cache_root() -> Path:
    """The suite's cache folder: ``$HUT_CACHE``, else ``~/.cache/hut`` (tokenised data, FLOPs counts)."""
    root = os.environ.get("HUT_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "hut"


def default_cache_dir() -> Path:
    return cache_root() / "tokenized"


def examples_fingerprint(examples: Iterable[dict[str, Any]]) -> str:
    """sha256 over every example's sentence1, sentence2 and label."""
    h = hashlib.sha256()
    n = 0
    for ex in examples:
        s2 = ex.get("sentence2")
        h.update(json.dumps([ex["sentence1"], s2, ex["label"]], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
        n += 1
    h.update(f"n={n}".encode())
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> dict[str, Any]:
    """What identifies a tokenizer's output: class, name, vocabulary size and a vocabulary hash."""
    info: dict[str, Any] = {
        "class": type(tokenizer).__name__,
        "name": str(getattr(tokenizer, "name_or_path", "")),
        "vocab_size": getattr(tokenizer, "vocab_size", None),
        "truncation_side": getattr(tokenizer, "truncation_side", "right"),
    }
    try:
        info["len"] = len(tokenizer)
    except TypeError:
        info["len"] = None
    try:
        vocab = tokenizer.get_vocab()
        h = hashlib.sha256()
        for tok, idx in sorted(vocab.items(), key=lambda kv: kv[1]):
            h.update(f"{idx}\t{tok}\n".encode("utf-8", "surrogatepass"))
        info["vocab_sha256"] = h.hexdigest()
    except Exception:  # tokenizers without get_vocab: name + sizes only
        info["vocab_sha256"] = None
    return info


def cache_key(examples: Sequence[dict[str, Any]], tokenizer, max_length: int, key_parts: Iterable[Any] = ()) -> str:
    payload = {
        "version": CACHE_VERSION,
        "key_parts": [str(p) for p in key_parts],
        "examples": examples_fingerprint(examples),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_length": int(max_length),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def _tokenize(examples: Sequence[dict[str, Any]], tokenizer, max_length: int) -> dict[str, list[list[int]]]:
    fields: dict[str, list[list[int]]] = {}
    pair = any(ex.get("sentence2") is not None for ex in examples)
    for i in range(0, len(examples), BATCH):
        chunk = examples[i : i + BATCH]
        s1 = [ex["sentence1"] for ex in chunk]
        if pair:
            s2 = [ex.get("sentence2") or "" for ex in chunk]
            enc = tokenizer(s1, s2, truncation=True, max_length=max_length)
        else:
            enc = tokenizer(s1, truncation=True, max_length=max_length)
        for k, v in enc.items():
            fields.setdefault(k, []).extend(list(map(list, v)))
    return fields


def _save(path: Path, fields: dict[str, list[list[int]]], labels: list, meta: dict) -> None:
    arrays: dict[str, np.ndarray] = {}
    for k, seqs in fields.items():
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((t for s in seqs for t in s), dtype=np.int64, count=int(offsets[-1]))
        arrays[f"f.{k}"] = flat.astype(np.int32) if flat.size == 0 or flat.max() < 2**31 else flat
        arrays[f"o.{k}"] = offsets
    arrays["label"] = np.asarray(labels, dtype=np.float64 if any(isinstance(y, float) for y in labels) else np.int64)
    arrays["meta"] = np.asarray(json.dumps(meta))
    write_atomic(path, lambda f: np.savez(f, **arrays))


def _load(path: Path) -> list[dict[str, Any]] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            names = [n[2:] for n in z.files if n.startswith("f.")]
            flat = {k: z[f"f.{k}"] for k in names}
            offs = {k: z[f"o.{k}"] for k in names}
            labels = z["label"]
    except Exception:  # missing, truncated or foreign file: a miss
        return None
    is_float = labels.dtype.kind == "f"
    out = []
    for i in range(len(labels)):
        ex: dict[str, Any] = {k: flat[k][offs[k][i] : offs[k][i + 1]].tolist() for k in names}
        ex["label"] = float(labels[i]) if is_float else int(labels[i])
        out.append(ex)
    return out


def tokenize_glue(
    examples: Sequence[dict[str, Any]],
    tokenizer,
    max_length: int,
    cache_dir: str | os.PathLike | None = None,
    key_parts: Iterable[Any] = (),
) -> list[dict[str, Any]]:
    """Tokenise GLUE examples (from :func:`hut.data.glue.load_glue`), cached on disk.

    Returns one dict per example, in input order: the tokenizer's fields (``input_ids``,
    ``attention_mask``, and ``token_type_ids`` for BERT-style tokenizers) as unpadded lists of
    ints, truncated to ``max_length``, plus ``label`` (int, or float for STS-B). This per-example
    list is what the task's collate function pads (``tokenizer.pad``) batch by batch.
    """
    examples = list(examples)
    key_parts = list(key_parts)
    key = cache_key(examples, tokenizer, max_length, key_parts)
    directory = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    path = directory / f"glue-{key}.npz"
    if path.exists():
        cached = _load(path)
        if cached is not None and len(cached) == len(examples):
            return cached
    fields = _tokenize(examples, tokenizer, max_length)
    labels = [ex["label"] for ex in examples]
    meta = {"version": CACHE_VERSION, "key_parts": [str(p) for p in key_parts], "n": len(examples),
            "tokenizer": str(getattr(tokenizer, "name_or_path", "")), "max_length": int(max_length)}
    try:
        _save(path, fields, labels, meta)
    except OSError as e:  # a read-only or full cache directory must not stop a run
        warnings.warn(f"could not write the tokenisation cache {path}: {e}", stacklevel=2)
    out = []
    for i, y in enumerate(labels):
        ex = {k: v[i] for k, v in fields.items()}
        ex["label"] = y
        out.append(ex)
    return out
