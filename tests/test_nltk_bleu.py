"""The suite's BLEU (mteval-v13a, hut/metrics/mteval.py) against an independent implementation: NLTK's
corpus BLEU with its NIST geometric smoothing (``method3``, mteval's), on mteval's tokens.

Why NLTK only here (a dev dependency, not a run-time one): its BLEU equals mteval's, but its NIST picks
one best reference per output where mteval clips the n-gram counts over all references (other
figures), and its NIST tokenizer needs a data download, so the run-time scores stay the suite's own.
"""
import pytest
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

from hut.metrics.e2e import read_outputs, read_references
from hut.metrics.mteval import mteval_bleu_nist, mteval_tokenize
from tests.helpers import FIXTURES, REAL, needs_real


def _nltk_bleu(outputs, references) -> float:
    refs = [[mteval_tokenize(r).split() for r in rs] for rs in references]
    hyps = [mteval_tokenize(o).split() for o in outputs]
    return corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method3)


def test_bleu_equals_nltks_on_the_fixture():
    refs = read_references(FIXTURES / "e2e_metrics" / "refs.txt")
    outs = read_outputs(FIXTURES / "e2e_metrics" / "outputs.txt")
    ours = mteval_bleu_nist(outs, refs)["BLEU"]
    assert 0 < ours < 1 and ours == pytest.approx(_nltk_bleu(outs, refs), abs=1e-12)


@needs_real
@pytest.mark.parametrize("system", ["tgen-minus.run0", "tgen-std.run2", "sclstm.run1"])
def test_bleu_equals_nltks_on_published_system_outputs(system):
    refs = read_references(REAL / "e2e" / "official" / "testset_w_refs.csv")
    outs = read_outputs(REAL / "e2e" / "system_outputs" / f"{system}.txt")
    assert mteval_bleu_nist(outs, refs)["BLEU"] == pytest.approx(_nltk_bleu(outs, refs), abs=1e-12)
