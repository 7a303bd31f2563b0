"""The five E2E NLG Challenge metrics, computed as the official ``measure_scores.py`` does.

The official script (e2e-metrics, Dušek et al.) gets

* **BLEU** and **NIST** from the Perl ``mteval-v13a-sig.pl`` (NIST MT-Eval v13a, modified for a
  variable number of references).  They are re-implemented here in Python, step for step:

  - the default (non-international) mteval normalisation: the SGML entities ``&quot; &amp; &lt;
    &gt;`` are decoded, ASCII ``A-Z`` is lowercased, ASCII punctuation and symbols are split off,
    ``.`` and ``,`` are split off unless they sit between digits, a ``-`` after a digit is split off;
  - multi-reference counts clipped by the per-n-gram maximum over the references;
  - BLEU up to 4-grams, corpus level, the brevity penalty from the *closest* reference length of
    each segment (ties: the shorter one), the script's default smoothing for zero matches;
  - NIST up to 5-grams with information weights ``log2(count(w1..wn-1) / count(w1..wn))`` counted
    over all references of the whole set (unigrams: over the total number of reference words), and
    the NIST length penalty ``exp(-beta * log(ratio)^2)`` (``beta`` such that a ratio of 1.5 scores
    0.5; none for a ratio >= 1), with ``ratio = output words / reference length``.  The reference
    length is the one of the "-sig" version of the Perl: *total reference words / (number of
    non-empty references / number of instances)*, i.e. the average length of one reference times
    the number of instances.  A reference counts as non-empty when it has at least one word after
    the normalisation above.  The official script writes the references as reference sets, padding
    an instance that has fewer references than the most-referenced one with empty ones; those count
    neither as references nor as words, and change no other count (n-gram counts and weights, the
    clipping maxima, BLEU's closest length: the Perl skips empty references there, and every
    instance's first reference is a real one).  So, with 1 to 45 references per instance (the E2E
    test set), the reference length is not total words / 45.  The script's own pure-Python fallback
    (``-p``) computes the length differently and prints another NIST (7.7889 instead of 7.8212 on
    the shipped example); the Perl figures are the official ones and are reproduced.

* **METEOR**, **ROUGE_L** and **CIDEr** from its copy of the MS-COCO caption evaluation code: every
  reference and output is first tokenised by the Stanford PTB tokenizer (CoreNLP 3.4.1,
  ``-preserveLines -lowerCase``) and stripped of punctuation tokens; then

  - METEOR 1.5 runs as ``java -Xmx2G -jar meteor-1.5.jar - - -stdio -l en -norm`` (all references of
    an instance on one ``SCORE`` line, so any number of references; the system score is the jar's
    corpus-level ``EVAL`` result over all segment statistics);
  - ROUGE_L is the COCO one (LCS F-measure with beta = 1.2, best precision and best recall over the
    references, averaged over instances);
  - CIDEr is COCO's ``Cider`` class, i.e. CIDEr-D (n = 1..4, sigma = 6, clipped, x10, idf from the
    references of the evaluated set).

  The jars and the paraphrase table come from the ``pycocoevalcap`` PyPI package; ROUGE_L and CIDEr
  use its ``Rouge`` and ``Cider`` classes on the tokens produced here.  METEOR runs in one Java
  process that is kept alive for the life of the Python process (its start-up, mostly loading the
  paraphrase table, takes several seconds).

Public entry points: :func:`e2e_scores` (the five numbers), :func:`e2e_score_details` (plus
cumulative and individual BLEU/NIST per n and the counts behind them), :func:`mteval_bleu_nist`
(BLEU/NIST only, no Java), and the readers :func:`read_references` / :func:`read_outputs` used by
``python -m hut.e2e_metrics``. Where each part lives: ``hut.metrics.mteval`` (BLEU, NIST),
``hut.metrics.coco`` (PTB tokenizer, METEOR, ROUGE-L, CIDEr), this module (the five together, the
file readers).
"""
from __future__ import annotations

import csv
import os
import re
import threading
from pathlib import Path
from typing import Iterable, Sequence

from hut.metrics.coco import (  # noqa: F401  (the public names of this package stay importable here)
    E2EMetricsError,
    JavaNotFoundError,
    cider_score,
    meteor_process,
    meteor_score,
    ptb_tokenize,
    resolve_java,
    rouge_l_score,
    shutdown_meteor,
)
from hut.metrics.mteval import check_inputs, mteval_bleu_nist, mteval_tokenize  # noqa: F401

METRIC_NAMES = ("BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr")

__all__ = [
    "METRIC_NAMES",
    "E2EMetricsError",
    "JavaNotFoundError",
    "e2e_scores",
    "e2e_score_details",
    "mteval_bleu_nist",
    "mteval_tokenize",
    "ptb_tokenize",
    "meteor_score",
    "rouge_l_score",
    "cider_score",
    "read_references",
    "read_outputs",
    "resolve_java",
    "shutdown_meteor",
]


# --------------------------------------------------------------------------------------------
# All five
# --------------------------------------------------------------------------------------------

def e2e_score_details(predictions: Sequence[str], references: Sequence[Sequence[str]], *,
                      java: str | None = None,
                      metrics: Iterable[str] = METRIC_NAMES) -> dict:
    """The official E2E scores plus per-n BLEU/NIST details.

    ``metrics`` may name a subset of BLEU, NIST, METEOR, ROUGE_L, CIDEr (BLEU/NIST need no Java).
    Returns the requested metrics (floats) and, when BLEU or NIST is requested, the keys of
    :func:`mteval_bleu_nist` (``BLEU_cumulative`` n = 1..4, ``NIST_cumulative`` n = 1..5, ...).
    """
    preds, refs = check_inputs(predictions, references)
    wanted = list(metrics)
    unknown = [m for m in wanted if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown E2E metric(s) {unknown}; choose from {list(METRIC_NAMES)}")
    out: dict = {}
    coco = [m for m in wanted if m in ("METEOR", "ROUGE_L", "CIDEr")]
    if coco:
        java = resolve_java(java)  # fail early, before any work, when Java is missing
    if "METEOR" in coco:
        meteor_process(java)  # start the jar now: it loads its tables while the rest is computed
    meteor_thread = None
    meteor_result: dict = {}
    if coco:
        flat = [r for rs in refs for r in rs] + preds
        tok = ptb_tokenize(flat, java=java)
        refs_tok, pos = [], 0
        for rs in refs:
            refs_tok.append(tok[pos:pos + len(rs)])
            pos += len(rs)
        hyps_tok = tok[pos:]
        if "METEOR" in coco:
            # the jar works in its own process: let it run while Python computes the others
            def run_meteor():
                try:
                    meteor_result["score"] = meteor_score(hyps_tok, refs_tok, java=java)[0]
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    meteor_result["error"] = e

            meteor_thread = threading.Thread(target=run_meteor, name="hut-meteor", daemon=True)
            meteor_thread.start()
    try:
        if "BLEU" in wanted or "NIST" in wanted:
            out.update(mteval_bleu_nist(preds, refs))
        if "ROUGE_L" in coco:
            out["ROUGE_L"] = rouge_l_score(hyps_tok, refs_tok)
        if "CIDEr" in coco:
            out["CIDEr"] = cider_score(hyps_tok, refs_tok)
    finally:
        if meteor_thread is not None:
            meteor_thread.join()
    if meteor_thread is not None:
        if "error" in meteor_result:
            raise meteor_result["error"]
        out["METEOR"] = meteor_result["score"]
    ordered = {m: out[m] for m in METRIC_NAMES if m in wanted}
    ordered.update((k, v) for k, v in out.items() if k not in METRIC_NAMES)
    return ordered


def e2e_scores(predictions: list[str], references: list[list[str]], *,
               java: str | None = None) -> dict[str, float]:
    """``{"BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr"}`` as the official E2E metrics script
    computes them (fractions, not x100; full precision -- the script prints 4 decimals).

    ``predictions[i]`` is the output for instance i, ``references[i]`` its list of references.
    Raises :class:`JavaNotFoundError` when no Java runtime is available.
    """
    d = e2e_score_details(predictions, references, java=java)
    return {m: float(d[m]) for m in METRIC_NAMES}


# --------------------------------------------------------------------------------------------


# Files
# --------------------------------------------------------------------------------------------

# column headers the official script recognises for MRs and for references
_HEADER_SRC = re.compile(
    r"(mr|src|source|meaning(?:[_ .-]rep(?:resentation)?)?|da|dial(?:ogue)?[_ .-]act)s?", re.I)
_HEADER_REF = re.compile(
    r"(trg|tgt|target|ref(?:erence)?|human(?:[_ .-](?:ref(?:erence)?))?)s?", re.I)
# the official reader's repairs of mis-encoded characters in the E2E CSV files
_CSV_FIXES = (("\ufeff", ""), ("Ł", "£"), ("Â£", "£"), ("Ã©", "é"), ("ã©", "é"))


def _read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return [line.strip() for line in text.splitlines()]


def _csv_rows(lines: list[str]) -> list[list[str]]:
    fixed = []
    for line in lines:
        for a, b in _CSV_FIXES:
            line = line.replace(a, b)
        if line:
            fixed.append(line)
    if not fixed:
        return []
    delim = "\t" if "\t" in fixed[0] else ","
    return [row for row in csv.reader(fixed, delimiter=delim)]


def _looks_like_csv(path: Path, lines: list[str]) -> bool:
    if re.search(r"\.[ct]sv$", str(path), re.I):
        return True
    first = next((line for line in lines if line), "")
    rows = _csv_rows([first])
    if not rows or len(rows[0]) < 2:
        return False
    head = [c.strip() for c in rows[0]]
    return (sum(bool(_HEADER_SRC.fullmatch(c)) for c in head) == 1
            and sum(bool(_HEADER_REF.fullmatch(c)) for c in head) == 1)


def _read_reference_csv(path: Path, lines: list[str]) -> list[list[str]]:
    rows = _csv_rows(lines)
    if not rows:
        raise E2EMetricsError(f"{path}: empty reference file")
    head = rows[0]
    src_cols = [i for i, f in enumerate(head) if _HEADER_SRC.match(f)]
    ref_cols = [i for i, f in enumerate(head) if _HEADER_REF.match(f)]
    if len(src_cols) == len(ref_cols) == 1:
        src_col, ref_col = src_cols[0], ref_cols[0]
        rows = rows[1:]
    elif not src_cols and not ref_cols and len(head) == 2:
        src_col, ref_col = 0, 1  # no header: MR, reference
    else:
        raise E2EMetricsError(
            f"{path}: cannot tell the MR and reference columns apart in the header {head!r} "
            "(expected e.g. 'mr,ref')")
    bad = [i for i, row in enumerate(rows, start=2) if len(row) != len(head)]
    if bad:
        raise E2EMetricsError(f"{path}: wrong number of columns on lines {bad[:10]}")
    groups: list[list[str]] = []
    current = None
    for row in rows:
        mr, ref = row[src_col], row[ref_col]
        if not groups or mr != current:
            groups.append([ref])
            current = mr
        else:
            groups[-1].append(ref)
    return groups


def read_references(path: str | os.PathLike, n_outputs: int | None = None) -> list[list[str]]:
    """References, one list per instance, from either format the official script reads:

    * an E2E CSV (``mr,ref`` header; consecutive rows with the same MR form one instance), detected
      by a ``.csv``/``.tsv`` name or by such a header line;
    * plain text, the references of an instance on consecutive lines, instances separated by blank
      lines.  A file with no blank line holds one single reference per line (as the official
      script reads it) -- unless ``n_outputs`` is 1, then it is one instance with many references.
    """
    path = Path(path)
    lines = _read_lines(path)
    if _looks_like_csv(path, lines):
        return _read_reference_csv(path, lines)
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:  # a run of blank lines separates two instances
            blocks.append([])
    if not blocks[-1]:
        blocks.pop()
    if len(blocks) == 1 and n_outputs != 1:
        blocks = [[line] for line in blocks[0]]
    return blocks


def read_outputs(path: str | os.PathLike) -> list[str]:
    """System outputs, one per line (every line counts, blank ones included, as officially)."""
    return _read_lines(Path(path))
