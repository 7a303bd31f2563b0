"""BLEU and NIST exactly as ``mteval-v13a-sig.pl``, run by the official E2E script (pure Python).

Re-implemented step for step (see :mod:`hut.metrics.e2e` for the whole picture and the NIST rule
for unequal numbers of references). No Java needed: ``python -m hut.e2e_metrics --details`` prints
every intermediate.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

BLEU_MAX_N = 4
NIST_MAX_N = 5


def check_inputs(predictions: Sequence[str], references: Sequence[Sequence[str]]):
    if isinstance(predictions, str):
        raise TypeError("predictions must be a list of strings, not a single string")
    preds = [str(p) for p in predictions]
    refs = []
    for i, r in enumerate(references):
        if isinstance(r, str):
            r = [r]
        r = [str(x) for x in r]
        if not r:
            raise ValueError(f"instance {i} has no references")
        refs.append(r)
    if len(preds) != len(refs):
        raise ValueError(
            f"{len(preds)} predictions but {len(refs)} reference sets: they must match one to one")
    if not preds:
        raise ValueError("nothing to score: no predictions")
    return preds, refs


# --------------------------------------------------------------------------------------------
# BLEU / NIST as mteval-v13a(-sig).pl
# --------------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# ASCII punctuation/symbols split off by mteval's default tokenisation: { | } ~, [ \ ] ^ _ `,
# space ! " # $ % &, ( ) * +, : ; < = > ?  @, and /.  Not: ' - . , (and not digits or letters).
_MT_SYMBOLS = re.compile(r"([{-~\[-` -&(-+:-@/])")
_MT_PERIOD_COMMA_1 = re.compile(r"([^0-9])([.,])")
_MT_PERIOD_COMMA_2 = re.compile(r"([.,])([^0-9])")
_MT_DIGIT_DASH = re.compile(r"([0-9])(-)")


def mteval_tokenize(text: str) -> str:
    """mteval-v13a's default normalisation of one segment (as read from the .sgm file)."""
    # the SGML reader joins the lines of a document: every whitespace run becomes one space
    t = _WS.sub(" ", text)
    t = t.replace("<skipped>", "")
    t = t.replace("-\n", "").replace("\n", " ")
    t = t.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    t = f" {t} ".translate(_ASCII_LOWER)
    t = _MT_SYMBOLS.sub(r" \1 ", t)
    t = _MT_PERIOD_COMMA_1.sub(r"\1 \2 ", t)
    t = _MT_PERIOD_COMMA_2.sub(r" \1 \2", t)
    t = _MT_DIGIT_DASH.sub(r"\1 \2 ", t)
    return _WS.sub(" ", t).strip()


def _ngrams(words: Sequence[str], max_n: int) -> Counter:
    words = tuple(words)
    out: Counter = Counter()
    for n in range(1, max_n + 1):
        out.update(words[i:i + n] for i in range(len(words) - n + 1))
    return out


def _closest_ref_length(current: int, ref_len: int, hyp_len: int) -> int:
    """mteval's 'closest' brevity-penalty length fold (ties go to the shorter reference)."""
    if not ref_len:  # empty references (the official script's padding) are skipped
        return current
    d_new, d_cur = abs(hyp_len - ref_len), abs(hyp_len - current)
    if d_new < d_cur or (d_new == d_cur and current > ref_len):
        return ref_len
    return current


def _nist_length_penalty(ratio: float) -> float:
    if ratio >= 1:
        return 1.0
    if ratio <= 0:
        return 0.0
    beta = -math.log(0.5) / math.log(1.5) / math.log(1.5)
    return math.exp(-beta * math.log(ratio) * math.log(ratio))


def _perl_true(s: str) -> bool:
    # Perl's truth of a string: "" and "0" are false (mteval tests the (n-1)-gram string this way)
    return s not in ("", "0")


def mteval_bleu_nist(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Corpus BLEU and NIST exactly as ``mteval-v13a-sig.pl`` run by the official E2E script.

    Returns ``BLEU``, ``NIST`` (full precision; the official script prints them with 4 decimals),
    ``BLEU_cumulative`` (n = 1..4), ``BLEU_individual``, ``NIST_cumulative`` (n = 1..5),
    ``NIST_individual`` and the corpus counts behind them: ``brevity_penalty`` and ``ref_length``
    (BLEU's: the sum of the closest reference lengths), ``nist_length_penalty`` and
    ``nist_ref_length`` (NIST's: words per non-empty reference times the number of instances),
    ``n_references`` (the non-empty ones), ``hyp_length``, ``matches`` and ``hyp_ngrams`` (per n).
    Pure Python, no Java needed.
    """
    preds, refs = check_inputs(predictions, references)
    max_n = NIST_MAX_N
    tok_refs = [[mteval_tokenize(r).split() for r in rs] for rs in refs]
    tok_hyps = [mteval_tokenize(p).split() for p in preds]

    # NIST information weights from all references of the whole set
    ref_ngrams = [[_ngrams(r, max_n) for r in rs] for rs in tok_refs]
    ngram_count: Counter = Counter()
    total_words = 0
    for rs, ngs in zip(tok_refs, ref_ngrams):
        for r, ng in zip(rs, ngs):
            total_words += len(r)
            ngram_count.update(ng)
    info = {}
    for g, c in ngram_count.items():
        prefix = g[:-1]
        if _perl_true(" ".join(prefix)):
            info[g] = -math.log(c / ngram_count[prefix]) / math.log(2)
        else:
            info[g] = -math.log(c / total_words) / math.log(2)

    match = [0] * (max_n + 1)
    tst_cnt = [0] * (max_n + 1)
    ref_cnt = [0] * (max_n + 1)
    tst_info = [0.0] * (max_n + 1)
    ref_length = 0
    n_refs = 0  # references with at least one word
    for hyp, rs, ngs in zip(tok_hyps, tok_refs, ref_ngrams):
        hyp_counts = _ngrams(hyp, max_n)
        for n in range(1, max_n + 1):
            tst_cnt[n] += max(len(hyp) - n + 1, 0)
        ref_max: Counter = Counter()
        seg_ref_len = None
        for r, ng in zip(rs, ngs):
            n_refs += bool(r)
            ref_max |= ng  # element-wise maximum of the counts
            for n in range(1, max_n + 1):
                ref_cnt[n] += max(len(r) - n + 1, 0)
            seg_ref_len = len(r) if seg_ref_len is None else _closest_ref_length(
                seg_ref_len, len(r), len(hyp))
        ref_length += seg_ref_len
        for g, c in hyp_counts.items():
            if g in ref_max:
                m = min(c, ref_max[g])
                match[len(g)] += m
                tst_info[len(g)] += info[g] * m

    # BLEU (mteval's default, smoothed, corpus-level score)
    bp = math.exp(min(0.0, 1 - ref_length / tst_cnt[1])) if tst_cnt[1] > 0 else 0.0
    bleu_cum, bleu_ind = [], []
    smooth, acc = 1, 0.0
    for n in range(1, BLEU_MAX_N + 1):
        if tst_cnt[n] == 0:
            iscore = 0.0
        elif match[n] == 0:
            smooth *= 2
            iscore = math.log(1 / (smooth * tst_cnt[n]))
        else:
            iscore = math.log(match[n] / tst_cnt[n])
        acc += iscore
        bleu_ind.append(math.exp(iscore))
        bleu_cum.append(math.exp(acc / n) * bp)

    # NIST
    if ref_cnt[1] == 0:
        raise ValueError("the references contain no words: NIST is undefined")
    # the Perl's order of operations: references per instance, then the reference length
    nist_ref_length = ref_cnt[1] / (n_refs / len(tok_hyps))
    lp = _nist_length_penalty(tst_cnt[1] / nist_ref_length)
    nist_cum, nist_ind = [], []
    acc = 0.0
    for n in range(1, NIST_MAX_N + 1):
        iscore = tst_info[n] / max(tst_cnt[n], 1)
        acc += iscore
        nist_ind.append(iscore * lp)
        nist_cum.append(acc * lp)

    return {
        "BLEU": bleu_cum[BLEU_MAX_N - 1],
        "NIST": nist_cum[NIST_MAX_N - 1],
        "BLEU_cumulative": bleu_cum,
        "BLEU_individual": bleu_ind,
        "NIST_cumulative": nist_cum,
        "NIST_individual": nist_ind,
        "brevity_penalty": bp,
        "nist_length_penalty": lp,
        "hyp_length": tst_cnt[1],
        "ref_length": ref_length,
        "matches": match[1:],
        "hyp_ngrams": tst_cnt[1:],
        "nist_ref_length": nist_ref_length,
        "n_references": n_refs,
    }


# --------------------------------------------------------------------------------------------
