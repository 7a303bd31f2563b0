"""The paper's experiments are the paper's: every cell of table1, table3, table4 and table5 composed
as `hut.train -m` composes it and held against the paper's published figures (hut/fidelity.py), the
project's copy of those figures equal to ../shared's, and settings that cannot go missing silently."""
import copy
import filecmp

import pytest
import yaml

from hut import fidelity
from hut.config import paper
from hut.config import compose
from tests.helpers import REAL

SHARED = (REAL.parent / "paper" / "hut_2409.13501_tables.yaml") if REAL is not None else None
needs_shared = pytest.mark.skipif(SHARED is None or not SHARED.is_file(),
                                  reason="../shared/paper/hut_2409.13501_tables.yaml not found (set HUT_DATA)")


@needs_shared
def test_the_project_copy_of_the_paper_equals_the_shared_one():
    assert filecmp.cmp(paper.PUBLISHED_FILE, SHARED, shallow=False)


@pytest.mark.parametrize("source", ["project", "shared"])
def test_every_cell_of_the_paper_experiments_matches_the_paper(source, capsys):
    if source == "shared" and (SHARED is None or not SHARED.is_file()):
        pytest.skip("../shared/paper not found (set HUT_DATA)")
    report = fidelity.check(published_file=SHARED if source == "shared" else None)
    with capsys.disabled():
        print(f"\n[fidelity, {source} figures] {report.cells} cells ({report.runs} runs), {report.checks} "
              f"comparisons, {len(report.mismatches)} listed deviations")
    assert report.cells == 54 + 10 + 16 + 30 and report.runs == 270 + 30 + 80 + 150
    assert report.unexplained() == [], "\n".join(f"{m.row} {m.check}: {m.detail}" for m in report.unexplained())
    assert report.stale_deviations(fidelity.PAPER_EXPERIMENTS) == []


def test_a_wrong_value_is_caught(tmp_path):
    """The check can fail: a paper whose Table 6 gives HUT another SST-2 learning rate."""
    data = copy.deepcopy(paper.published())
    hut = next(r for r in data["table6"]["rows"] if r["method"] == "hut")
    hut["lr"][0] = 3.0e-4  # SST-2 (the suite runs 1e-4)
    wrong = tmp_path / "paper.yaml"
    wrong.write_text(yaml.safe_dump(data))
    report = fidelity.check(["table1"], published_file=wrong)
    bad = [(m.row, m.check, m.detail) for m in report.unexplained()]
    assert bad == [("table1/hut", "lr[sst2]", "ours 0.0001, paper 0.0003")]


def test_a_missing_setting_is_an_error_naming_the_row_and_the_key(monkeypatch):
    from omegaconf import OmegaConf

    data = copy.deepcopy(paper.settings_file("table6"))
    del data["rows"]["lora"]["lr"]
    real = paper.settings_file
    monkeypatch.setattr(paper, "settings_file", lambda name: data if name == "table6" else real(name))
    cfg = compose(["experiment=table1", "row=table1/lora", "task=rte"])
    with pytest.raises(Exception, match=r"configs/paper/table6\.yaml: row 'lora' has no setting 'lr'"):
        OmegaConf.to_container(cfg, resolve=True)
    with pytest.raises(paper.PaperSettingError, match=r"row 'hut' has no 'lr' for task 'mnli'"):
        paper.setting("table6/hut", "lr", "mnli")


def test_settings_files_hold_numbers_not_strings():
    """YAML reads 1e-4 (no dot) as a string: every numeric setting must be a number."""
    numeric = {"lr", "head_lr", "batch_size", "epochs", "max_seq_len", "warmup_ratio", "warmup_steps", "weight_decay",
               "adam_eps", "adam_beta2", "max_grad_norm", "label_smoothing", "r", "lora_alpha", "bottleneck",
               "scaling", "length_penalty"}
    files = sorted(paper.SETTINGS_DIR.glob("table*.yaml"))  # the settings files (claims.yaml holds claims)
    assert [p.stem for p in files] == ["table6", "table6_extended", "table7", "table7_extended"], files
    for p in files:
        for row, values in yaml.safe_load(p.read_text())["rows"].items():
            for key, v in values.items():
                if key in numeric:
                    for x in (v.values() if isinstance(v, dict) else [v]):
                        assert x is None or isinstance(x, (int, float)), (p.name, row, key, x)


def test_methods_outside_the_paper_rows_run_in_extended_experiments():
    from hut.config import experiments

    def methods(e):
        return {c.config["method"]["name"] for c in experiments.cells(e)}

    paper_methods = {r["method"] for r in paper.published_rows("table1")}
    assert methods("table1") == paper_methods
    assert methods("table3") == {r["method"] for r in paper.published_rows("table3")}
    assert {"bitfit", "ia3", "hut_compact"} <= methods("table1_extended") and not (methods("table1_extended") & {"hut"})
    assert {"bitfit", "ia3", "hut_compact"} <= methods("table3_extended")
