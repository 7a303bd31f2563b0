"""The aggregator on fixture records (tests/fixtures/records/runs, written by make_records.py).

The expected cells are recomputed here with numpy from this file's own copy of the fixture scores.
"""
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from hut import aggregate

FIX = Path(__file__).resolve().parent / "fixtures" / "records"
RUNS = FIX / "runs"
PAPER = FIX / "paper_fixture.yaml"

# The fixture scores (fractions), independent of make_records.py.
HUT_MRPC = [0.85, 0.87, 0.86, 0.88, 0.84]
HUT_COLA = [0.55, 0.58, 0.52]  # seed 3 failed, seed 4 missing
HUT_STSB = [0.90, 0.91, 0.89, 0.92, 0.90, 0.93]  # seed 5 extra
LORA_MRPC = [0.86, 0.84, 0.85, 0.87, 0.83]  # (+ an ignored attempt file with 0.10)
LORA_COLA = [0.60, 0.57, 0.59, 0.61, 0.56]
LORA_STSB = [0.89, 0.90, 0.91, 0.88, 0.90]
BITFIT_MRPC = [0.80, 0.82]  # seed 2 truncated JSON, seed 3 running, seed 4 missing
E2E_HUT = np.array([(0.701, 8.81, 0.466, 0.717, 2.51), (0.695, 8.75, 0.462, 0.712, 2.47),
                    (0.704, 8.86, 0.469, 0.720, 2.55)])
E2E_LORA = np.array([(0.698, 8.80, 0.465, 0.715, 2.50), (0.702, 8.84, 0.467, 0.719, 2.53)])
T4_MRPC_Q = [0.84, 0.85, 0.86, 0.83, 0.85]
T4_COLA_QV = [0.50, 0.54, 0.52]
T5_MRPC_V = [0.82, 0.83, 0.84, 0.82, 0.85]


def ms(values, scale=100.0, digits=1):
    v = np.asarray(values, dtype=float) * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def row(*cells):
    return "| " + " | ".join(cells) + " |"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("agg")
    logs = []
    opts = aggregate.parse_args([f"results_dir={RUNS}", f"out_dir={out}", "tables=1,3,4,5", f"paper={PAPER}"])
    res = aggregate.build(opts, log=logs.append)
    return out, res, "\n".join(logs)


def read(out, name):
    return (out / "tables" / name).read_text(encoding="utf-8")


def test_table1_golden(built):
    out, _, _ = built
    md = read(out, "table1.md")
    lines = md.splitlines()
    assert lines[0] == "# Table 1: GLUE (tiny RoBERTa (tests))"
    assert row("Method", "#Params", "SST-2", "MRPC", "CoLA", "QNLI", "RTE", "STS-B", "Avg.") in lines
    hut = row("HUT", "0.0023M", "–", ms(HUT_MRPC), ms(HUT_COLA) + " [3/5] †", "–", "–", ms(HUT_STSB) + " [6/5]", "–")
    lora = row("LoRA", "0.00205M", "–", ms(LORA_MRPC), ms(LORA_COLA), "–", "–", ms(LORA_STSB), "–")
    bitfit = row("BitFit", "0.00109M", "–", ms(BITFIT_MRPC) + " [2/5]", "–", "–", "–", "–", "–")
    for expected in (hut, lora, bitfit):
        assert expected in lines, f"missing row:\n{expected}\nin\n{md}"
    assert row("FT", *["–"] * 8) in lines  # expected method, no runs: empty but present
    # the paper's rows (fixture figures) and ours − paper for HUT
    assert row("HUT (paper)", "0.0023M", "n/a", "86.5", "50.0", "n/a", "n/a", "n/a", "70.0") in lines
    d_mrpc = np.mean(HUT_MRPC) * 100 - 86.5
    d_cola = np.mean(HUT_COLA) * 100 - 50.0
    assert row("Ours − paper (HUT)", "–", "–", f"−{abs(d_mrpc):.1f}", f"+{d_cola:.1f}", "–", "–", "–", "–") in lines
    # std convention stated
    assert "sample standard deviation (ddof = 1)" in md
    # failed, missing, extra, running and the corrupt file, each reported
    assert "† HUT · CoLA, seed 3: failed (non-finite loss (nan) at step 40)." in md
    assert "HUT · CoLA: seed(s) 4 missing." in md
    assert "HUT · STS-B: extra seed(s) 5" in md
    assert "BitFit · MRPC: seed(s) 3 still marked running" in md
    assert "Skipped `table1/mrpc/bitfit/tiny_roberta/seed=2/metrics.json`: corrupt or truncated JSON." in md


def test_attempt_files_are_ignored(built):
    out, _, _ = built
    rows = list(csv.DictReader(io.StringIO(read(out, "table1.csv"))))
    r = [x for x in rows if x["source"] == "ours" and x["method"] == "lora" and x["task"] == "mrpc"][0]
    assert r["seeds"] == "0 1 2 3 4" and r["n"] == "5" and r["n_expected"] == "5"
    assert float(r["mean"]) == pytest.approx(np.mean(LORA_MRPC) * 100)
    assert float(r["std"]) == pytest.approx(np.std(np.array(LORA_MRPC) * 100, ddof=1))
    h = [x for x in rows if x["source"] == "ours" and x["method"] == "hut" and x["task"] == "cola"][0]
    assert (h["missing_seeds"], h["failed_seeds"], h["extra_seeds"]) == ("4", "3", "")


def test_log_reports_problems_and_missing(built):
    _, res, log = built
    assert "corrupt or truncated JSON" in log and "seed=2/metrics.json" in log
    assert "ignored records of experiment(s) not in these tables: debug" in log
    assert "hut: sst2 seeds 0,1,2,3,4; cola seeds 3,4" in log
    assert "ft: nothing finished yet" in log
    assert [p.message for p in res["problems"]] == ["corrupt or truncated JSON"]


def test_table3_golden(built):
    out, _, _ = built
    lines = read(out, "table3.md").splitlines()
    assert row("Method", "#Params", "BLEU", "NIST", "METEOR", "ROUGE-L", "CIDEr") in lines

    def cells(a, mark=""):
        scale = (100, 1, 100, 100, 1)
        digits = (1, 2, 1, 1, 2)
        return [ms(a[:, j], scale[j], digits[j]) + mark for j in range(5)]

    assert row("HUT", "0.00154M", *cells(E2E_HUT)) in lines
    assert row("LoRA", "0.00154M", *cells(E2E_LORA, " [2/3]")) in lines
    assert row("HUT (paper)", *["n/a"] * 6) in lines


def test_tables_4_and_5_golden(built):
    out, _, _ = built
    t4 = read(out, "table4.md").splitlines()
    assert row("Weight type", "Wq", "Wk", "Wv", "Wo", "Wq, Wk", "Wq, Wv", "Wq, Wk, Wv", "Wq, Wk, Wv, Wo") in t4
    assert row("Rank r", "16", "16", "16", "16", "8", "8", "4", "2") in t4
    assert row("MRPC", ms(T4_MRPC_Q), *["–"] * 7) in t4
    assert row("CoLA", *["–"] * 5, ms(T4_COLA_QV) + " [3/5]", "–", "–") in t4
    assert row("MRPC: ours − paper", f"+{np.mean(T4_MRPC_Q) * 100 - 84.0:.1f}", *["–"] * 7) in t4
    t5 = read(out, "table5.md").splitlines()
    assert row("Task", "Weight type", "r = 1", "r = 2", "r = 4", "r = 8", "r = 64") in t5
    assert row("MRPC", "Wv", ms(T5_MRPC_V), "–", "–", "–", ms(T5_MRPC_V)) in t5
    assert row("CoLA", "Wq, Wk, Wv, Wo", *["–"] * 5) in t5


def test_latex_and_figure(built):
    out, res, _ = built
    tex = read(out, "table1.tex")
    for s in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrrrr}", r"$\pm$", r"$^{\dagger}$",
              r"Adpt$^{\mathrm{H}}$", r"\caption{", r"\label{tab:table1}"):
        assert s in tex, s
    assert "±" not in tex and "†" not in tex
    png, pdf = out / "figures" / "figure3.png", out / "figures" / "figure3.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    assert b"CreationDate" not in pdf.read_bytes()
    assert any("figure3: 2 of our points" in s for s in res["summary"])


def test_rebuild_is_byte_identical(built):
    out, _, _ = built
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    opts = aggregate.parse_args([f"results_dir={RUNS}", f"out_dir={out}", "tables=1,3,4,5", f"paper={PAPER}"])
    aggregate.build(opts, log=lambda s: None)
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files
    for p in files:
        assert p.read_bytes() == before[p], p


def test_empty_results_write_labelled_tables_and_table2(tmp_path):
    out = tmp_path / "out"
    logs = []
    opts = aggregate.parse_args([f"results_dir={tmp_path / 'runs'}", f"out_dir={out}", "flops_model=tiny_roberta"])
    aggregate.build(opts, log=logs.append)
    for i in range(1, 6):
        for ext in ("md", "tex", "csv"):
            assert (out / "tables" / f"table{i}.{ext}").is_file()
    assert (out / "figures" / "figure3.png").is_file() and (out / "figures" / "figure3.pdf").is_file()
    t1 = read(out, "table1.md")
    assert "| Method | #Params | SST-2 | MRPC | CoLA | QNLI | RTE | STS-B | Avg. |" in t1
    assert "No records of experiment `table1`" in t1 and "| HUT | – |" in t1
    assert "Paper's figures not available" in t1
    t2 = read(out, "table2.md").splitlines()
    assert row("LoRA", "analytic (Eq. 10–11)", "`(2r+1)dk`", "0.86", "0.86", "0.00") in t2
    assert row("HUT", "analytic (Eq. 10–11)", "`4dk + rd + rk`", "0.20", "0.20", "0.00") in t2
    hut_measured = [ln for ln in t2 if ln.startswith("| HUT | ") and ln.count("|") == 10]
    assert len(hut_measured) == 1 and "failed" not in hut_measured[0]
    from hut.methods import METHODS

    measured = [ln.split(" | ")[0][2:] for ln in t2 if ln.startswith("| ") and ln.count("|") == 10]
    assert len(measured) == 1 + 1 + len(METHODS)  # header + floor + every method
    assert any("does not exist" in s for s in logs)


def test_expected_seeds_match_the_sweeps():
    for exp, seeds in aggregate.EXPECTED_SEEDS.items():
        assert tuple(int(s) for s in aggregate._sweep(exp)["seed"]) == seeds, exp
    from hut.demo import DEFAULTS

    assert tuple(int(s) for s in DEFAULTS["seeds"].split(",")) == aggregate.DEMO_SEEDS["glue"]
    lay = aggregate.layout("table1", "table1")
    assert len(lay.methods) == 8 and lay.tasks == aggregate.GLUE_TASKS
    assert len(aggregate.layout("table4", "table4").cells) == 8
    assert len(aggregate.layout("table5", "table5").cells) == 15


def test_demo_selector_and_bad_arguments():
    o = aggregate.parse_args(["experiment=demo", "results_dir=r", "out_dir=o"])
    assert o.tables == ("1", "3") and o.experiment_map["table1"] == "demo" and o.experiment_map["table3"] == "demo"
    lay = aggregate.layout("table1", "demo")
    assert lay.seeds == (0, 1) and "hut" in lay.methods
    assert aggregate.layout("table3", "demo").seeds == (0,)
    o = aggregate.parse_args(["experiment_map=table1:x,table4:y", "tables=1,4"])
    assert o.experiment_map["table1"] == "x" and o.experiment_map["table4"] == "y" and o.tables == ("1", "4")
    for bad in (["nonsense"], ["foo=1"], ["tables=7"], ["experiment_map=table2:x"], ["figure=maybe"]):
        with pytest.raises(SystemExit):
            aggregate.parse_args(bad)


def test_fixture_records_are_in_the_interface_layout():
    for p in RUNS.rglob("metrics.json"):
        rel = p.relative_to(RUNS).parts
        assert len(rel) == 6 and rel[4].startswith("seed="), rel
        if "bitfit" in rel and rel[4] == "seed=2":
            with pytest.raises(json.JSONDecodeError):
                json.loads(p.read_text())


def test_demo_experiment_builds_tables_1_and_3_only(tmp_path):
    runs = tmp_path / "runs"
    for p in sorted(RUNS.rglob("metrics.json")):
        rel = p.relative_to(RUNS)
        if rel.parts[0] not in ("table1", "table3"):
            continue
        try:
            rec = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
        rec["experiment"] = "demo"
        dest = runs / "demo" / Path(*rel.parts[1:])
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(rec))
    out = tmp_path / "out"
    aggregate.build(aggregate.parse_args([f"results_dir={runs}", f"out_dir={out}", "experiment=demo", "flops=false"]),
                    log=lambda s: None)
    assert sorted(p.name for p in (out / "tables").iterdir()) == [
        "cost.csv", "cost.md", "cost.tex", "table1.csv", "table1.md", "table1.tex", "table3.csv", "table3.md",
        "table3.tex"]
    t1 = read(out, "table1.md").splitlines()
    assert t1[0].startswith("# Table 1 (demo)")
    # the demo's tasks only (hut/demo.py), in the paper's order; SST-2 has no fixture records
    assert row("Method", "#Params", "SST-2", "MRPC", "CoLA", "STS-B", "Avg.") in t1
    # 2 expected seeds (0, 1); the fixture has 5 for LoRA: marked as extra, included. No average
    # while a task (SST-2) has no result.
    assert row("LoRA", "0.00205M", "–", ms(LORA_MRPC) + " [5/2]", ms(LORA_COLA) + " [5/2]",
               ms(LORA_STSB) + " [5/2]", "–") in t1
    assert (out / "figures" / "figure3.png").is_file()
    assert "# Table 3 (demo)" in read(out, "table3.md")


def _cost_row(lines, experiment, task, method):
    hits = [l for l in lines if l.startswith(f"| {experiment} | {task} | {method} |")]
    assert len(hits) == 1, (experiment, task, method, hits)
    return [c.strip() for c in hits[0].strip("|").split("|")]


def test_cost_table_lists_score_wall_time_and_parameters_of_finished_runs(built):
    out, _, _ = built
    lines = read(out, "cost.md").splitlines()
    assert lines[0] == "# Run cost: score, wall time and trainable parameters per run"
    hut_mrpc = _cost_row(lines, "table1", "MRPC", "HUT")
    assert hut_mrpc[4:8] == ["accuracy", ms(HUT_MRPC), "0,1,2,3,4", "12.5"]
    adapter, trainable = (int(x.replace(",", "")) for x in hut_mrpc[8:10])
    assert trainable == adapter + 1090  # make_records.py: trainable = adapter + the head
    # Only successful runs: HUT CoLA has seeds 0-2 (seed 3 failed, seed 4 missing).
    hut_cola = _cost_row(lines, "table1", "CoLA", "HUT")
    assert hut_cola[4:7] == ["Matthews corr.", ms(HUT_COLA), "0,1,2"]
    bleu = _cost_row(lines, "table3", "E2E", "HUT")
    assert bleu[4:7] == ["BLEU", ms(E2E_HUT[:, 0]), "0,1,2"]
    rows = list(csv.DictReader(io.StringIO(read(out, "cost.csv"))))
    r = next(r for r in rows if (r["experiment"], r["task"], r["method"]) == ("table1", "mrpc", "hut"))
    assert float(r["mean"]) == pytest.approx(np.mean(HUT_MRPC) * 100) and r["wall_time_s_mean"] == "12.50"
    assert "table4" not in {r["experiment"] for r in rows}  # Tables 4/5 have their own layout
