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
``python -m hut.e2e_metrics``.
"""
from __future__ import annotations

import atexit
import csv
import importlib.util
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

METRIC_NAMES = ("BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr")
BLEU_MAX_N = 4
NIST_MAX_N = 5

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


class E2EMetricsError(RuntimeError):
    """A metric could not be computed (bad input, a Java tool failed, a jar is missing)."""


class JavaNotFoundError(E2EMetricsError):
    """No usable Java runtime: METEOR and the PTB tokenizer are Java programs."""


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def _check_inputs(predictions: Sequence[str], references: Sequence[Sequence[str]]):
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
    preds, refs = _check_inputs(predictions, references)
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
# Java tools (PTB tokenizer, METEOR 1.5) from the pycocoevalcap package
# --------------------------------------------------------------------------------------------

def _pycocoevalcap_dir() -> Path:
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise E2EMetricsError(
            "the 'pycocoevalcap' package is not installed: it ships METEOR 1.5, its paraphrase "
            "table and the Stanford PTB tokenizer (pip install pycocoevalcap)")
    return Path(list(spec.submodule_search_locations)[0])


def _jar(*parts: str) -> Path:
    path = _pycocoevalcap_dir().joinpath(*parts)
    if not path.is_file():
        raise E2EMetricsError(f"{path} is missing: reinstall the 'pycocoevalcap' package")
    return path


def resolve_java(java: str | os.PathLike | None = None) -> str:
    """The Java executable: ``java`` if given, else ``$HUT_JAVA``, else ``java`` on ``PATH``."""
    cand = os.fspath(java) if java is not None else (os.environ.get("HUT_JAVA") or "java")
    if os.sep in cand or (os.altsep and os.altsep in cand):
        found = cand if (os.path.isfile(cand) and os.access(cand, os.X_OK)) else None
    else:
        found = shutil.which(cand)
    if found is None:
        raise JavaNotFoundError(
            f"Java runtime not found (looked for {cand!r}"
            + ("" if java is not None or os.environ.get("HUT_JAVA") else " on PATH")
            + "). METEOR 1.5 and the Stanford PTB tokenizer used for METEOR, ROUGE_L and CIDEr "
            "are Java programs: install a Java runtime (e.g. apt-get install default-jre-headless) "
            "or point HUT_JAVA (or java=...) at the java executable. BLEU and NIST alone need no "
            "Java: hut.metrics.e2e.mteval_bleu_nist.")
    return found


_JAVA_OPTS = ("-Dfile.encoding=UTF-8",)

# the tokens the COCO caption evaluation code drops after PTB tokenisation
_PTB_PUNCT = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                        ".", "?", "!", ",", ":", "-", "--", "...", ";"])


def ptb_tokenize(texts: Sequence[str], java: str | None = None) -> list[str]:
    """COCO-caption preprocessing: Stanford PTBTokenizer (CoreNLP 3.4.1) with ``-preserveLines
    -lowerCase``, then punctuation tokens removed.  One Java call for all texts."""
    java = resolve_java(java)
    jar = _jar("tokenizer", "stanford-corenlp-3.4.1.jar")
    # one text per line: any whitespace run (newlines included) becomes one space
    lines = [" ".join(str(t).split()) for t in texts]
    if not lines:
        return []
    fd, tmp = tempfile.mkstemp(prefix="hut-ptb-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\n".join(lines))
        proc = subprocess.run(
            [java, *_JAVA_OPTS, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
             "-preserveLines", "-lowerCase", tmp],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    finally:
        os.unlink(tmp)
    if proc.returncode != 0:
        raise E2EMetricsError(
            f"the PTB tokenizer failed (exit {proc.returncode}): "
            f"{proc.stderr.decode('utf-8', 'replace').strip()[-2000:]}")
    out = proc.stdout.decode("utf-8").split("\n")
    if len(out) > len(lines) and all(not x.strip() for x in out[len(lines):]):
        out = out[:len(lines)]
    if len(out) != len(lines):
        raise E2EMetricsError(
            f"the PTB tokenizer returned {len(out)} lines for {len(lines)} inputs")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in _PTB_PUNCT) for line in out]


class _MeteorProcess:
    """One ``meteor-1.5.jar -stdio`` process (the COCO wrapper's protocol)."""

    def __init__(self, java: str, mem: str = "2G"):
        self.jar = _jar("meteor", "meteor-1.5.jar")
        self.cmd = [java, *_JAVA_OPTS, f"-Xmx{mem}", "-jar", str(self.jar), "-", "-", "-stdio",
                    "-l", "en", "-norm"]
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, cwd=str(self.jar.parent), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr)
        self.lock = threading.Lock()
        self.owner_pid = os.getpid()

    def alive(self) -> bool:
        return os.getpid() == self.owner_pid and self.proc.poll() is None

    def _fail(self, what: str):
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass
        self._stderr.seek(0)
        err = self._stderr.read().decode("utf-8", "replace").strip()[-2000:]
        raise E2EMetricsError(f"METEOR ({' '.join(self.cmd)}) failed while {what}: {err}")

    def _ask(self, line: str, n_lines: int, what: str) -> list[str]:
        try:
            self.proc.stdin.write((line + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fail(what)
        out = []
        for _ in range(n_lines):
            got = self.proc.stdout.readline()
            if not got:
                self._fail(what)
            out.append(got.decode("utf-8").strip())
        return out

    def _stats(self, lines: list[str]) -> list[str]:
        """Send all SCORE lines from a thread while reading their answers (no pipe deadlock, no
        round trip per segment); one statistics line comes back per SCORE line, in order."""
        write_error: list[BaseException] = []

        def writer():
            try:
                for line in lines:
                    self.proc.stdin.write((line + "\n").encode("utf-8"))
                self.proc.stdin.flush()
            except BaseException as e:  # noqa: BLE001 - reported below
                write_error.append(e)

        th = threading.Thread(target=writer, daemon=True)
        th.start()
        out = []
        for _ in lines:
            got = self.proc.stdout.readline()
            if not got:
                break
            out.append(got.decode("utf-8").strip())
        th.join()
        if write_error or len(out) != len(lines):
            self._fail("scoring the segments")
        return out

    def score(self, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
        lines = []
        for hyp, rs in zip(hyps, refs):
            # SCORE ||| reference 1 ||| ... ||| reference n ||| hypothesis (as the COCO wrapper)
            hyp = hyp.replace("|||", "").replace("  ", " ")
            lines.append(" ||| ".join(["SCORE", " ||| ".join(rs), hyp]))
        with self.lock:
            stats = self._stats(lines)
            res = self._ask("EVAL ||| " + " ||| ".join(stats), len(stats) + 1,
                            "aggregating the statistics")
        try:
            values = [float(x) for x in res]
        except ValueError:
            self._fail(f"parsing its output {res[-1]!r}")
        return values[-1], values[:-1]

    def close(self):
        if os.getpid() != self.owner_pid:  # a forked child must not stop its parent's process
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass
        self._stderr.close()


_METEOR: dict[str, _MeteorProcess] = {}
_METEOR_LOCK = threading.Lock()


def _meteor_for(java: str) -> _MeteorProcess:
    with _METEOR_LOCK:
        m = _METEOR.get(java)
        if m is None or not m.alive():
            if m is not None:
                m.close()
            m = _METEOR[java] = _MeteorProcess(java)
        return m


def shutdown_meteor():
    """Stop the cached METEOR Java process(es) (also done automatically at exit)."""
    with _METEOR_LOCK:
        for m in _METEOR.values():
            m.close()
        _METEOR.clear()


atexit.register(shutdown_meteor)


def meteor_score(hyps_tok: Sequence[str], refs_tok: Sequence[Sequence[str]],
                 java: str | None = None) -> tuple[float, list[float]]:
    """METEOR 1.5 (``-l en -norm``) on PTB-tokenised texts: (corpus score, segment scores)."""
    return _meteor_for(resolve_java(java)).score(hyps_tok, refs_tok)


def _coco_dicts(hyps_tok, refs_tok):
    keys = [f"inst-{i}" for i in range(len(hyps_tok))]
    return ({k: list(r) for k, r in zip(keys, refs_tok)},
            {k: [h] for k, h in zip(keys, hyps_tok)})


def rouge_l_score(hyps_tok: Sequence[str], refs_tok: Sequence[Sequence[str]]) -> float:
    """COCO ROUGE_L (pycocoevalcap's ``Rouge``) on PTB-tokenised texts."""
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = _coco_dicts(hyps_tok, refs_tok)
    score, _ = Rouge().compute_score(gts, res)
    return float(score)


def cider_score(hyps_tok: Sequence[str], refs_tok: Sequence[Sequence[str]]) -> float:
    """COCO CIDEr (pycocoevalcap's ``Cider``, i.e. CIDEr-D) on PTB-tokenised texts."""
    from pycocoevalcap.cider.cider import Cider

    gts, res = _coco_dicts(hyps_tok, refs_tok)
    score, _ = Cider().compute_score(gts, res)
    return float(score)


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
    preds, refs = _check_inputs(predictions, references)
    wanted = list(metrics)
    unknown = [m for m in wanted if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown E2E metric(s) {unknown}; choose from {list(METRIC_NAMES)}")
    out: dict = {}
    coco = [m for m in wanted if m in ("METEOR", "ROUGE_L", "CIDEr")]
    if coco:
        java = resolve_java(java)  # fail early, before any work, when Java is missing
    if "METEOR" in coco:
        _meteor_for(java)  # start the jar now: it loads its tables while the rest is computed
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
