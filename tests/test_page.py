"""The static results page (hut.results.page) and the shipped records, built by the aggregator from the
fixture records (tests/fixtures/records/runs): what it holds, that it names no network resource, that
it stays small, and that the records shipped beside it aggregate to the same tables.
A real browser opens it in tests/test_page_browser.py."""
import json
import shutil
import re
from pathlib import Path

import pytest

from hut import aggregate
from hut.results.figures.pareto import front
from hut.results.files import RECORDS_DIR
from hut.results.page.base import ordered

FIX = Path(__file__).resolve().parent / "fixtures" / "records"
ARGS = [f"results_dir={FIX / 'runs'}", "tables=[1,3,4,5]", f"paper_file={FIX / 'paper_fixture.yaml'}", "flops=false"]
MAX_BYTES = 500 * 1024  # the project's limit for a tracked file


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("page")
    res = aggregate.build(aggregate.options([*ARGS, f"out_dir={out}"]), log=lambda s: None)
    return out, res


def page_data(html: str) -> dict:
    m = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_the_page_opens_on_the_claims_and_holds_every_section_with_plots(built):
    out, res = built
    html = (out / "index.html").read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([^"]+)">', html)
    assert sections[0] == "claims" and {"cells", "pareto", "lr", "runs", "tables", "report"} <= set(sections)
    assert [s.key for s in ordered()][:3] == ["claims", "cells", "pareto"]
    data = page_data(html)
    ids = re.findall(r'data-plot="([^"]+)"', html)
    assert ids and set(ids) == set(data["plots"]), "every plot element has its spec and every spec an element"
    kinds = {s["kind"] for s in data["plots"].values()}
    assert kinds == {"strip", "scatter", "lines"}
    # every claim of the tables built, with its verdict, first on the page
    assert [c["id"] for c in data["claims"]["claims"]][:1] == ["hut_vs_lora_glue"]
    assert 'data-verdict="no records yet"' in html and "Not tested here" in html and "hut_fewest_flops" in html
    # the seeds of a cell, its paper figure and verdict (HUT on MRPC: 5 seeds against the fixture's 86.5)
    mrpc = next(s for s in data["plots"].values() if s["kind"] == "strip" and s["table"] == "table1" and s["title"] == "MRPC")
    hut = next(r for r in mrpc["rows"] if r["label"] == "HUT")
    assert sorted(hut["values"]) == ["0", "1", "2", "3", "4"] and hut["paper"] == 86.5 and hut["verdict"] == "inconclusive"
    assert hut["values"]["0"] == pytest.approx(85.0)


def test_pareto_axes_and_the_learning_rate_curve(built):
    out, _ = built
    data = page_data((out / "index.html").read_text(encoding="utf-8"))
    scatter = data["plots"]["pareto-table1-mrpc"]
    assert set(scatter["axes"]) == {"params", "flops", "step_time", "memory"}
    assert all(a["lower_is_better"] for a in scatter["axes"].values())
    hut = next(p for p in scatter["points"] if p["label"] == "HUT")
    assert hut["x"]["params"] == 884736 and hut["x"]["step_time"] == pytest.approx(12.5 / 200)  # wall time / steps
    assert hut["x"]["flops"] is None and "flops=false" in hut["why"]["flops"]
    # LoRA on MRPC ran at the sweep's lr and as an override variant trainer.lr=0.001: a curve of two points
    curve = next(s for pid, s in data["plots"].items() if pid.startswith("lr-"))
    lora = next(s for s in curve["series"] if s["method"] == "lora")
    assert len(lora["points"]) == 2 and lora["points"][1][0] == pytest.approx(1e-3)


def test_the_front_is_the_rows_nothing_beats():
    pts = [(1.0, 80.0), (2.0, 85.0), (2.0, 84.0), (3.0, 85.0), (0.5, 70.0)]
    assert front(pts) == [4, 0, 1]  # (2, 84) and (3, 85) are beaten by (2, 85)
    assert front(pts, lower_x_better=False) == [3]  # higher cost better: (3, 85) beats every other


def test_the_page_needs_no_network_and_stays_small(built):
    out, _ = built
    html = (out / "index.html").read_text(encoding="utf-8")
    assert len(html.encode("utf-8")) < MAX_BYTES
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(not re.match(r"[a-z]+://", u) for u in urls), [u for u in urls if "://" in u]
    # the only absolute URL is the SVG namespace, an identifier the browser never fetches
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) <= {"http://www.w3.org/2000/svg"}
    for u in urls:
        if not u.startswith("#"):
            assert (out / u).is_file(), f"the page links {u}, which is not beside it"


def test_shipped_records_aggregate_to_the_same_tables(built, tmp_path):
    out, res = built
    shipped = out / RECORDS_DIR
    assert res["shipped"] and all(p.is_relative_to(shipped) for p in res["shipped"])
    names = {p.name for p in shipped.rglob("*") if p.is_file()}
    assert names == {"metrics.json"}  # the fixture runs keep no predictions; never weights or checkpoints
    again = tmp_path / "again"
    aggregate.build(aggregate.options([f"results_dir={shipped}", *ARGS[1:], f"out_dir={again}"]), log=lambda s: None)
    for p in sorted((out / "tables").glob("*.csv")):
        assert (again / "tables" / p.name).read_text() == p.read_text(), p.name

    def body(md: str, folder: Path) -> str:  # the text names the folder read; an unreadable record is not shipped
        lines = [ln for ln in md.splitlines() if not ln.startswith(("Generated by", "- Skipped `"))]
        return "\n".join(lines).replace(str(folder), "<results_dir>")

    for p in sorted((out / "tables").glob("*.md")):
        assert body((again / "tables" / p.name).read_text(), shipped) == body(p.read_text(), FIX / "runs"), p.name


def test_a_sub_percent_axis_says_so():
    from hut.results.figures.costs import span_note

    note = span_note([5.818, 5.840, 5.829], " GFLOPs")
    assert "0.38%" in note and "5.818–5.84 GFLOPs" in note
    assert span_note([1.0, 2.0]) == "" and span_note([3.0]) == ""


def test_a_run_gone_from_results_dir_leaves_no_shipped_copy(tmp_path):
    """Aggregating again after a run was deleted from results_dir removes its shipped copy (its experiment
    was read again); the records of an experiment not read this time stay."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    shutil.copytree(FIX / "runs", runs)
    args = [f"results_dir={runs}", *ARGS[1:], f"out_dir={out}"]
    aggregate.build(aggregate.options(args), log=lambda s: None)
    gone = Path("table1/mrpc/hut/roberta_large/seed=0")
    assert (out / RECORDS_DIR / gone / "metrics.json").is_file()
    kept = sorted((out / RECORDS_DIR / "table4").rglob("metrics.json"))
    shutil.rmtree(runs / gone)
    lines: list[str] = []
    res = aggregate.build(aggregate.options([*args[:1], "tables=[1]", *args[2:]]), log=lines.append)
    assert not (out / RECORDS_DIR / gone).exists() and (out / RECORDS_DIR / gone.parent).is_dir()
    assert sorted((out / RECORDS_DIR / "table4").rglob("metrics.json")) == kept and kept  # table4 not read
    assert any("removed 1 shipped files" in line and str(gone) in line for line in lines), lines
    again = tmp_path / "again"
    aggregate.build(aggregate.options([f"results_dir={out / RECORDS_DIR}", "tables=[1]", *args[2:-1],
                                       f"out_dir={again}"]), log=lambda s: None)
    assert (again / "tables" / "table1.csv").read_text() == (out / "tables" / "table1.csv").read_text()
    assert res["shipped"]


def test_a_record_without_its_model_arch_gets_no_cost_from_todays_config():
    """The FLOPs and memory axes use the model config the record holds; without its arch they say so,
    never counting today's configs/model file (which may differ from the run's)."""
    from dataclasses import replace

    from hut.results.figures.costs import measure_run
    from hut.results.runs import load_runs

    run = next(r for r in load_runs(FIX / "runs")[0] if r.method_cfg and r.model_cfg and "arch" in r.model_cfg)
    bare = replace(run, model_cfg={k: v for k, v in run.model_cfg.items() if k != "arch"})
    for key in ("flops", "memory"):
        assert measure_run(bare, key) == (None, "no model arch in its record")
