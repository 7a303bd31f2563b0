"""Bad input gets one clear line that names the problem and the file or key."""
import os
import subprocess
import sys

import pytest

from hut.schema import validate
from hut.trainer import run
from tests.helpers import FIXTURES, ROOT, make_cfg


def _cli(*overrides, env=None):
    e = dict(os.environ, **(env or {}))
    e.pop("HUT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "hut.train", "experiment=debug", *overrides], cwd=ROOT,
                          capture_output=True, text=True, env=e, timeout=300)


def test_cli_bad_overrides_each_print_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = {
        ("method=nosuch",): "unknown method 'nosuch' (method=nosuch); known: bitfit,",
        ("task=nosuch",): "unknown task 'nosuch' (task=nosuch); known: cola,",
        ("model=nosuch",): "unknown model 'nosuch' (model=nosuch); known: gpt2_medium,",
        ("trainer.epohcs=3",): "trainer.epohcs: no such key; the keys of trainer are: adam_beta2,",
        ("method.r=0", f"data.dir={FIXTURES}"): "method.r must be a positive integer for method 'hut' (got 0)",
        ("data.dir=/nonexistent/data",): "data.dir=/nonexistent/data: no such directory",
        (f"data.dir={FIXTURES}", f"results_dir={blocker}/runs"): "results_dir: cannot write to",
        (f"data.dir={FIXTURES}", "method.targets=[q,x]"): "unknown target name(s) ['x']",
    }
    for overrides, message in cases.items():
        out = _cli(*overrides)
        assert out.returncode != 0, overrides
        assert message in out.stderr, (overrides, out.stderr[-2000:])
        assert len(out.stderr.strip().splitlines()) == 1, (overrides, out.stderr[-2000:])


def test_missing_data_dir_says_how_to_provide_data(tmp_path):
    out = _cli("data.dir=null", env={"HUT_DATA": ""})
    assert out.returncode != 0 and "HUT_DATA" in out.stderr and "data.source=hub" in out.stderr


def _write(tmp_path, rel, text):
    p = tmp_path / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


@pytest.mark.parametrize("task,rel,text,message", [
    ("mrpc", "glue/MRPC/train.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tonly four fields\n",
     "train.tsv"),
    ("sst2", "glue/SST-2/train.tsv", "sentence\tlabel\ngood movie\t7\n", "train.tsv"),
    ("cola", "glue/CoLA/train.tsv", "gj04\t1\t\tok sentence\nbad line without tabs\n", "line 2"),
    ("stsb", "glue/STS-B/train.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
     "0\tx\tx\tx\tx\tx\tx\ta\tb\n", "score"),
])
def test_malformed_glue_files_name_the_file(tmp_path, task, rel, text, message):
    import shutil

    for split in ("dev",):  # a valid dev file so only the train file is at fault
        src = {"mrpc": "MRPC", "sst2": "SST-2", "cola": "CoLA", "stsb": "STS-B"}[task]
        (tmp_path / "glue" / src).mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / "glue" / src / f"{split}.tsv", tmp_path / "glue" / src / f"{split}.tsv")
    _write(tmp_path, rel, text)
    cfg = make_cfg(f"task={task}", "trainer.max_steps=1", results_dir=tmp_path / "runs", data_dir=tmp_path)
    validate(cfg)
    with pytest.raises(ValueError) as e:
        run(cfg)
    assert rel.split("/")[-1] in str(e.value) and message in str(e.value)


@pytest.mark.parametrize("line,message", [
    (" ||A reference.\n", "empty MR"),
    ("name : X | area : riverside A reference without separator\n", "||"),
])
def test_malformed_e2e_rows_name_the_line(tmp_path, line, message):
    good = "name : Y | area : city centre||Y is in the city centre .\n"
    _write(tmp_path, "e2e/lora_format/train.txt", good + line)
    from hut.data.e2e import load_e2e_pairs

    with pytest.raises(ValueError) as e:
        load_e2e_pairs("train", source="lora", data_dir=tmp_path)
    assert "train.txt" in str(e.value) and "line 2" in str(e.value) and message in str(e.value)


def test_e2e_train_file_missing_points_to_train_split_key(tmp_path):
    (tmp_path / "e2e" / "official").mkdir(parents=True)
    from hut.data.e2e import load_e2e_pairs

    with pytest.raises(FileNotFoundError, match="data.train_split=dev"):
        load_e2e_pairs("train", source="local", data_dir=tmp_path)


def test_rows_and_seed_errors_name_what_to_set():
    """Hydra lists no options for the nested row group; hut.train says which rows there are."""
    from hut.train import check_rows

    rows = "table1/ft, table1/padapter_3.0m"
    unknown = check_rows(["experiment=table1", "row=table1/hutt", "task=rte"])
    assert unknown.startswith("unknown row 'table1/hutt'; known: ") and rows in unknown and "table1/hut" in unknown
    missing = check_rows(["experiment=table1", "task=rte"])
    assert missing.startswith("experiment=table1 needs a row: row=ROW with ROW one of ") and rows in missing
    assert check_rows(["-m", "experiment=table1"]) is None  # the sweep names the rows
    assert check_rows(["experiment=table1", "row=table1/hut"]) is None and check_rows(["experiment=debug"]) is None
    assert "unknown experiment 'tabel1'" in check_rows(["experiment=tabel1"])
    with pytest.raises(ValueError, match=r"seed must be an integer \(got 'abc'\)"):
        validate(make_cfg("seed=abc"))


def test_a_tsv_with_binary_garbage_names_the_file_and_line(tmp_path):
    from hut.data.glue import read_glue_tsv

    p = tmp_path / "train.tsv"
    p.write_bytes(b"sentence\tlabel\ngood movie\t1\n\xff\xfe\x00garbage\t0\n")
    with pytest.raises(ValueError, match=r"train\.tsv: line 3: not UTF-8 text \(byte 0xff"):
        read_glue_tsv(p, "sst2")
