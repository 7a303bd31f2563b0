"""Figure 4 (the paper's Section 4): which context words a HUT and a LoRA fine-tuned model attend to
when they answer a SQuAD question, side by side, with the gold and the predicted answers.

    python -m hut.results.figures.figure4 experiment=figure4                   # results/runs -> results/figures
    python -m hut.results.figures.figure4 experiment=demo_squad results_dir=results/demo/squad/runs out_dir=results/demo/squad

Inputs: the finished SQuAD runs of the two methods (``methods``, default hut and lora) of one
experiment and seed: their records, ``predictions.json`` and trained parameters (``hut.export.load_run``).

* **Which questions** (deterministic; the paper's own examples cannot be identified): the evaluated
  questions in file order; the first ``n_disagree`` where exactly one of the two models is right
  (exact match), then the first ``n_agree`` where both are right. Right or wrong is read from the
  runs' ``predictions.json``; each chosen question is answered again by the loaded model, and a
  different answer is an error (the figure shows what the run scored).
* **Relevance of a context word** (two views, one file each), in the window (feature) that holds the
  model's predicted answer, a word taking the maximum over its word pieces, normalised per panel to
  the largest context word:
  - ``attention`` (``figure4.*``): the final layer's attention from the predicted start token and
    from the predicted end token to each token, averaged over heads and over the two positions
    (eager attention: the fused kernels return no weights);
  - ``gradient × input`` (``figure4_gradxinput.*``): |Σ_d x_d · ∂(start logit + end logit)/∂x_d|
    over the input word embeddings x of each token (the whole model, not only its final layer).
  Words outside that window are drawn without shading.
* **Mini table** (``tables/figure4.{md,tex,csv}``, :mod:`hut.results.tables.figure4`): EM and F1
  per method and seed beside the trivial baseline on the same questions.

What the figure can show: where in the context one fine-tuned model's final layer (or its input
gradient) concentrates for a handful of questions. What it cannot: that one method "captures the
right keywords" in general (a handful of chosen questions, one seed); attention weights are not an
explanation of the prediction (they ignore the value vectors and the residual stream).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from hut.config import cli_options
from hut.export import load_run
from hut.metrics.squad import exact_match_score, max_over_ground_truths, squad_scores
from hut.results.figures.wordshade import draw, save, to_html, words_of
from hut.results.files import write_bytes
from hut.results.labels import method_label
from hut.results.render.formats import to_csv, to_md, to_tex
from hut.results.runs import Run, load_runs
from hut.results.tables.base import Inputs
from hut.results.tables.figure4 import build_table, evaluated
from hut.tasks.squad import PREDICTIONS_FILE, overlap_baseline

USAGE = ("usage: python -m hut.results.figures.figure4 [experiment=figure4] [results_dir=results/runs] [out_dir=results] "
         "[methods=[hut,lora]] [seed=0] [n_disagree=2] [n_agree=2] [max_words=110]")
VIEWS = {"attention": "final-layer attention from the predicted start and end (mean over heads)",
         "gradxinput": "|gradient × input| of the start + end logits at the input embeddings"}


# ------------------------------------------------------------------------------------ selection
def choose(examples: list[dict], preds: Sequence[dict[str, str]], n_disagree: int, n_agree: int) -> list[int]:
    """Indices of the first ``n_disagree`` questions where exactly one model is right, then the
    first ``n_agree`` where both are (file order of the evaluated questions)."""
    right = [[max_over_ground_truths(exact_match_score, p.get(ex["id"], ""), ex["answers"]["text"]) == 1.0
              for p in preds] for ex in examples]
    disagree = [i for i, r in enumerate(right) if len(set(r)) > 1][:n_disagree]
    agree = [i for i, r in enumerate(right) if all(r)][:n_agree]
    return disagree + agree


# ------------------------------------------------------------------------------------ relevance
def token_relevance(model, task, feature: dict, start: int, end: int) -> dict[str, np.ndarray]:
    """Both views over the tokens of one window (see the module docstring)."""
    batch = task.collate([feature])
    # Attention weights need the eager kernel (the fused ones return none); the answers themselves
    # were found with the run's own kernel, which is put back.
    kernel = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(**batch, output_attentions=True)
    finally:
        model.set_attn_implementation(kernel)
    att = out.attentions[-1][0].float().mean(0)  # (query, key), mean over heads
    attention = ((att[start] + att[end]) / 2).numpy()
    emb = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
    with torch.enable_grad():
        rest = {k: v for k, v in batch.items() if k != "input_ids"}
        res = model(inputs_embeds=emb, **rest)
        (res.start_logits[0, start] + res.end_logits[0, end]).backward()
    gxi = (emb.grad[0] * emb[0]).sum(-1).abs().detach().numpy()
    return {"attention": attention, "gradxinput": gxi}


def word_relevance(context: str, feature: dict, token_values: np.ndarray) -> np.ndarray:
    """Per context word: the maximum over its tokens in this window (NaN outside it), / the maximum."""
    words = words_of(context)
    starts = np.array([w[0] for w in words])
    out = np.full(len(words), np.nan)
    for t, off in enumerate(feature["offsets"]):
        if off is None or off[1] <= off[0]:
            continue
        w = int(np.searchsorted(starts, off[0], side="right") - 1)
        out[w] = token_values[t] if np.isnan(out[w]) else max(out[w], token_values[t])
    top = np.nanmax(out) if np.any(~np.isnan(out)) else 0.0
    return out / top if top > 0 else out


def span_words(context: str, start: int, text: str) -> set[int]:
    """The words overlapping the character span [start, start + len(text))."""
    if start < 0 or not text:
        return set()
    return {i for i, (a, b) in enumerate(words_of(context)) if a < start + len(text) and b > start}


def answer_again(model, task, k: int, expected: str) -> tuple[str, int, int, int]:
    """(answer, window, start token, end token) of evaluated question ``k`` from the loaded model: the
    best candidate over the question's windows, as the task's evaluation finds it (window -1: none).

    The run scored ``expected`` (its ``predictions.json``). Logits computed in another batch differ in
    the last float bits, which can reorder two near-equal candidates; then the best candidate whose
    text is ``expected`` is taken. No such candidate is an error (not the run's final model)."""
    feats = [f for f in task.eval_features() if f["example"] == k]
    context = task.eval_examples()[k]["context"]
    found = [(c[0], w, c[1], c[2]) for w, (f, (s, e)) in enumerate(zip(feats, task.logits(model, "cpu", feats)))
             for c in task.candidates(f, s, e)]
    found.sort(key=lambda c: -c[0])  # stable: the evaluation's order on a tie

    def text(c):
        offs = feats[c[1]]["offsets"]
        return context[offs[c[2]][0]: offs[c[3]][1]]

    if not found:
        if expected:
            raise ValueError(f"question {task.eval_examples()[k]['id']}: the loaded model has no candidate span, "
                             f"its {PREDICTIONS_FILE} says {expected!r} (not the run's final model?)")
        return "", -1, -1, -1
    match = next((c for c in found if text(c) == expected), None)
    if match is None:
        raise ValueError(f"question {task.eval_examples()[k]['id']}: the loaded model answers {text(found[0])!r}, "
                         f"its {PREDICTIONS_FILE} says {expected!r} (not the run's final model?)")
    return expected, match[1], match[2], match[3]


def panels_of(loaded: Sequence[Any], task, runs: Sequence[Run], preds: Sequence[dict], chosen: list[int]) -> list[dict]:
    """One entry per chosen question: its text, gold, and per run the answer and both relevance views."""
    examples = task.eval_examples()
    out = []
    for k in chosen:
        ex = examples[k]
        feats = [f for f in task.eval_features() if f["example"] == k]
        row = {"id": ex["id"], "question": ex["question"], "context": ex["context"], "gold": ex["answers"]["text"],
               "gold_words": span_words(ex["context"], ex["answers"]["answer_start"][0], ex["answers"]["text"][0]),
               "panels": []}
        for run, lr, p in zip(runs, loaded, preds):
            text, w, s, e = answer_again(lr.model, task, k, p.get(ex["id"], ""))
            if w < 0:  # no candidate span: the first window, from its most likely start and end
                w, s, e = 0, 0, 0
            rel = token_relevance(lr.model, task, feats[w], s, e)
            offs = feats[w]["offsets"]
            pw = span_words(ex["context"], offs[s][0], text) if text else set()
            row["panels"].append({
                "label": method_label(run.method, run.label), "answer": text,
                "em": max_over_ground_truths(exact_match_score, text, ex["answers"]["text"]),
                "pred_words": pw,
                "views": {v: word_relevance(ex["context"], feats[w], rel[v]) for v in VIEWS}})
        out.append(row)
    return out


# ------------------------------------------------------------------------------------------ build
def build(o: dict, log=print) -> list[Path]:
    """The mini table and Figure 4 (both views, PNG + PDF, and HTML) from the runs; the paths written."""
    root, out = Path(o["results_dir"]), Path(o["out_dir"])
    runs_all, problems = load_runs(root)
    inp = Inputs(tuple(runs_all), str(root), {"figure4": o["experiment"]}, {}, load_problems=tuple(problems))
    methods, seed = list(o["methods"]), int(o["seed"])
    runs, _, task, checked = evaluated(inp, methods, seed)
    examples = task.eval_examples()
    base = squad_scores(overlap_baseline(examples), {ex["id"]: ex["answers"]["text"] for ex in examples})
    table = build_table(runs, [c[0] for c in checked], base, len(examples), o["experiment"])
    loaded = [load_run((root / r.path).parent) for r in runs]
    provenance = (f"Generated by `python -m hut.results.figures.figure4 {' '.join(o.get('argv') or [])}` from the records under "
                  f"`{o['results_dir']}`; do not edit by hand.")
    written = []
    for ext, text in (("md", to_md(table, provenance)), ("tex", to_tex(table, provenance)), ("csv", to_csv(table))):
        p = out / "tables" / f"figure4.{ext}"
        write_bytes(p, text.encode("utf-8"))
        written.append(p)
    chosen = choose(examples, [c[1] for c in checked], int(o["n_disagree"]), int(o["n_agree"]))
    rows = panels_of(loaded, task, runs, [c[1] for c in checked], chosen)
    note = (f"Experiment {o['experiment']}, seed {o['seed']}: {len(chosen)} questions (the first {o['n_disagree']} of "
            f"the evaluated questions where one model is right and the other wrong, then the first {o['n_agree']} both "
            f"answer right). Underlined: gold answer; boxed: predicted answer; grey: outside the model's window.")
    for view, what in VIEWS.items():
        stem = out / "figures" / ("figure4" if view == "attention" else f"figure4_{view}")
        fig = draw(rows, view, f"Figure 4 ({view}): {what}", max_words=int(o["max_words"]))
        written += save(fig, stem, palette=True)
    p = out / "figures" / "figure4.html"
    write_bytes(p, to_html(rows, note, VIEWS).encode("utf-8"))
    written.append(p)
    log(f"[figure4] {note}")
    for p in written:
        log(f"[figure4] wrote {p}")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    o = cli_options(argv, "figure4", "hut.results.figures.figure4", USAGE)
    o["argv"] = argv
    try:
        build(o)
    except (ValueError, FileNotFoundError) as e:  # missing or inconsistent runs: one line
        raise SystemExit(f"hut.results.figures.figure4: {e}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
