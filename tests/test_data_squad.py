"""SQuAD v1.1 loaders: the official JSON (fixture and the shared dev file), the hub (mocked) giving the
same examples, clear errors on malformed files, article splits."""
import json
import shutil
from pathlib import Path

import pytest

from hut.data.squad import (count_squad, hub_data_file, load_squad, parse_slice, read_squad_json,
                            select_articles)

FIXTURES = Path(__file__).parent / "fixtures"
REAL_DEV = next((p for p in (Path(d) / "squad" / "dev-v1.1.json" for d in
                             (__import__("os").environ.get("HUT_DATA") or "/nonexistent",
                              Path(__file__).resolve().parents[2] / "shared" / "data")) if p.is_file()), None)
needs_real_dev = pytest.mark.skipif(REAL_DEV is None, reason="the SQuAD dev file is not under HUT_DATA")


def test_fixture_examples():
    ex = load_squad("dev", data_dir=FIXTURES)
    assert len(ex) == 12 and len({e["title"] for e in ex}) == 4
    assert ex[0] == {"id": "dev0000", "title": "Lighthouse", "question": "When was the lighthouse on Gull Point built?",
                     "context": ex[0]["context"], "answers": {"text": ["1852", "in 1852"], "answer_start": [46, 43]}}  # counted by hand
    assert all(e["context"][s: s + len(t)] == t for e in ex for t, s in zip(*e["answers"].values()))
    assert len(load_squad("train", data_dir=FIXTURES)) == 12


def test_hub_urls():
    assert hub_data_file("train") == "hf://datasets/rajpurkar/squad/plain_text/train-00000-of-00001.parquet"
    assert hub_data_file("dev") == "hf://datasets/rajpurkar/squad/plain_text/validation-00000-of-00001.parquet"
    with pytest.raises(ValueError, match="unknown SQuAD split 'test'"):
        load_squad("test", data_dir=FIXTURES)
    with pytest.raises(ValueError, match="data.source"):
        load_squad("dev", source="ftp", data_dir=FIXTURES)


def _hub_rows(path: Path) -> dict:
    """The columns the hub's parquet file has, built from the official JSON independently of the loader."""
    cols = {k: [] for k in ("id", "title", "context", "question", "answers")}
    for art in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                cols["id"].append(qa["id"]), cols["title"].append(art["title"]), cols["context"].append(para["context"])
                cols["question"].append(qa["question"])
                cols["answers"].append({"text": [a["text"] for a in qa["answers"]],
                                        "answer_start": [a["answer_start"] for a in qa["answers"]]})
    return cols


def _fake_hub(monkeypatch, path: Path, seen: list):
    import datasets

    def fake_load_dataset(builder, data_files=None, split=None, **kw):
        seen.append((builder, data_files))
        return datasets.Dataset.from_dict(_hub_rows(path))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)


def test_hub_equals_local_fixture(monkeypatch):
    seen = []
    _fake_hub(monkeypatch, FIXTURES / "squad" / "dev-v1.1.json", seen)
    assert load_squad("dev", source="hub") == load_squad("dev", data_dir=FIXTURES)
    assert seen == [("parquet", {"dev": hub_data_file("dev")})]


@needs_real_dev
def test_shared_dev_file_counts_and_hub_equality(monkeypatch):
    assert count_squad(REAL_DEV) == {"articles": 48, "paragraphs": 2067, "questions": 10570, "answers": 34726}
    local = load_squad("dev", data_dir=REAL_DEV.parent.parent)
    assert len(local) == 10570 and len({e["title"] for e in local}) == 48
    assert len({e["context"] for e in local}) == 2067
    assert sum(len(e["answers"]["text"]) for e in local) == 34726
    _fake_hub(monkeypatch, REAL_DEV, [])
    assert load_squad("dev", source="hub") == local


def _broken(tmp_path: Path, edit) -> Path:
    d = tmp_path / "squad"
    d.mkdir()
    doc = json.loads((FIXTURES / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))
    edit(doc)
    (d / "dev-v1.1.json").write_text(json.dumps(doc), encoding="utf-8")
    return d / "dev-v1.1.json"


@pytest.mark.parametrize("edit,needle", [
    (lambda d: d["data"][1]["paragraphs"][0].pop("context"), "article 1 ('River Ombre'), paragraph 0: missing 'context'"),
    (lambda d: d["data"][0]["paragraphs"][1]["qas"][0].update(answers=[]), "question dev0003"),
    (lambda d: d["data"][2]["paragraphs"][0]["qas"][1]["answers"][0].update(answer_start="7"),
     "question dev0008 (article 2 ('Café Müller'), paragraph 0), answer 0: 'answer_start' is str"),
    (lambda d: d["data"][3]["paragraphs"][0]["qas"][0].update(id="dev0000"), "question dev0000"),
    (lambda d: d["data"][3].pop("title"), "article 3: missing 'title'"),
    (lambda d: d.pop("data"), "missing 'data'"),
])
def test_malformed_json_names_file_and_place(tmp_path, edit, needle):
    p = _broken(tmp_path, edit)
    with pytest.raises(ValueError) as e:
        read_squad_json(p)
    msg = str(e.value)
    assert str(p) in msg and needle in msg and "\n" not in msg


def test_not_json_and_missing_file(tmp_path):
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "dev-v1.1.json").write_text('{"data": [', encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_squad("dev", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        load_squad("train", data_dir=tmp_path)
    assert "HUT_DATA" in str(e.value) and "data.source=hub" in str(e.value)


def test_article_splits():
    ex = load_squad("dev", data_dir=FIXTURES)
    a, b = select_articles(ex, "0:3", 0), select_articles(ex, "3:", 0)
    assert {e["title"] for e in a}.isdisjoint({e["title"] for e in b}) and len(a) + len(b) == len(ex)
    assert [e["id"] for e in a] == sorted(e["id"] for e in a)
    assert {e["title"] for e in select_articles(ex, "0:2", None)} == {"Lighthouse", "River Ombre"}  # file order
    orders = {tuple(sorted({e["title"] for e in select_articles(ex, "0:2", s)})) for s in range(8)}
    assert len(orders) > 1  # the seed matters
    assert parse_slice(None, 5, "k") == range(5)
    for bad in ("3", "a:b", "4:4"):
        with pytest.raises(ValueError, match="k="):
            parse_slice(bad, 4, "k")
