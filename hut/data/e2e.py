"""E2E NLG Challenge data from three sources that give the same examples.

Sources (``source=``):

* ``official`` -- the official CSV release, ``<data_dir>/e2e/official/{trainset,devset,testset_w_refs}.csv``
  with columns ``mr,ref``: one row per human reference, consecutive rows share an MR; MRs look like
  ``name[Alimentum], area[city centre], familyFriendly[no]``. References are raw text.
* ``lora`` -- the line format of the LoRA reference implementation,
  ``<data_dir>/e2e/lora_format/{train,valid,test}.txt``, one ``MR||reference`` per line, MRs like
  ``name : Alimentum | area : city centre | family friendly : no`` with renamed keys (``Type`` =
  eatType, ``price`` = priceRange, ``family friendly`` = familyFriendly). **Its references (and MR
  values) are pre-tokenised** (``family - friendly , near The Sorrento .``, ``£ 20 - 25``), so BLEU
  & co. computed against them differ from scores against the official CSV's raw references; report
  official-CSV scores when comparing with published numbers.
* ``hub`` -- the Hugging Face hub dataset ``tuetschek/e2e_nlg`` (the original E2E release; ``GEM/e2e_nlg``
  is the *cleaned* version, a different dataset). Its main branch still holds a loading script, which
  ``datasets`` >= 4 no longer runs, so the parquet export of its ``refs/convert/parquet`` branch is
  loaded explicitly: ``default/{train,validation,test}/0000.parquet``, columns
  ``meaning_representation``, ``human_reference``, rows in the official CSV order.
* ``local`` -- the official CSV if present under ``data_dir``, else the LoRA format (what the config's
  ``data.source=local`` means for E2E).

Every MR is parsed into an ordered list of ``(canonical_key, value)`` with canonical keys
``name, eatType, food, priceRange, customer rating, area, familyFriendly, near`` and values in the
official spelling (LoRA values are de-tokenised: ``£ 20 - 25`` -> ``£20-25``), and rendered by
:func:`render_mr` into one prompt string, so the model sees the same prompt whatever the source.

splits: ``train``, ``dev``, ``test`` (test = ``testset_w_refs.csv``, the 630 test MRs with references).
``data_dir`` defaults to the environment variable ``HUT_DATA``.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any, Iterator

from hut.data.glue import subsample

CANONICAL_KEYS = ("name", "eatType", "food", "priceRange", "customer rating", "area", "familyFriendly", "near")

# LoRA-format key -> canonical key (canonical spellings are accepted too).
LORA_KEYS = {
    "name": "name",
    "Type": "eatType",
    "food": "food",
    "price": "priceRange",
    "customer rating": "customer rating",
    "area": "area",
    "family friendly": "familyFriendly",
    "near": "near",
}
# Canonical key -> the name shown to the model in the rendered prompt (the LoRA reference
# implementation's names, i.e. the prompt wording the paper's GPT-2 runs were trained on).
DISPLAY_KEYS = {canonical: lora for lora, canonical in LORA_KEYS.items()}

SPLITS = ("train", "dev", "test")
OFFICIAL_FILES = {"train": "trainset.csv", "dev": "devset.csv", "test": "testset_w_refs.csv"}
LORA_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
HUB_REPO = "tuetschek/e2e_nlg"
HUB_REVISION = "refs%2Fconvert%2Fparquet"  # the parquet export branch (URL-encoded in hf:// paths)
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
SOURCES = ("local", "official", "lora", "hub")


# ---------------------------------------------------------------------------------------------- MRs
_OFFICIAL_ITEM = re.compile(r"\s*([^\[\],]+?)\s*\[([^\[\]]*)\]\s*(,|$)")


def _detokenize_value(value: str) -> str:
    """LoRA-format values are tokenised; restore the official spelling (``£ 20 - 25`` -> ``£20-25``)."""
    value = " ".join(value.split())
    value = re.sub(r"£ (?=\d)", "£", value)
    value = re.sub(r"(?<=\d) - (?=[£\d])", "-", value)
    return value


def _canonical_key(key: str) -> str | None:
    key = " ".join(key.split())
    if key in CANONICAL_KEYS:
        return key
    return LORA_KEYS.get(key)


def parse_mr(mr: str) -> list[tuple[str, str]]:
    """Parse an MR in the official (``key[value], ...``) or LoRA (``key : value | ...``) syntax.

    Returns the ordered ``(canonical_key, value)`` pairs; ``ValueError`` for an empty or unparseable
    MR, an unknown attribute, an empty value or a repeated attribute.
    """
    text = mr.strip()
    if not text:
        raise ValueError("empty MR")
    pairs: list[tuple[str, str]] = []
    if "[" in text:
        pos = 0
        while pos < len(text):
            m = _OFFICIAL_ITEM.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"unparseable MR {mr!r} at character {pos}: expected key[value]")
            pairs.append((m.group(1), m.group(2).strip()))
            pos = m.end()
            if m.group(3) == "" and pos < len(text):
                raise ValueError(f"unparseable MR {mr!r}: missing comma at character {pos}")
    else:
        for part in text.split("|"):
            key, sep, value = part.partition(":")
            if not sep:
                raise ValueError(f"unparseable MR {mr!r}: item {part.strip()!r} is not 'key : value'")
            pairs.append((key.strip(), _detokenize_value(value.strip())))
    out: list[tuple[str, str]] = []
    seen = set()
    for key, value in pairs:
        canonical = _canonical_key(key)
        if canonical is None:
            raise ValueError(f"unparseable MR {mr!r}: unknown attribute {key!r}")
        if not value:
            raise ValueError(f"unparseable MR {mr!r}: empty value for {key!r}")
        if canonical in seen:
            raise ValueError(f"unparseable MR {mr!r}: attribute {key!r} given twice")
        seen.add(canonical)
        out.append((canonical, value))
    return out


def render_mr(pairs: list[tuple[str, str]] | tuple) -> str:
    """The canonical prompt text of an MR: ``name : Alimentum | Type : pub | price : £20-25 | ...``.

    Attribute order is the MR's own; keys are shown with the LoRA reference implementation's names
    (``Type``, ``price``, ``family friendly``), values in the official spelling. Every source
    renders the same MR to the same string.
    """
    items = []
    for key, value in pairs:
        if key not in DISPLAY_KEYS:
            raise ValueError(f"unknown E2E attribute {key!r}; canonical keys: {', '.join(CANONICAL_KEYS)}")
        items.append(f"{DISPLAY_KEYS[key]} : {value}")
    return " | ".join(items)


def canonical_mr(mr: str) -> str:
    """``render_mr(parse_mr(mr))``."""
    return render_mr(parse_mr(mr))


# --------------------------------------------------------------------------------------- raw rows
def _resolve_data_dir(data_dir) -> Path:
    d = data_dir if data_dir not in (None, "") else os.environ.get("HUT_DATA")
    if not d:
        raise FileNotFoundError(
            "no local data directory for E2E: set the environment variable HUT_DATA or the config key "
            "data.dir=/path/to/data (holding e2e/official/*.csv or e2e/lora_format/*.txt), "
            "or load from the Hugging Face hub with data.source=hub"
        )
    return Path(d).expanduser()


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown E2E split '{split}': use one of {', '.join(SPLITS)}")


def e2e_path(split: str, fmt: str, data_dir=None) -> Path:
    """Path of a split's file in the ``official`` or ``lora`` layout."""
    _check_split(split)
    root = _resolve_data_dir(data_dir) / "e2e"
    if fmt == "official":
        return root / "official" / OFFICIAL_FILES[split]
    if fmt == "lora":
        return root / "lora_format" / LORA_FILES[split]
    raise ValueError(f"unknown E2E file format '{fmt}': official or lora")


def _missing(split: str, paths: list[Path]) -> FileNotFoundError:
    looked = " or ".join(str(p) for p in paths)
    msg = f"E2E {split} data not found: looked for {looked}."
    if split == "train":
        msg += (
            " The E2E training set is not part of the shared data on these machines. Provide "
            "e2e/official/trainset.csv (or e2e/lora_format/train.txt) under data.dir / HUT_DATA, load it "
            "from the Hugging Face hub with data.source=hub, or train on the dev split with "
            "data.train_split=dev (then evaluate on the test split)."
        )
    else:
        msg += (
            " Provide the official CSV (e2e/official/) or the LoRA line format (e2e/lora_format/) under "
            "the directory given by HUT_DATA or data.dir=..., or use data.source=hub."
        )
    return FileNotFoundError(msg)


def _read_official(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, MR, reference) per row of an official ``mr,ref`` CSV."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: line 1: empty file, expected the header 'mr,ref'") from None
        lower = [h.strip().lower() for h in header]
        for col in ("mr", "ref"):
            if col not in lower:
                raise ValueError(f"{path}: line 1: missing column {col!r} in header {header} (expected 'mr,ref')")
        i_mr, i_ref = lower.index("mr"), lower.index("ref")
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}: line {start}: malformed row: {len(row)} fields, expected {len(header)} (mr,ref)"
                )
            yield start, row[i_mr], row[i_ref]


def _read_lora(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, MR, reference) per line of a LoRA-format ``MR||reference`` file."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            mr, sep, ref = line.partition("||")
            if not sep:
                raise ValueError(f"{path}: line {lineno}: missing '||' between MR and reference")
            yield lineno, mr, ref


def _hub_url(split: str) -> str:
    return f"hf://datasets/{HUB_REPO}@{HUB_REVISION}/default/{HUB_SPLITS[split]}/0000.parquet"


def _read_hub(split: str) -> tuple[str, Iterator[tuple[int, str, str]]]:
    import datasets  # heavy: imported only for the hub source

    url = _hub_url(split)
    try:
        ds = datasets.load_dataset("parquet", data_files={HUB_SPLITS[split]: url}, split=HUB_SPLITS[split])
    except Exception as e:
        raise RuntimeError(
            f"could not load E2E {split} from the Hugging Face hub ({url}): {e}. Without hub access use "
            "local files: data.source=local with HUT_DATA or data.dir=..."
        ) from e
    for col in ("meaning_representation", "human_reference"):
        if col not in ds.column_names:
            raise ValueError(f"{url}: missing column {col!r} (has {ds.column_names})")
    rows = zip(ds["meaning_representation"], ds["human_reference"])
    return url, ((i, mr, ref) for i, (mr, ref) in enumerate(rows))


def _rows(split: str, source: str, data_dir) -> Iterator[tuple[str, str, str]]:
    """(location, canonical MR, reference) for every row, validated; location is 'file: line N'."""
    _check_split(split)
    if source not in SOURCES:
        raise ValueError(f"unknown E2E source '{source}': use one of {', '.join(SOURCES)}")
    if source == "hub":
        origin, raw = _read_hub(split)
        where = "row"
    else:
        if source == "local":
            candidates = [e2e_path(split, "official", data_dir), e2e_path(split, "lora", data_dir)]
        else:
            candidates = [e2e_path(split, source, data_dir)]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise _missing(split, candidates)
        origin = str(path)
        raw = _read_official(path) if path.parent.name == "official" else _read_lora(path)
        where = "line"
    for n, mr, ref in raw:
        loc = f"{origin}: {where} {n}"
        if not (mr or "").strip():
            raise ValueError(f"{loc}: empty MR")
        try:
            prompt = canonical_mr(mr)
        except ValueError as e:
            raise ValueError(f"{loc}: {e}") from None
        ref = (ref or "").strip()
        if not ref:
            raise ValueError(f"{loc}: empty reference")
        yield loc, prompt, ref


# ------------------------------------------------------------------------------------------ public
def load_e2e_pairs(
    split: str,
    source: str = "local",
    data_dir: str | os.PathLike | None = None,
    max_items: int | None = None,
    seed: int = 0,
) -> list[dict[str, str]]:
    """Training examples: one ``{"mr": prompt, "ref": reference}`` per (MR, reference) row.

    ``mr`` is the canonical prompt (:func:`render_mr`). ``max_items``: a deterministic subset of the
    rows, drawn as GLUE draws its subsets (:func:`hut.data.glue.subsample`: indices shuffled with
    ``random.Random(seed)``, the first ``max_items`` kept, returned in file order), so a small
    subset still covers many MRs.
    """
    pairs = [{"mr": mr, "ref": ref} for _, mr, ref in _rows(split, source, data_dir)]
    return subsample(pairs, max_items, seed)


def load_e2e_eval(
    split: str,
    source: str = "local",
    data_dir: str | os.PathLike | None = None,
    max_items: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Evaluation items: one ``{"mr": prompt, "refs": [reference, ...]}`` per MR, in file order.

    Consecutive rows with the same MR form one item, as in the official ``measure_scores.py``
    (dev: 547 MRs, test: 630). ``max_items``: a seeded random subset of the MRs, drawn as for
    training rows and GLUE examples (:func:`hut.data.glue.subsample`), returned in file order.
    Not the first ``max_items`` MRs: the official files are sorted by restaurant name (the test
    set's first 26 MRs are all ``Blue Spice`` ones), so the head of a file is not a sample of it.
    """
    items: list[dict[str, Any]] = []
    for _, mr, ref in _rows(split, source, data_dir):
        if items and items[-1]["mr"] == mr:
            items[-1]["refs"].append(ref)
        else:
            items.append({"mr": mr, "refs": [ref]})
    return subsample(items, max_items, seed)

