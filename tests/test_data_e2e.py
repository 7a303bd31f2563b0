"""E2E NLG loaders: official CSV, LoRA line format and hub (mocked) give the same examples."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hut.data.e2e import (
    CANONICAL_KEYS,
    canonical_mr,
    load_e2e_eval,
    load_e2e_pairs,
    parse_mr,
    render_mr,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _real_data_dir() -> Path | None:
    for d in (os.environ.get("HUT_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data"):
        if d and (Path(d) / "e2e").is_dir():
            return Path(d)
    return None


REAL = _real_data_dir()
needs_real = pytest.mark.skipif(REAL is None, reason="real E2E data not found (set HUT_DATA to ../shared/data)")


def _only(tmp_path: Path, fmt: str) -> Path:
    """A data dir holding only one of the two local layouts (a writable copy of the fixtures)."""
    sub = {"official": "official", "lora": "lora_format"}[fmt]
    shutil.copytree(FIXTURES / "e2e" / sub, tmp_path / "e2e" / sub)
    return tmp_path


# --------------------------------------------------------------------------------------------- MRs
def test_parse_official_and_lora_agree():
    official = "name[The Eagle], eatType[coffee shop], food[Japanese], priceRange[£20-25], customer rating[3 out of 5], area[riverside], familyFriendly[yes], near[Burger King]"
    lora = "name : The Eagle | Type : coffee shop | food : Japanese | price : £ 20 - 25 | customer rating : 3 out of 5 | area : riverside | family friendly : yes | near : Burger King"
    expected = [("name", "The Eagle"), ("eatType", "coffee shop"), ("food", "Japanese"), ("priceRange", "£20-25"),
                ("customer rating", "3 out of 5"), ("area", "riverside"), ("familyFriendly", "yes"),
                ("near", "Burger King")]
    assert parse_mr(official) == expected
    assert parse_mr(lora) == expected
    assert [k for k, _ in expected] == list(CANONICAL_KEYS)
    assert render_mr(expected) == (
        "name : The Eagle | Type : coffee shop | food : Japanese | price : £20-25 | customer rating : 3 out of 5 "
        "| area : riverside | family friendly : yes | near : Burger King")
    assert canonical_mr(official) == canonical_mr(lora) == render_mr(expected)


def test_parse_keeps_order_and_values():
    assert parse_mr("area[city centre], name[Alimentum]") == [("area", "city centre"), ("name", "Alimentum")]
    assert parse_mr("name : X | price : less than £ 20") == [("name", "X"), ("priceRange", "less than £20")]
    assert parse_mr("name : X | price : more than £ 30") == [("name", "X"), ("priceRange", "more than £30")]
    assert parse_mr(" name[Café Rouge] ") == [("name", "Café Rouge")]


@pytest.mark.parametrize("bad", ["", "   ", "name[X], colour[red]", "name[X] area[riverside]", "name[X], area[]",
                                 "name : X | wifi : yes", "name X | area : riverside", "name[X], name[Y]",
                                 "name[X], area[riverside"])
def test_parse_errors(bad):
    with pytest.raises(ValueError):
        parse_mr(bad)


def test_render_rejects_unknown_key():
    with pytest.raises(ValueError, match="unknown E2E attribute"):
        render_mr([("Type", "pub")])  # render takes canonical keys


# ---------------------------------------------------------------------------------------- fixtures
@pytest.mark.parametrize("split,n_mrs,n_refs", [("train", 3, 6), ("dev", 3, 8), ("test", 2, 5)])
def test_fixture_sources_agree(split, n_mrs, n_refs):
    official = load_e2e_eval(split, "official", FIXTURES)
    lora = load_e2e_eval(split, "lora", FIXTURES)
    assert len(official) == len(lora) == n_mrs
    assert [it["mr"] for it in official] == [it["mr"] for it in lora]
    assert [len(it["refs"]) for it in official] == [len(it["refs"]) for it in lora]
    assert sum(len(it["refs"]) for it in official) == n_refs
    pairs = load_e2e_pairs(split, "official", FIXTURES)
    assert len(pairs) == n_refs and all(set(p) == {"mr", "ref"} for p in pairs)
    assert [p["mr"] for p in pairs] == [p["mr"] for p in load_e2e_pairs(split, "lora", FIXTURES)]
    # pairs and eval items describe the same rows
    assert [(p["mr"], p["ref"]) for p in pairs] == [(it["mr"], r) for it in official for r in it["refs"]]


def test_fixture_contents():
    dev = load_e2e_eval("dev", "official", FIXTURES)
    assert dev[0]["mr"] == "name : Bluebell Diner | area : city centre | family friendly : no"
    assert dev[0]["refs"][0] == "Bluebell Diner is in the city centre and is not family-friendly."
    assert dev[2]["refs"][2] == 'Near The Market Hall, "Oak & Ivy" is an inexpensive pub.'  # CSV quoting undone
    assert dev[1]["mr"].endswith("price : more than £30 | customer rating : high | area : riverside | "
                                 "family friendly : yes | near : Castle Bridge")
    lora = load_e2e_eval("dev", "lora", FIXTURES)
    # LoRA-format references are pre-tokenised (and stripped of the trailing space)
    assert lora[0]["refs"][0] == "Bluebell Diner is in the city centre and is not family - friendly ."
    test = load_e2e_eval("test", "official", FIXTURES)  # testset_w_refs.csv: every field quoted
    assert test[0]["mr"] == "name : The Quayside | Type : coffee shop | area : city centre"


def test_local_prefers_official_then_lora(tmp_path):
    assert load_e2e_eval("dev", "local", FIXTURES) == load_e2e_eval("dev", "official", FIXTURES)
    d = _only(tmp_path, "lora")
    assert load_e2e_eval("dev", "local", d) == load_e2e_eval("dev", "lora", FIXTURES)


def test_data_dir_from_env(monkeypatch):
    monkeypatch.setenv("HUT_DATA", str(FIXTURES))
    assert len(load_e2e_eval("test")) == 2


def test_grouping_is_consecutive(tmp_path):
    d = tmp_path / "e2e" / "lora_format"
    d.mkdir(parents=True)
    (d / "valid.txt").write_text(
        "name : A | area : riverside||a one\n"
        "name : A | area : riverside||a two\n"
        "name : B||b one\n"
        "\n"
        "name : A | area : riverside||a three\n", encoding="utf-8")
    items = load_e2e_eval("dev", "lora", tmp_path)
    assert [(it["mr"], it["refs"]) for it in items] == [
        ("name : A | area : riverside", ["a one", "a two"]), ("name : B", ["b one"]),
        ("name : A | area : riverside", ["a three"])]  # as the official script: consecutive rows only
    assert len(load_e2e_pairs("dev", "lora", tmp_path)) == 4


def test_max_items():
    full = load_e2e_pairs("dev", "official", FIXTURES)
    a = load_e2e_pairs("dev", "official", FIXTURES, max_items=4)
    assert a == load_e2e_pairs("dev", "official", FIXTURES, max_items=4) and len(a) == 4
    pos = [full.index(p) for p in a]
    assert pos == sorted(pos)
    assert load_e2e_pairs("dev", "official", FIXTURES, max_items=100) == full


def test_max_items_eval_is_a_seeded_subset_in_file_order():
    """load_e2e_eval subsamples MRs as GLUE subsamples examples (hut.data.glue.subsample)."""
    from hut.data.glue import subsample

    full = load_e2e_eval("dev", "official", FIXTURES)
    for seed in range(4):
        got = load_e2e_eval("dev", "official", FIXTURES, max_items=2, seed=seed)
        assert got == subsample(full, 2, seed)
        pos = [full.index(it) for it in got]
        assert len(got) == 2 and pos == sorted(pos)
    picks = {tuple(it["mr"] for it in load_e2e_eval("dev", "official", FIXTURES, max_items=1, seed=s))
             for s in range(10)}
    assert len(picks) > 1  # the seed matters; the default seed is 0
    assert load_e2e_eval("dev", "official", FIXTURES, max_items=1) == \
        load_e2e_eval("dev", "official", FIXTURES, max_items=1, seed=0)
    assert load_e2e_eval("dev", "official", FIXTURES, max_items=3) == full
    assert load_e2e_eval("dev", "official", FIXTURES, max_items=0) == []
    with pytest.raises(ValueError, match=">= 0"):
        load_e2e_eval("dev", "official", FIXTURES, max_items=-1)


def _e2e_task(*overrides, data_dir=FIXTURES):
    from helpers import make_cfg

    from hut.tasks import build_task

    return build_task(make_cfg("task=e2e", *overrides, data_dir=data_dir), tokenizer=None)


def test_e2e_task_eval_subset_names_the_scored_mrs():
    task = _e2e_task("data.eval_split=dev", "data.max_eval_samples=2", "data.subset_seed=3")
    sub = task.eval_subset()
    assert sub == {"split": "dev", "unit": "MR", "n_scored": 2, "n_total": 3,
                   "max_eval_samples": 2, "subset_seed": 3, "indices": sub["indices"]}
    full = load_e2e_eval("dev", "official", FIXTURES)
    assert task.eval_items() == [full[i] for i in sub["indices"]]
    assert task.eval_items() == load_e2e_eval("dev", "official", FIXTURES, max_items=2, seed=3)
    assert sub["indices"] == sorted(sub["indices"])
    # everything scored: no index list
    task = _e2e_task("data.eval_split=dev", "data.max_eval_samples=null")
    assert task.eval_subset()["indices"] is None and task.eval_subset()["n_scored"] == 3
    assert task.eval_items() == full


def test_e2e_task_subset_seed_reaches_training_rows():
    task = _e2e_task("data.train_split=dev", "data.max_train_samples=3", "data.subset_seed=5",
                     "trainer.max_length=512")
    pairs = load_e2e_pairs("dev", "official", FIXTURES, max_items=3, seed=5)
    assert pairs != load_e2e_pairs("dev", "official", FIXTURES, max_items=3, seed=0)

    class Tok:  # a stand-in tokenizer: one id per character
        eos_token_id = 0

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) for c in text]}

    task.tok = Tok()
    targets = ["".join(chr(i) for i in ex["labels"] if i > 0) for ex in task.train_dataset()]
    assert targets == [" " + p["ref"] for p in pairs]


def test_glue_task_eval_subset():
    from helpers import make_cfg

    from hut.data.glue import load_glue
    from hut.tasks import Task, build_task

    task = build_task(make_cfg("task=mrpc", "data.max_eval_samples=3", "data.subset_seed=1"),
                      tokenizer=None)
    sub = task.eval_subset()
    full = load_glue("mrpc", "dev", data_dir=FIXTURES)
    assert (sub["split"], sub["unit"], sub["n_scored"], sub["n_total"], sub["subset_seed"]) == \
        ("dev", "example", 3, len(full), 1)
    assert [full[i] for i in sub["indices"]] == load_glue("mrpc", "dev", data_dir=FIXTURES,
                                                          max_samples=3, seed=1)
    assert Task.eval_subset(task) is None  # the base class cannot say


# ------------------------------------------------------------------------------------------ errors
def test_missing_train_file_message(tmp_path):
    shutil.copytree(FIXTURES / "e2e" / "official", tmp_path / "e2e" / "official")
    (tmp_path / "e2e" / "official" / "trainset.csv").unlink()
    with pytest.raises(FileNotFoundError) as e:
        load_e2e_pairs("train", "local", tmp_path)
    msg = str(e.value)
    assert "trainset.csv" in msg and "train.txt" in msg
    assert "data.train_split=dev" in msg and "not part of the shared data" in msg


def test_missing_dir_message(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="data.source=hub"):
        load_e2e_eval("dev", "official", tmp_path)
    monkeypatch.delenv("HUT_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="HUT_DATA"):
        load_e2e_eval("dev", "local")


def test_bad_split_and_source():
    with pytest.raises(ValueError, match="split"):
        load_e2e_eval("validation", "official", FIXTURES)
    with pytest.raises(ValueError, match="source"):
        load_e2e_eval("dev", "csv", FIXTURES)


def _write(tmp_path: Path, rel: str, text: str) -> Path:
    p = tmp_path / "e2e" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("text,line,what", [
    ("mr,ref\n\"name[A], area[riverside]\",Fine.\n,Nothing here.\n", 3, "empty MR"),
    ("mr,ref\n\"name[A], wifi[yes]\",Fine.\n", 2, "unknown attribute"),
    ("mr,ref\n\"name[A]\",One.\n\"name[A]\",Two,\"three\"\n", 3, "malformed row"),
    ("mr,text\n\"name[A]\",One.\n", 1, "missing column 'ref'"),
    ("mr,ref\n\"name[A]\",\"multi\nline\"\n\"name[A]\",\n", 4, "empty reference"),
])
def test_bad_csv_rows(tmp_path, text, line, what):
    p = _write(tmp_path, "official/devset.csv", text)
    with pytest.raises(ValueError) as e:
        load_e2e_eval("dev", "official", tmp_path)
    assert str(p) in str(e.value) and f"line {line}:" in str(e.value) and what in str(e.value)


@pytest.mark.parametrize("text,line,what", [
    ("name : A||ok\nname : A  no separator here\n", 2, "missing '||'"),
    ("name : A||ok\n||orphan reference\n", 2, "empty MR"),
    ("name : A||ok\nname : A | colour : red||bad key\n", 2, "unknown attribute"),
    ("name : A||ok\nname : A\nname: B||x\n", 2, "missing '||'"),
    ("name : A||ok\nname A | area : riverside||x\n", 2, "unparseable MR"),
])
def test_bad_lora_rows(tmp_path, text, line, what):
    p = _write(tmp_path, "lora_format/test.txt", text)
    with pytest.raises(ValueError) as e:
        load_e2e_pairs("test", "lora", tmp_path)
    assert str(p) in str(e.value) and f"line {line}:" in str(e.value) and what in str(e.value)


# --------------------------------------------------------------------------------------------- hub
def test_hub_mocked_matches_official(monkeypatch):
    import csv

    import datasets

    with open(FIXTURES / "e2e" / "official" / "devset.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    seen = []

    def fake_load_dataset(path, *args, **kwargs):
        seen.append((path, kwargs))
        return datasets.Dataset.from_dict({"meaning_representation": [r["mr"] for r in rows],
                                           "human_reference": [r["ref"] for r in rows]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_e2e_eval("dev", "hub") == load_e2e_eval("dev", "official", FIXTURES)
    assert load_e2e_pairs("dev", "hub") == load_e2e_pairs("dev", "official", FIXTURES)
    path, kwargs = seen[0]
    assert path == "parquet"
    assert kwargs["data_files"] == {
        "validation": "hf://datasets/tuetschek/e2e_nlg@refs%2Fconvert%2Fparquet/default/validation/0000.parquet"}


def test_hub_missing_column(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset",
                        lambda *a, **k: datasets.Dataset.from_dict({"meaning_representation": ["name[A]"]}))
    with pytest.raises(ValueError, match="human_reference"):
        load_e2e_eval("test", "hub")


def test_hub_unreachable(monkeypatch):
    import datasets

    def boom(*a, **k):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(RuntimeError, match="tuetschek/e2e_nlg"):
        load_e2e_pairs("train", "hub")


@pytest.mark.skipif(os.environ.get("HUT_TEST_HUB") != "1" or os.environ.get("HF_HUB_OFFLINE") == "1",
                    reason="needs the Hugging Face hub (set HUT_TEST_HUB=1 online)")
def test_hub_real():  # pragma: no cover - network
    dev = load_e2e_eval("dev", "hub")
    assert len(dev) == 547
    if REAL is not None:
        assert dev == load_e2e_eval("dev", "official", REAL)


# --------------------------------------------------------------------------------------- real data
@needs_real
@pytest.mark.parametrize("split,n_mrs,n_refs", [("dev", 547, 4672), ("test", 630, 4693)])
def test_real_sources_agree(split, n_mrs, n_refs):
    official = load_e2e_eval(split, "official", REAL)
    lora = load_e2e_eval(split, "lora", REAL)
    assert len(official) == len(lora) == n_mrs
    assert [it["mr"] for it in official] == [it["mr"] for it in lora]
    assert [len(it["refs"]) for it in official] == [len(it["refs"]) for it in lora]
    assert sum(len(it["refs"]) for it in official) == n_refs
    assert len({it["mr"] for it in official}) == n_mrs  # each MR forms one consecutive block
    assert len(load_e2e_pairs(split, "local", REAL)) == n_refs
    # the official references are raw text; the LoRA ones pre-tokenised
    assert official[0]["refs"] != lora[0]["refs"]
    if split == "dev":
        assert official[0]["refs"][0].endswith("not family-friendly.")
        assert lora[0]["refs"][0].endswith("not family - friendly .")


@needs_real
def test_real_first_items():
    dev = load_e2e_eval("dev", "local", REAL)
    assert dev[0]["mr"] == "name : Alimentum | area : city centre | family friendly : no"
    assert dev[0]["refs"][0] == "There is a place in the city centre, Alimentum, that is not family-friendly."
    test = load_e2e_eval("test", "local", REAL)
    assert test[0]["mr"] == "name : Blue Spice | Type : coffee shop | area : city centre"


@needs_real
def test_real_eval_subset_samples_the_test_set():
    # the test file is sorted by restaurant name: its head is one restaurant, a seeded subset is not
    full = load_e2e_eval("test", "local", REAL)
    assert {it["mr"].split(" | ")[0] for it in full[:20]} == {"name : Blue Spice"}
    sub = load_e2e_eval("test", "local", REAL, max_items=20)
    assert len(sub) == 20 and len({it["mr"].split(" | ")[0] for it in sub}) > 5


@needs_real
def test_real_train_missing_is_clear():
    if (REAL / "e2e" / "official" / "trainset.csv").exists() or (REAL / "e2e" / "lora_format" / "train.txt").exists():
        pytest.skip("this data dir has the E2E training set")
    with pytest.raises(FileNotFoundError, match="data.train_split=dev"):
        load_e2e_pairs("train", "local", REAL)


@pytest.mark.parametrize("decoded, kept", [
    ("\nThe Vaults is a pub near Raja Indian Cuisine.", "The Vaults is a pub near Raja Indian Cuisine."),
    (" \n\n The Mill is cheap.\nname : The Mill | area : riverside ||", "The Mill is cheap."),
    (" Blue Spice is a pub. ", "Blue Spice is a pub."),
    ("\n\n", ""),
])
def test_a_generated_output_is_its_first_non_empty_line(decoded, kept):
    # beam search can open with a newline: cutting before stripping scored 7 of 20 demo MRs as empty
    from hut.tasks import first_line

    assert first_line(decoded) == kept
