"""SQuAD v1.1 EM/F1 against figures derived by hand from the published rules of evaluate-v1.1.py
(lower case; remove string.punctuation; remove the whole words a/an/the; collapse whitespace; F1 over
the multiset of normalised tokens, 0 when none is shared; maximum over the ground truths; means x 100)."""
import json
from fractions import Fraction

import pytest

from hut.metrics.squad import main, normalize_answer, squad_scores

# (id, prediction or None = unanswered, ground truths, EM by hand, F1 by hand)
CASES = [
    ("q01", "The Denver Broncos", ["Denver Broncos"], 1, Fraction(1)),         # article dropped
    ("q02", "Denver Broncos.", ["denver broncos", "Broncos"], 1, Fraction(1)),  # case, full stop
    ("q03", "an apple a day", ["apple day"], 1, Fraction(1)),                   # two articles
    # several ground truths: [in, 1852] vs [1852]: P 1/2, R 1 -> 2/3; vs [year, 1852]: 1/2 -> max 2/3
    ("q04", "in 1852", ["1852", "the year 1852"], 0, Fraction(2, 3)),
    ("q05", "", ["Paris"], 0, Fraction(0)),                                     # empty prediction
    ("q06", "Zürich", ["zürich"], 1, Fraction(1)),                              # unicode lower case
    # U+2019 is not in string.punctuation, ASCII ' is: [müller’s, café] vs [müllers, café] -> 1/2
    ("q07", "Müller’s café", ["Müller's café"], 0, Fraction(1, 2)),
    ("q08", "the theatre", ["theatre"], 1, Fraction(1)),                        # 'the' inside a word stays
    # both normalise to "": exact match, but F1 has no shared token -> 0
    ("q09", "...", ["a"], 1, Fraction(0)),
    # hyphens removed, not spaced: [stateoftheart] vs [state, of, art] -> 0
    ("q10", "state-of-the-art", ["state of the art"], 0, Fraction(0)),
    # shared multiset {new, york}: P 2/4, R 2/2 -> 2/3
    ("q11", "new york new york", ["new york"], 0, Fraction(2, 3)),
    ("q12", None, ["x"], 0, Fraction(0)),                                       # unanswered
]
EM = 100 * Fraction(sum(c[3] for c in CASES), len(CASES))        # 6/12 -> 50
F1 = 100 * sum(c[4] for c in CASES) / len(CASES)                  # (5 + 4/3 + 1/2)/12 -> 56.9444...


def test_hand_figures_are_what_we_think():
    assert EM == 50 and round(float(F1), 4) == 56.9444


def test_normalisation():
    assert normalize_answer("  The  Cat,  a Hat!  ") == "cat hat"
    assert normalize_answer("Theatre") == "theatre"
    assert normalize_answer("...") == ""


def test_edge_cases_equal_the_hand_figures():
    preds = {c[0]: c[1] for c in CASES if c[1] is not None}
    warned = []
    s = squad_scores(preds, {c[0]: c[2] for c in CASES}, warn=warned.append)
    assert round(s["exact_match"], 4) == round(float(EM), 4)
    assert round(s["f1"], 4) == round(float(F1), 4)
    assert warned == ["Unanswered question q12 will receive score 0."]
    for cid, pred, golds, em, f1 in CASES:  # each question on its own
        if pred is not None:
            one = squad_scores({cid: pred}, {cid: golds})
            assert one["exact_match"] == 100 * em and one["f1"] == pytest.approx(float(100 * f1)), cid


def test_command_prints_what_the_official_script_prints(tmp_path, capsys):
    data = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [
        {"id": c[0], "question": "?", "answers": [{"text": g, "answer_start": 0} for g in c[2]]} for c in CASES]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps({c[0]: c[1] for c in CASES if c[1] is not None}), encoding="utf-8")
    assert main([str(tmp_path / "d.json"), str(tmp_path / "p.json")]) == 0
    out, err = capsys.readouterr()
    got = json.loads(out)
    assert list(got) == ["exact_match", "f1"] and out.count("\n") == 1
    assert round(got["exact_match"], 4) == 50.0 and round(got["f1"], 4) == 56.9444
    assert "Unanswered question q12 will receive score 0." in err
    data["version"] = "2.0"
    (tmp_path / "d.json").write_text(json.dumps(data), encoding="utf-8")
    main([str(tmp_path / "d.json"), str(tmp_path / "p.json")])
    assert "Evaluation expects v-1.1, but got dataset with v-2.0" in capsys.readouterr().err
