"""The parts-of-HUT table (``hut.results.tables.parts``) built by the aggregator from records written as the
trainer writes them (``tests/fixtures/records/make_records.py``'s ``make``, into a temporary folder):
every row of the ``parts`` sweep in its order, Table 1's tasks as columns, mean ± std over seeds, and
the paper's Table 1 rows below with ours − paper for the HUT row (a Table 1 config)."""
import importlib.util
from pathlib import Path

import numpy as np

from hut import aggregate

FIX = Path(__file__).resolve().parent / "fixtures" / "records"
SCORES = {  # (row, task) -> made-up scores per seed
    ("parts/out", "mrpc"): [0.80, 0.82],
    ("parts/ssf", "mrpc"): [0.84, 0.85],
    ("parts/hut", "mrpc"): [0.86, 0.88],
    ("parts/hira", "rte"): [0.70, 0.74],
    ("parts/dora", "mrpc"): [0.87, 0.85],
}
NO_RESULT = "–"
PARAMS = {"parts/out": 49152, "parts/ssf": 98304, "parts/hut": 884736, "parts/hira": 786432, "parts/dora": 835584}


def _make_records(runs: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_records", FIX / "make_records.py")
    mr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mr)
    mr.RUNS = runs
    for (row, task), scores in SCORES.items():
        for seed, score in enumerate(scores):
            mr.write(*mr.make(["experiment=parts", f"row={row}", f"task={task}", f"seed={seed}"], "success",
                              mr.glue_best(task, score), PARAMS[row]))


def test_parts_table_renders_from_records(tmp_path):
    runs = tmp_path / "runs"
    _make_records(runs)
    out = tmp_path / "out"
    logs = []
    aggregate.build(aggregate.options([f"results_dir={runs}", f"out_dir={out}", "experiment=parts",
                                       f"paper_file={FIX / 'paper_fixture.yaml'}"]), log=logs.append)
    md = (out / "tables" / "parts.md").read_text(encoding="utf-8")
    lines = md.splitlines()
    labels = ["s (γ)", "s, t (γ, β)", "a, s (no shift)", "a, s, t", "HUT", "HiRA", "DoRA", "LoRA"]
    first = [next(i for i, ln in enumerate(lines) if ln.startswith(f"| {lab} |")) for lab in labels]
    assert first == sorted(first), "rows in the sweep's order"
    header = next(ln for ln in lines if ln.startswith("| Method"))
    assert [h.strip() for h in header.strip("|").split("|")][2:] == ["SST-2", "MRPC", "CoLA", "QNLI", "RTE", "STS-B", "Avg."]

    def cell(label, col):
        ln = lines[first[labels.index(label)]]
        return [c.strip() for c in ln.strip("|").split("|")][2 + col]

    v = np.array(SCORES[("parts/hut", "mrpc")]) * 100
    assert cell("HUT", 1) == f"{v.mean():.1f} ± {v.std(ddof=1):.1f} [2/5]"  # 2 of the sweep's 5 seeds
    v = np.array(SCORES[("parts/hira", "rte")]) * 100
    assert cell("HiRA", 4) == f"{v.mean():.1f} ± {v.std(ddof=1):.1f} [2/5]"
    assert cell("LoRA", 1) == NO_RESULT
    assert "Table 1" in md and "(paper)" in md  # the paper's Table 1 rows below ours
    assert any(ln.startswith("| HUT: ours − paper |") for ln in lines)  # the HUT row is Table 1's config
    assert any("parts <- experiment 'parts'" in ln for ln in logs)
