"""Figure 4 from two tiny finished SQuAD runs (HUT and LoRA on tiny_roberta): the mini table, both
views as PNG and PDF, the HTML; the question choice; word relevance from token relevance."""
import json

import numpy as np
import pytest
from PIL import Image

from hut import aggregate
from hut.results.figures import figure4 as figure4_fig
from hut.results.tables import figure4 as figure4_tables
from hut.tasks import build_task
from tests.helpers import make_cfg
from hut.trainer import run

SMALL = ("task=squad", "trainer.max_length=40", "task.doc_stride=12", "data.train_split=dev",
         "data.train_articles=0:2", "data.eval_articles=2:4")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for m in ("hut", "lora"):
        assert run(make_cfg(*SMALL, f"method={m}", results_dir=root))["status"] == "success"
    return root


def test_builds_table_and_figures(two_runs, tmp_path):
    """Through the aggregator, which draws Figure 4 when the experiment's SQuAD runs are there."""
    o = aggregate.options([f"results_dir={two_runs}", f"out_dir={tmp_path}", "experiments.figure4=debug", "tables=[]",
                           "report=false", "page=false", "ship_records=false"])
    written = aggregate.build(o, log=lambda s: None)["written"]
    names = sorted(p.name for p in written)
    assert names == ["figure4.csv", "figure4.html", "figure4.md", "figure4.pdf", "figure4.png", "figure4.tex",
                     "figure4_gradxinput.pdf", "figure4_gradxinput.png"]
    png = next(p for p in written if p.name == "figure4.png")
    assert Image.open(png).mode == "P" and len(Image.open(png).getcolors(256)) > 2  # 256-colour palette, shaded
    md = (tmp_path / "tables" / "figure4.md").read_text()
    assert "| HUT |" in md and "| LoRA |" in md and "baseline" in md
    with pytest.raises(ValueError, match="finished squad runs of method vera"):
        figure4_fig.build({**o, "experiment": "debug", "methods": ["hut", "vera"], "seed": 0, "n_disagree": 1,
                           "n_agree": 1,
                 "max_words": 20})


def test_panels_of_chosen_questions(two_runs, tmp_path):
    runs, _ = figure4_fig.load_runs(two_runs)
    runs = figure4_tables.figure_runs(runs, "debug", ["hut", "lora"], 0)
    loaded = [figure4_fig.load_run((two_runs / r.path).parent) for r in runs]
    task = build_task(loaded[0].record["config"], loaded[0].tokenizer)
    preds = [json.loads(((two_runs / r.path).parent / "predictions.json").read_text()) for r in runs]
    rows = figure4_fig.panels_of(loaded, task, runs, preds, [0, 1])  # whatever the tiny models answered
    assert [len(r["panels"]) for r in rows] == [2, 2]
    for row in rows:
        for p in row["panels"]:
            for v in figure4_fig.VIEWS:
                rel = p["views"][v]
                assert len(rel) == len(figure4_fig.words_of(row["context"]))
                assert np.nanmax(rel) == pytest.approx(1.0) and np.nanmin(rel) >= 0
    fig = figure4_fig.draw(rows, "attention", "t", max_words=12)
    assert len(fig.axes) == 4
    assert "<span" in figure4_fig.to_html(rows, "note", figure4_fig.VIEWS)


def test_choice_is_first_disagreements_then_first_agreements():
    ex = [{"id": str(i), "answers": {"text": ["x"]}} for i in range(6)]
    a = {"0": "x", "1": "x", "2": "y", "3": "x", "4": "x", "5": "y"}
    b = {"0": "x", "1": "y", "2": "x", "3": "x", "4": "y", "5": "y"}
    assert figure4_fig.choose(ex, [a, b], 2, 2) == [1, 2, 0, 3]


def test_word_relevance_takes_the_max_over_word_pieces():
    context = "ab cd ef"
    feature = {"offsets": [None, (0, 1), (1, 2), (3, 5), None]}  # 'ab' in two pieces, 'ef' outside the window
    rel = figure4_fig.word_relevance(context, feature, np.array([9.0, 1.0, 3.0, 6.0, 9.0]))
    assert rel[:2] == pytest.approx([0.5, 1.0]) and np.isnan(rel[2])
