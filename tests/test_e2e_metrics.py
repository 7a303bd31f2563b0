"""E2E metrics: identical to the official E2E NLG Challenge script (measure_scores.py).

The reference figures for the metrics example and for four real system outputs on the full test
set are those printed by the official script with the Perl mteval-v13a-sig (see
../shared/README.md).  One METEOR Java process is shared by the in-process tests; one test runs the
CLI as a subprocess.
"""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hut import e2e_metrics as cli
from hut.metrics import e2e as e2e_scores
from hut.metrics import mteval

ROOT = Path(__file__).resolve().parent.parent
FIX = Path(__file__).resolve().parent / "fixtures" / "e2e_metrics"


def _real_data():
    for d in (os.environ.get("HUT_DATA"), ROOT.parent / "shared" / "data"):
        if d and (Path(d) / "e2e" / "metrics_example" / "devel-conc.txt").is_file():
            return Path(d)
    return None


REAL = _real_data()
needs_real = pytest.mark.skipif(
    REAL is None, reason="E2E metrics example not found (set HUT_DATA to ../shared/data)")
EXAMPLE = REAL / "e2e" / "metrics_example" if REAL else None

OFFICIAL = {"BLEU": 0.7203, "NIST": 7.8212, "METEOR": 0.4801, "ROUGE_L": 0.7910, "CIDEr": 2.3039}
OFFICIAL_BLEU_CUM = [0.9346, 0.8707, 0.7946, 0.7203]
OFFICIAL_NIST_CUM = [5.0188, 6.2478, 6.9957, 7.4965, 7.8212]
# ../shared/README.md "Reference scores on the full E2E test set": the official script on the 630
# test MRs (1 to 45 references each) of testset_w_refs.csv.  The NIST length penalty (README) and
# the cumulative NIST n = 1..5 were printed by the same Perl (e2e-metrics 1b9c4d8) on these files.
SYSTEMS = {
    "tgen-minus.run0": {"BLEU": 0.6380, "NIST": 7.9623, "METEOR": 0.4226, "ROUGE_L": 0.6893,
                        "CIDEr": 2.0084},
    "tgen-minus.run4": {"BLEU": 0.6300, "NIST": 7.6514, "METEOR": 0.4160, "ROUGE_L": 0.6829,
                        "CIDEr": 1.8479},
    "tgen-std.run2": {"BLEU": 0.6667, "NIST": 8.5487, "METEOR": 0.4554, "ROUGE_L": 0.6974,
                      "CIDEr": 2.2440},
    "sclstm.run1": {"BLEU": 0.3555, "NIST": 5.2346, "METEOR": 0.3405, "ROUGE_L": 0.4655,
                    "CIDEr": 0.4996},
}
SYSTEMS_NIST_LP = {"tgen-minus.run0": 0.9287, "tgen-minus.run4": 0.8755,
                   "tgen-std.run2": 1.0, "sclstm.run1": 1.0}
SYSTEMS_NIST_CUM = {
    "tgen-minus.run0": [5.1539, 6.4755, 7.1779, 7.6255, 7.9623],
    "tgen-minus.run4": [4.9110, 6.1937, 6.8765, 7.3168, 7.6514],
    "tgen-std.run2": [5.5157, 6.9269, 7.6909, 8.1815, 8.5487],
    "sclstm.run1": [3.9073, 4.5934, 4.9054, 5.0903, 5.2346],
}
TEST_REFS = REAL / "e2e" / "official" / "testset_w_refs.csv" if REAL else None
SYS_DIR = REAL / "e2e" / "system_outputs" if REAL else None
needs_systems = pytest.mark.skipif(
    REAL is None or not TEST_REFS.is_file()
    or not all((SYS_DIR / f"{name}.txt").is_file() for name in SYSTEMS),
    reason="E2E test set with references or system outputs not found "
           "(set HUT_DATA to ../shared/data)")

OFFICIAL_STDOUT = """SCORES:
==============
BLEU: 0.7203
NIST: 7.8212
METEOR: 0.4801
ROUGE_L: 0.7910
CIDEr: 2.3039

"""


@pytest.fixture(scope="module")
def example_details():
    refs = e2e_scores.read_references(EXAMPLE / "devel-conc.txt")
    outs = e2e_scores.read_outputs(EXAMPLE / "baseline-output.txt")
    return e2e_scores.e2e_score_details(outs, refs)


# ------------------------------------------------------------------ the official example, exactly

@needs_real
def test_example_five_scores_match_official(example_details):
    got = {m: round(example_details[m], 4) for m in e2e_scores.METRIC_NAMES}
    assert got == OFFICIAL


@needs_real
def test_example_cumulative_bleu_nist_match_perl(example_details):
    assert [round(v, 4) for v in example_details["BLEU_cumulative"]] == OFFICIAL_BLEU_CUM
    assert [round(v, 4) for v in example_details["NIST_cumulative"]] == OFFICIAL_NIST_CUM
    # the script's pure-Python fallback prints 7.7889; the Perl figure is the official one
    assert round(example_details["NIST"], 4) != 7.7889


@needs_real
def test_e2e_scores_api_keys_and_values():
    refs = e2e_scores.read_references(EXAMPLE / "devel-conc.txt")
    outs = e2e_scores.read_outputs(EXAMPLE / "baseline-output.txt")
    s = e2e_scores.e2e_scores(outs, refs)
    assert list(s) == list(e2e_scores.METRIC_NAMES)
    assert all(isinstance(v, float) for v in s.values())
    assert {m: round(v, 4) for m, v in s.items()} == OFFICIAL


def test_empty_outputs_score_as_the_official_script_scores_them():
    """Empty outputs stay empty (the official measure_scores.py figures, fixtures/e2e_metrics/README.md);
    scoring them as "." instead earns BLEU/NIST credit for the references' full stops."""
    refs = e2e_scores.read_references(FIX / "refs.txt")
    outs = e2e_scores.read_outputs(FIX / "outputs_with_empty.txt")
    assert len(outs) == len(refs) == 4 and outs[1] == outs[3] == ""
    got = {m: round(v, 4) for m, v in e2e_scores.e2e_scores(outs, refs).items()}
    assert got == {"BLEU": 0.2601, "NIST": 0.2276, "METEOR": 0.2209, "ROUGE_L": 0.3263, "CIDEr": 1.2276}
    dotted = e2e_scores.e2e_scores([o or "." for o in outs], refs)
    assert dotted["BLEU"] > got["BLEU"]


@needs_real
def test_example_bleu_nist_need_no_java(tmp_path):
    refs = e2e_scores.read_references(EXAMPLE / "devel-conc.txt")
    outs = e2e_scores.read_outputs(EXAMPLE / "baseline-output.txt")
    d = e2e_scores.e2e_score_details(outs, refs, metrics=("BLEU", "NIST"), java=str(tmp_path / "no-java"))
    assert round(d["BLEU"], 4) == OFFICIAL["BLEU"] and round(d["NIST"], 4) == OFFICIAL["NIST"]
    assert "METEOR" not in d


# ------------------------------------------------------------------ the full test set, exactly

@pytest.fixture(scope="module")
def test_refs():
    return e2e_scores.read_references(TEST_REFS)


@needs_systems
@pytest.mark.parametrize("name", list(SYSTEMS))
def test_full_test_set_bleu_nist_match_perl(test_refs, name):
    d = e2e_scores.mteval_bleu_nist(e2e_scores.read_outputs(SYS_DIR / f"{name}.txt"), test_refs)
    assert round(d["BLEU"], 4) == SYSTEMS[name]["BLEU"]
    assert round(d["NIST"], 4) == SYSTEMS[name]["NIST"]
    assert [round(v, 4) for v in d["NIST_cumulative"]] == SYSTEMS_NIST_CUM[name]
    assert round(d["nist_length_penalty"], 4) == SYSTEMS_NIST_LP[name]
    # 630 instances with 4,693 references: the NIST reference length is 630 times the mean
    # reference length, not the total over the largest number of references (45)
    assert d["n_references"] == 4693
    assert d["nist_ref_length"] == pytest.approx(sum(
        len(e2e_scores.mteval_tokenize(r).split()) for rs in test_refs for r in rs) * 630 / 4693)


@needs_systems
@pytest.mark.parametrize("name", list(SYSTEMS))
def test_full_test_set_five_scores_match_official(test_refs, name):
    s = e2e_scores.e2e_scores(e2e_scores.read_outputs(SYS_DIR / f"{name}.txt"), test_refs)
    assert {m: round(v, 4) for m, v in s.items()} == SYSTEMS[name]


# ------------------------------------------------------------------ CLI

@needs_real
def test_cli_prints_like_the_official_script(capsys):
    rc = cli.main([str(EXAMPLE / "devel-conc.txt"), str(EXAMPLE / "baseline-output.txt")])
    out = capsys.readouterr().out
    assert rc == 0
    assert out == OFFICIAL_STDOUT


@needs_real
def test_cli_json(capsys):
    rc = cli.main([str(EXAMPLE / "devel-conc.txt"), str(EXAMPLE / "baseline-output.txt"), "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert list(obj) == list(e2e_scores.METRIC_NAMES)
    assert {m: round(v, 4) for m, v in obj.items()} == OFFICIAL


@needs_real
def test_cli_details(capsys):
    rc = cli.main([str(EXAMPLE / "devel-conc.txt"), str(EXAMPLE / "baseline-output.txt"),
                   "--details"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "BLEU cumulative n=1..4: 0.9346 0.8707 0.7946 0.7203" in out
    assert "NIST cumulative n=1..5: 5.0188 6.2478 6.9957 7.4965 7.8212" in out
    # the Perl's individual scores on the example
    assert "BLEU individual n=1..4: 0.9346 0.8112 0.6617 0.5366" in out
    assert "NIST individual n=1..5: 5.0188 1.2290 0.7479 0.5009 0.3246" in out
    assert "NIST length penalty: 1.0000" in out


def test_cli_details_json_has_the_intermediates(capsys):
    rc = cli.main([str(FIX / "unequal_refs.txt"), str(FIX / "unequal_outputs.txt"),
                   "--details", "--json"])
    assert rc == 0
    obj = json.loads(capsys.readouterr().out)
    assert list(obj) == list(e2e_scores.METRIC_NAMES) + list(cli.DETAIL_KEYS)
    assert obj["nist_ref_length"] == 5.0 and obj["n_references"] == 4 and obj["hyp_length"] == 4


def test_cli_module_entry_point_subprocess():
    """`python -m hut.e2e_metrics REF SYS --json` as a real command (own Java processes)."""
    proc = subprocess.run(
        [sys.executable, "-m", "hut.e2e_metrics", str(FIX / "refs.csv"), str(FIX / "outputs.txt"),
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert list(obj) == list(e2e_scores.METRIC_NAMES)
    inproc = e2e_scores.e2e_scores(e2e_scores.read_outputs(FIX / "outputs.txt"),
                                    e2e_scores.read_references(FIX / "refs.txt"))
    assert obj == pytest.approx(inproc, abs=1e-12)


# ------------------------------------------------------------------ reference formats

def test_fixture_csv_and_blocks_read_the_same():
    blocks = e2e_scores.read_references(FIX / "refs.txt")
    csv_refs = e2e_scores.read_references(FIX / "refs.csv")
    assert blocks == csv_refs
    assert [len(r) for r in blocks] == [3, 2, 1, 2]  # the repeated, non-adjacent MR stays apart
    assert csv_refs[3][1] == 'A pub, "The Eagle", is at the riverside.'


def test_csv_detected_by_content_and_scores_identical(tmp_path, capsys):
    disguised = tmp_path / "references.txt"  # a CSV without the .csv name
    shutil.copy(FIX / "refs.csv", disguised)
    outs = str(FIX / "outputs.txt")
    results = []
    for ref in (FIX / "refs.txt", FIX / "refs.csv", disguised):
        assert cli.main([str(ref), outs, "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1] == results[2]
    assert 0 < results[0]["BLEU"] < 1 and results[0]["CIDEr"] > 0


@needs_real
def test_example_as_official_csv_gives_identical_scores(tmp_path, capsys):
    refs = e2e_scores.read_references(EXAMPLE / "devel-conc.txt")
    csv_path = tmp_path / "example.csv"
    lines = ['"mr","ref"']
    for i, rs in enumerate(refs):
        for r in rs:
            lines.append('"name[Inst %d], area[city centre]","%s"' % (i, r.replace('"', '""')))
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert e2e_scores.read_references(csv_path) == refs
    assert cli.main([str(csv_path), str(EXAMPLE / "baseline-output.txt")]) == 0
    assert capsys.readouterr().out == OFFICIAL_STDOUT


def test_csv_repairs_like_the_official_reader(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text('\ufeffmr,ref\n"name[A], priceRange[Â£20-25]",A costs Â£20-25.\n'
                 '"name[A], priceRange[Â£20-25]",Caf\u00c3\u00a9 A.\n\n', encoding="utf-8")
    assert e2e_scores.read_references(p) == [["A costs £20-25.", "Café A."]]


def test_plain_text_reference_layouts(tmp_path):
    single = tmp_path / "single.txt"
    single.write_text("one ref\nanother ref\nthird\n", encoding="utf-8")
    assert e2e_scores.read_references(single) == [["one ref"], ["another ref"], ["third"]]
    assert e2e_scores.read_references(single, n_outputs=1) == [["one ref", "another ref", "third"]]
    gaps = tmp_path / "gaps.txt"
    gaps.write_text("a\nb\n\n\n\nc\n\n", encoding="utf-8")
    assert e2e_scores.read_references(gaps) == [["a", "b"], ["c"]]


# ------------------------------------------------------------------ errors

def test_count_mismatch_names_both_files(tmp_path, capsys):
    short = tmp_path / "short-outputs.txt"
    short.write_text("\n".join(e2e_scores.read_outputs(FIX / "outputs.txt")[:3]) + "\n", encoding="utf-8")
    rc = cli.main([str(FIX / "refs.txt"), str(short)])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(FIX / "refs.txt") in err and str(short) in err
    assert "4 instances" in err and "3 lines" in err
    with pytest.raises(cli.InputMismatchError, match="4 instances"):
        cli.load_pair(str(FIX / "refs.csv"), str(short))
    with pytest.raises(ValueError, match="must match"):
        e2e_scores.e2e_scores(["a", "b"], [["a"]])


def test_java_missing_api(tmp_path, monkeypatch):
    refs = e2e_scores.read_references(FIX / "refs.txt")
    outs = e2e_scores.read_outputs(FIX / "outputs.txt")
    with pytest.raises(e2e_scores.JavaNotFoundError, match="Java runtime not found"):
        e2e_scores.e2e_scores(outs, refs, java=str(tmp_path / "no-java"))
    monkeypatch.setenv("HUT_JAVA", str(tmp_path / "still-no-java"))
    with pytest.raises(e2e_scores.JavaNotFoundError, match="HUT_JAVA"):
        e2e_scores.e2e_scores(outs, refs)
    monkeypatch.delenv("HUT_JAVA")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(e2e_scores.JavaNotFoundError, match="on PATH"):
        e2e_scores.e2e_scores(outs, refs)


def test_java_missing_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HUT_JAVA"}
    env["PATH"] = str(tmp_path)  # an empty directory: no java
    proc = subprocess.run(
        [sys.executable, "-m", "hut.e2e_metrics", str(FIX / "refs.txt"), str(FIX / "outputs.txt")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Java runtime not found" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


# ------------------------------------------------------------------ mteval-v13a details

def test_mteval_tokenisation():
    s = 'Hello, World! It costs £20-25 (3.5 km), isn\'t it? A&amp;B "quoted" x/y É'
    assert e2e_scores.mteval_tokenize(s) == (
        'hello , world ! it costs £20 - 25 ( 3.5 km ) , isn\'t it ? a & b " quoted " x / y É')
    assert e2e_scores.mteval_tokenize("  1,000.5  end.\n next ") == "1,000.5 end . next"


def test_closest_reference_length_fold():
    # the examples documented in mteval-v13a: candidate of 7 tokens, references 11, 8, 6, 7
    assert mteval._closest_ref_length(11, 8, 7) == 8
    assert mteval._closest_ref_length(8, 6, 7) == 6  # tie: the shorter
    assert mteval._closest_ref_length(6, 7, 7) == 7
    assert mteval._closest_ref_length(5, 0, 7) == 5  # empty (padding) reference ignored


def _nist_lp(ratio):
    # mteval's nist_length_penalty: exp(-beta log(ratio)^2), beta such that a ratio of 1.5 gives 0.5
    return math.exp(-math.log(2) / math.log(1.5) ** 2 * math.log(ratio) ** 2)


def test_nist_unequal_reference_counts_by_hand():
    """unequal_refs.txt: instance 1 has 1 reference ("the cat sat"), instance 2 has 3 ("a dog",
    "a dog ran", "the dog"); the outputs are "the cat" and "a dog".  By mteval-v13a-sig's rule:

    * 10 reference words in 4 references over 2 instances: reference length 10 / (4 / 2) = 5; the
      outputs have 4 words, ratio 0.8, so the length penalty applies.  (The old rule, 10 words over
      the 3 reference sets of the padded file, gave 3.33 and no penalty.)
    * unigram weights log2(10 / count): the = a = log2(10/2), cat = log2(10/1), dog = log2(10/3);
      the four output words all match: (2 log2 5 + log2 10 + log2(10/3)) / 4 = log2(2500/3) / 4.
    * bigram weights log2(count(w1) / count(w1 w2)): "the cat" = log2(2/1) = 1, "a dog" =
      log2(2/2) = 0; both match: (1 + 0) / 2.  No output has 3 words: nothing for n = 3..5.
    * BLEU: closest reference lengths 3 and 2, brevity penalty exp(1 - 5/4), all n-grams match.
    The official script prints NIST 2.3717 and BLEU 0.7788 for these two files.
    """
    d = e2e_scores.mteval_bleu_nist(e2e_scores.read_outputs(FIX / "unequal_outputs.txt"),
                           e2e_scores.read_references(FIX / "unequal_refs.txt"))
    lp = _nist_lp(4 / 5)
    assert d["n_references"] == 4 and d["nist_ref_length"] == 5.0 and d["hyp_length"] == 4
    assert d["nist_length_penalty"] == pytest.approx(lp, rel=1e-12)
    unigram, bigram = math.log2(2500 / 3) / 4, 1 / 2
    assert d["NIST_individual"] == pytest.approx([unigram * lp, bigram * lp, 0, 0, 0], rel=1e-12)
    assert d["NIST_cumulative"] == pytest.approx(
        [unigram * lp] + [(unigram + bigram) * lp] * 4, rel=1e-12)
    assert round(d["NIST"], 4) == 2.3717
    assert d["ref_length"] == 5 and d["brevity_penalty"] == pytest.approx(math.exp(1 - 5 / 4))
    assert round(d["BLEU"], 4) == 0.7788


def test_empty_references_count_for_nothing():
    # the official script pads every instance to the largest number of references with empty
    # ones; an empty reference is no reference: every figure stays the same
    refs = e2e_scores.read_references(FIX / "unequal_refs.txt")
    outs = e2e_scores.read_outputs(FIX / "unequal_outputs.txt")
    padded = [rs + [""] * (3 - len(rs)) for rs in refs]
    assert padded[0] == ["the cat sat", "", ""]
    assert e2e_scores.mteval_bleu_nist(outs, padded) == e2e_scores.mteval_bleu_nist(outs, refs)
    # nor does one that the mteval normalisation empties
    assert e2e_scores.mteval_bleu_nist(outs, [rs + [" <skipped> "] for rs in refs]) == \
        e2e_scores.mteval_bleu_nist(outs, refs)


def test_nist_info_perl_truthiness_of_zero_prefix():
    # mteval takes the (n-1)-gram "0" as false and divides by the total number of reference words
    d = e2e_scores.mteval_bleu_nist(["0 x"], [["0 x y", "x y"]])
    lp = d["nist_length_penalty"]
    assert 0 < lp < 1
    assert d["NIST_individual"][1] == pytest.approx(math.log2(5) * lp)


def test_identical_output_scores_perfect_bleu():
    refs = [["the cat sat on the mat today"], ["a dog ran in the park"]]
    d = e2e_scores.mteval_bleu_nist(["the cat sat on the mat today", "a dog ran in the park"], refs)
    assert d["BLEU"] == pytest.approx(1.0)
    assert d["BLEU_cumulative"] == pytest.approx([1.0] * 4)
