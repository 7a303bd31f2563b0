"""Task squad: training windows labelled at the answer, n-best extraction, every method on the span
head, a tiny run end to end (records, predictions.json scored as the official script)."""
import json
import os
import unicodedata

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from hut.config import load_group
from hut.methods import METHODS, build_method, prepare_model
from hut.metrics.squad import normalize_answer, squad_scores
from hut.models import load_model
from hut.tasks import build_task
from hut.tasks.squad import overlap_baseline
from hut.trainer import run
from tests.helpers import CONFIGS, make_cfg
from tests.test_methods import method_cfg

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SMALL = ("task=squad", "trainer.max_length=40", "task.doc_stride=12")


def _task(*ov):
    cfg = OmegaConf.to_container(make_cfg(*SMALL, *ov), resolve=True)
    lm = load_model(cfg["model"], "qa", 2)
    return build_task(cfg, lm.tokenizer), lm


def test_training_windows_are_labelled_at_the_answer():
    task, lm = _task()
    feats = task.train_dataset()
    examples = task._split("train")
    assert len(feats) > len(examples)  # 40-token windows: long contexts give several
    inside = [f for f in feats if f["start_positions"] > 0]
    assert inside and len(inside) < len(feats)  # some windows lack the answer: labelled 0
    golds = {_plain(ex["answers"]["text"][0]) for ex in examples}
    for f in inside:
        text = lm.tokenizer.decode(f["input_ids"][f["start_positions"]: f["end_positions"] + 1])
        assert _plain(text) in golds, text


def _plain(s: str) -> str:
    """Normalised and without accents (MiniLM's uncased tokenizer strips them: Müller -> muller)."""
    return "".join(c for c in unicodedata.normalize("NFD", normalize_answer(s)) if not unicodedata.combining(c))


def test_answers_come_from_the_best_valid_span():
    task, _ = _task("task.max_answer_length=3")
    feats, examples = task.eval_features(), task.eval_examples()
    logits = []
    for f in feats:  # a peak at each window's tokens of its question's first answer, where it has them
        s, e = np.zeros(len(f["input_ids"])), np.zeros(len(f["input_ids"]))
        ex = examples[f["example"]]
        a0 = ex["answers"]["answer_start"][0]
        a1 = a0 + len(ex["answers"]["text"][0])
        toks = [i for i, o in enumerate(f["offsets"]) if o is not None and o[0] < a1 and o[1] > a0]
        if toks:
            s[toks[0]], e[toks[-1]] = 10.0, 10.0
        logits.append((s, e))
    preds = task.predict(feats, logits)
    got = {q: p[0] for q, p in preds.items()}
    short = [ex for ex in examples if len(task.tok(ex["answers"]["text"][0], add_special_tokens=False)["input_ids"]) <= 3]
    assert short and all(got[ex["id"]] == ex["answers"]["text"][0] for ex in short)
    long = [ex for ex in examples if ex not in short]  # longer than max_answer_length: another span
    assert long and all(got[ex["id"]] != ex["answers"]["text"][0] for ex in long)
    # no valid candidate at all -> the empty answer
    assert task.best_span({"offsets": [None, None, (0, 1)]}, np.array([0., 9, 1]), np.array([9., 0, 1])) == (2.0, 2, 2)
    assert task.best_span({"offsets": [None, None]}, np.zeros(2), np.zeros(2)) is None


@pytest.mark.parametrize("name", sorted(set(METHODS.names()) & {p.stem for p in (CONFIGS / "method").glob("*.yaml")}))
def test_every_method_trains_the_span_head(name):
    model_cfg = load_group("model", "tiny_roberta")
    torch.manual_seed(0)
    lm = load_model(model_cfg, "qa", 2, with_tokenizer=False)
    assert lm.head_prefixes == ("qa_outputs",)
    model = prepare_model(lm.model, build_method(method_cfg(name)), lm.family, lm.head_prefixes)
    ids = torch.randint(5, 100, (2, 12))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), start_positions=torch.tensor([1, 3]),
                end_positions=torch.tensor([2, 5]))
    out.loss.backward()
    head = [p for n, p in model.named_parameters() if "qa_outputs" in n]
    assert head and all(p.requires_grad and p.grad is not None for p in head)
    others = [p for n, p in model.named_parameters() if p.requires_grad and "qa_outputs" not in n]
    assert others and any(p.grad is not None and p.grad.abs().sum() > 0 for p in others), name


def test_overlapping_article_slices_are_refused():
    with pytest.raises(ValueError, match="overlap on split 'dev'"):
        _task("data.train_split=dev", "data.train_articles=0:3", "data.eval_articles=2:4")


def test_baseline_takes_the_sentence_with_most_question_words():
    ex = [{"id": "a", "question": "Where did the keepers live?", "context":
           "The lamp burned oil. Keepers lived in a cottage! Did keepers live well? Yes."}]
    # question words {where, did, keepers, live}: sentence 2 shares {keepers}? no: 'lived' != 'live';
    # sentence 3 shares {did, keepers, live}
    assert overlap_baseline(ex) == {"a": "Did keepers live well?"}


def test_a_tiny_run_records_loads_back_and_exports(tmp_path):
    """A finished QA run: its record and predictions.json (scored as the official script), load_run
    rebuilds the span model (it scores what the run scored), export_merged saves a model that stock
    AutoModelForQuestionAnswering loads with the same start/end logits."""
    from accelerate import Accelerator
    from transformers import AutoModelForQuestionAnswering

    from hut.export import export_merged, load_run

    cfg = make_cfg(*SMALL, "method=hut", "data.train_split=dev", "data.train_articles=0:3",
                   "data.eval_articles=3:4", results_dir=tmp_path)
    rec = run(cfg)
    assert rec["status"] == "success" and set(rec["best"]) >= {"exact_match", "f1"}
    sub = rec["eval_subset"]
    assert sub["unit"] == "question" and sub["n_scored"] == 3 and sub["n_articles"] == 1
    folder = next(tmp_path.rglob("metrics.json")).parent
    preds = json.loads((folder / "predictions.json").read_text(encoding="utf-8"))
    loaded = load_run(folder)
    task = build_task(OmegaConf.to_container(cfg, resolve=True), loaded.tokenizer)
    answers = {ex["id"]: ex["answers"]["text"] for ex in task.eval_examples()}
    assert set(preds) == set(answers)
    scores = {k: rec["last"][k] for k in ("exact_match", "f1")}
    assert squad_scores(preds, answers) == scores
    assert task.evaluate(loaded.model, Accelerator(cpu=True), tmp_path / "eval") == scores
    loaded.model.eval()  # evaluate() leaves a model in training mode, as the trainer wants it
    out = export_merged(loaded.model, loaded.method, tmp_path / "merged", loaded.tokenizer)
    stock = AutoModelForQuestionAnswering.from_pretrained(str(out)).eval()
    batch = task.collate(task.eval_features()[:2])
    with torch.no_grad():
        a, b = loaded.model(**batch), stock(**batch)
    assert torch.allclose(a.start_logits, b.start_logits, atol=1e-5)
    assert torch.allclose(a.end_logits, b.end_logits, atol=1e-5)
