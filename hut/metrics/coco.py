"""METEOR, ROUGE-L and CIDEr as the official E2E script computes them: its copy of the COCO caption
evaluation code, with the Stanford PTB tokenizer, through the ``pycocoevalcap`` package's jars.

METEOR 1.5 runs in one Java process kept alive for the life of the Python process (its start-up,
mostly loading the paraphrase table, takes several seconds). See :mod:`hut.metrics.e2e`.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Sequence


class E2EMetricsError(RuntimeError):
    """A metric could not be computed (bad input, a Java tool failed, a jar is missing)."""


class JavaNotFoundError(E2EMetricsError):
    """No usable Java runtime: METEOR and the PTB tokenizer are Java programs."""


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
            "Java: hut.metrics.mteval.mteval_bleu_nist.")
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


def meteor_process(java: str) -> _MeteorProcess:
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
    return meteor_process(resolve_java(java)).score(hyps_tok, refs_tok)


def _coco_dicts(hyps_tok, refs_tok):
    keys = [f"inst-{i}" for i in range(len(hyps_tok))]
    return ({k: list(r) for k, r in zip(keys, refs_tok)},
            {k: [h] for k, h in zip(keys, hyps_tok)})


def rouge_l_score(hyps_tok: Sequence[str], refs_tok: Sequence[Sequence[str]]) -> float:
    """COCO ROUGE_L (pycocoevalcap's ``Rouge``) on PTB-tokenised texts."""
    from pycocoevalcap.rouge.rouge import Rouge  # here: a missing package is _pycocoevalcap_dir's clear error

    gts, res = _coco_dicts(hyps_tok, refs_tok)
    score, _ = Rouge().compute_score(gts, res)
    return float(score)


def cider_score(hyps_tok: Sequence[str], refs_tok: Sequence[Sequence[str]]) -> float:
    """COCO CIDEr (pycocoevalcap's ``Cider``, i.e. CIDEr-D) on PTB-tokenised texts."""
    from pycocoevalcap.cider.cider import Cider  # here: a missing package is _pycocoevalcap_dir's clear error

    gts, res = _coco_dicts(hyps_tok, refs_tok)
    score, _ = Cider().compute_score(gts, res)
    return float(score)


# --------------------------------------------------------------------------------------------
