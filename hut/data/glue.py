"""GLUE loaders: the original GLUE TSV download layout (``source="local"``) or the Hugging Face
hub (``source="hub"``), returning the same examples with the same label ids.

Every example is a plain dict::

    {"sentence1": str, "sentence2": str | None, "label": int | float}

``sentence2`` is ``None`` for the single-sentence tasks (CoLA, SST-2); ``label`` is an ``int``
class id for classification tasks and a ``float`` score (0-5) for STS-B. ``load_glue`` returns a
``list`` of such dicts (not a ``datasets.Dataset``): the GLUE sets are small, a list is what the
tokenisation cache (:mod:`hut.data.cache`) and the task code consume, and it is the same object
whatever the source.

Local layout (the original GLUE download, as in ``$HUT_DATA/glue``)::

    <data_dir>/glue/<CoLA|SST-2|MRPC|STS-B|QNLI|RTE|MNLI|QQP>/{train,dev}.tsv

(MNLI's dev split is ``dev_matched.tsv``.) The files are tab-separated and read with quoting
disabled -- the equivalent of ``csv.QUOTE_NONE``: every line is split on tabs and nothing else, since
sentences contain unbalanced quote characters that a quoting reader would swallow. CoLA has no
header (columns: source, label, original label, sentence); the other files have a header row, found
by column name (MRPC's begins with a UTF-8 byte-order mark, removed by reading as ``utf-8-sig``).
QNLI/RTE/MNLI labels are strings, mapped to the hub's ids (``entailment`` = 0, ...).

Hub: ``nyu-mll/glue``. Since ``datasets`` 4 no loading scripts run; that repository holds parquet
files on its main branch as ``<config>/<split>-00000-of-00001.parquet`` (e.g.
``cola/train-00000-of-00001.parquet``), which are loaded explicitly with the ``parquet`` builder
(``hf://datasets/nyu-mll/glue/...``) and renamed to the features above.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

HUB_REPO = "nyu-mll/glue"

SPLITS = ("train", "dev")


@dataclass(frozen=True)
class GlueTaskSpec:
    """What the loaders, the model head and the metrics need to know about one GLUE task."""

    name: str  # our task name (config ``task=``)
    local_dir: str  # directory name in the GLUE download
    hub_config: str  # config name in nyu-mll/glue
    kind: str  # classification | regression
    num_labels: int  # 1 for regression
    label_names: tuple[str, ...]  # class names in id order (empty for regression)
    metric: str  # the paper's metric for the task (the ``score`` of hut.metrics.glue): its one home
    metrics: tuple[str, ...]  # every metric reported for the task (hut.metrics.glue)
    label: str  # how tables name the task (the GLUE paper's spelling)
    # Local TSV columns: names in the header, or 0-based positions when the file has no header.
    local_header: bool
    local_s1: str | int
    local_s2: str | int | None
    local_label: str | int
    # Raw label strings of the local files -> id (classification only).
    local_label_map: tuple[tuple[str, int], ...]
    # Hub columns of the text fields.
    hub_s1: str
    hub_s2: str | None
    # File name of each split in the local layout, and split name on the hub.
    local_files: tuple[tuple[str, str], ...] = (("train", "train.tsv"), ("dev", "dev.tsv"))
    hub_splits: tuple[tuple[str, str], ...] = (("train", "train"), ("dev", "validation"))

    @property
    def is_regression(self) -> bool:
        return self.kind == "regression"

    @property
    def single_sentence(self) -> bool:
        return self.hub_s2 is None

    def local_file(self, split: str) -> str:
        return dict(self.local_files)[split]

    def hub_split(self, split: str) -> str:
        return dict(self.hub_splits)[split]


def _ids(*pairs: tuple[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(pairs)


_BINARY_DIGITS = _ids(("0", 0), ("1", 1))
_ENTAILMENT2 = _ids(("entailment", 0), ("not_entailment", 1))

GLUE_TASKS: dict[str, GlueTaskSpec] = {
    s.name: s
    for s in [
        GlueTaskSpec(
            "cola", "CoLA", "cola", "classification", 2, ("unacceptable", "acceptable"), "matthews",
            metrics=("matthews",), label="CoLA",
            local_header=False, local_s1=3, local_s2=None, local_label=1, local_label_map=_BINARY_DIGITS,
            hub_s1="sentence", hub_s2=None,
        ),
        GlueTaskSpec(
            "sst2", "SST-2", "sst2", "classification", 2, ("negative", "positive"), "accuracy",
            metrics=("accuracy",), label="SST-2",
            local_header=True, local_s1="sentence", local_s2=None, local_label="label",
            local_label_map=_BINARY_DIGITS, hub_s1="sentence", hub_s2=None,
        ),
        GlueTaskSpec(
            "mrpc", "MRPC", "mrpc", "classification", 2, ("not_equivalent", "equivalent"), "accuracy",
            metrics=("accuracy", "f1"), label="MRPC",
            local_header=True, local_s1="#1 String", local_s2="#2 String", local_label="Quality",
            local_label_map=_BINARY_DIGITS, hub_s1="sentence1", hub_s2="sentence2",
        ),
        GlueTaskSpec(
            "stsb", "STS-B", "stsb", "regression", 1, (), "pearson",
            metrics=("pearson", "spearman"), label="STS-B",
            local_header=True, local_s1="sentence1", local_s2="sentence2", local_label="score",
            local_label_map=(), hub_s1="sentence1", hub_s2="sentence2",
        ),
        GlueTaskSpec(
            "qnli", "QNLI", "qnli", "classification", 2, ("entailment", "not_entailment"), "accuracy",
            metrics=("accuracy",), label="QNLI",
            local_header=True, local_s1="question", local_s2="sentence", local_label="label",
            local_label_map=_ENTAILMENT2, hub_s1="question", hub_s2="sentence",
        ),
        GlueTaskSpec(
            "rte", "RTE", "rte", "classification", 2, ("entailment", "not_entailment"), "accuracy",
            metrics=("accuracy",), label="RTE",
            local_header=True, local_s1="sentence1", local_s2="sentence2", local_label="label",
            local_label_map=_ENTAILMENT2, hub_s1="sentence1", hub_s2="sentence2",
        ),
        GlueTaskSpec(
            "mnli", "MNLI", "mnli", "classification", 3, ("entailment", "neutral", "contradiction"),
            "accuracy",
            metrics=("accuracy",), label="MNLI",
            local_header=True, local_s1="sentence1", local_s2="sentence2", local_label="gold_label",
            local_label_map=_ids(("entailment", 0), ("neutral", 1), ("contradiction", 2)),
            hub_s1="premise", hub_s2="hypothesis",
            local_files=(("train", "train.tsv"), ("dev", "dev_matched.tsv")),
            hub_splits=(("train", "train"), ("dev", "validation_matched")),
        ),
        GlueTaskSpec(
            "qqp", "QQP", "qqp", "classification", 2, ("not_duplicate", "duplicate"), "accuracy",
            metrics=("accuracy", "f1"), label="QQP",
            local_header=True, local_s1="question1", local_s2="question2", local_label="is_duplicate",
            local_label_map=_BINARY_DIGITS, hub_s1="question1", hub_s2="question2",
        ),
    ]
}

STSB_RANGE = (0.0, 5.0)


def get_spec(task: str) -> GlueTaskSpec:
    try:
        return GLUE_TASKS[task]
    except KeyError:
        raise ValueError(f"unknown GLUE task '{task}'; known: {', '.join(GLUE_TASKS)}") from None


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` if given, else the environment variable ``HUT_DATA``; an error if neither."""
    d = data_dir if data_dir not in (None, "") else os.environ.get("HUT_DATA")
    if not d:
        raise FileNotFoundError(
            "no local data directory: set the environment variable HUT_DATA or the config key "
            "data.dir=/path/to/data (a directory holding glue/<TASK>/{train,dev}.tsv and e2e/...), "
            "or load from the Hugging Face hub with data.source=hub"
        )
    return Path(d).expanduser()


def glue_path(task: str, split: str, data_dir: str | os.PathLike | None = None) -> Path:
    spec = get_spec(task)
    _check_split(split)
    return resolve_data_dir(data_dir) / "glue" / spec.local_dir / spec.local_file(split)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown GLUE split '{split}': use one of {', '.join(SPLITS)} (dev = GLUE's validation)")


# ------------------------------------------------------------------------------------------ public
def load_glue(
    task: str,
    split: str,
    source: str = "local",
    data_dir: str | os.PathLike | None = None,
    max_samples: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Examples of one GLUE task and split as a list of ``{"sentence1", "sentence2", "label"}``.

    split: ``train`` or ``dev`` (GLUE's validation set; MNLI: matched). source: ``local`` (the GLUE
    TSV layout under ``data_dir``, default ``$HUT_DATA``) or ``hub`` (``nyu-mll/glue`` parquet files).

    ``max_samples``: a deterministic subset -- the example indices are shuffled with
    ``random.Random(seed)`` and the first ``max_samples`` kept, so the subset is a uniform random
    sample (class proportions roughly those of the full split) rather than the head of a file that
    may be sorted by label or source. The kept examples are returned in their original file order.
    ``None`` (or a value >= the split size) keeps everything.
    """
    spec = get_spec(task)
    _check_split(split)
    if source == "local":
        examples = _load_local(spec, split, data_dir)
    elif source == "hub":
        examples = _load_hub(spec, split)
    else:
        raise ValueError(f"unknown data source '{source}': use local or hub (config key data.source)")
    return subsample(examples, max_samples, seed)


def subsample(items: Sequence[Any], max_samples: int | None, seed: int = 0) -> list[Any]:
    """Seeded shuffle of the indices, take the first ``max_samples``, keep original order."""
    items = list(items)
    if max_samples is None:
        return items
    max_samples = int(max_samples)
    if max_samples < 0:
        raise ValueError(f"max_samples must be >= 0 or None, got {max_samples}")
    if max_samples >= len(items):
        return items
    idx = list(range(len(items)))
    random.Random(seed).shuffle(idx)
    return [items[i] for i in sorted(idx[:max_samples])]


# ------------------------------------------------------------------------------------------- local
def _parse_label(spec: GlueTaskSpec, raw: str) -> int | float:
    raw = raw.strip()
    if spec.is_regression:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"score {raw!r} is not a number") from None
        lo, hi = STSB_RANGE
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ValueError(f"score {raw!r} is outside [{lo:g}, {hi:g}]")
        return value
    mapping = dict(spec.local_label_map)
    if raw not in mapping:
        allowed = ", ".join(repr(k) for k in mapping)
        raise ValueError(f"label {raw!r} is not one of the task's labels ({allowed})")
    return mapping[raw]


def _missing_file_error(path: Path, spec: GlueTaskSpec) -> FileNotFoundError:
    return FileNotFoundError(
        f"GLUE {spec.local_dir} data not found: {path} does not exist. Provide the original GLUE "
        f"layout <data_dir>/glue/{spec.local_dir}/{{train,dev}}.tsv, with <data_dir> given by the "
        "environment variable HUT_DATA or the config key data.dir=..., or load the task from the "
        "Hugging Face hub with data.source=hub"
    )


def read_glue_tsv(path: str | os.PathLike, task: str) -> list[dict[str, Any]]:
    """Parse one GLUE TSV file of ``task`` (layout in the module docstring).

    Errors (``ValueError`` naming the file and 1-based line number): a required column missing from
    the header, a row with a different number of fields than the header (or than CoLA's 4), a label
    outside the task's label set (an STS-B score that is not a number in [0, 5]). A missing file is a
    ``FileNotFoundError`` saying how to provide the data.
    """
    spec = get_spec(task)
    path = Path(path)
    if not path.is_file():
        raise _missing_file_error(path, spec)
    out: list[dict[str, Any]] = []
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        lineno = raw.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}: line {lineno}: not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}); "
                         f"expected the original GLUE {spec.local_dir} TSV file") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    start = 0
    if spec.local_header:
        if not lines:
            raise ValueError(f"{path}: line 1: empty file, expected a header row")
        header = [h.strip() for h in lines[0].rstrip("\r").split("\t")]
        n_fields = len(header)
        cols = {}
        for role, name in (("sentence1", spec.local_s1), ("sentence2", spec.local_s2), ("label", spec.local_label)):
            if name is None:
                continue
            if name not in header:
                raise ValueError(
                    f"{path}: line 1: missing column {name!r} ({role}) in header {header}; "
                    f"expected the original GLUE {spec.local_dir} layout"
                )
            cols[role] = header.index(name)
        start = 1
    else:
        n_fields = 4  # CoLA: source, label, original label, sentence
        cols = {"sentence1": spec.local_s1, "label": spec.local_label}
    for lineno, line in enumerate(lines[start:], start=start + 1):
        line = line.rstrip("\r")
        if not line.strip():
            raise ValueError(f"{path}: line {lineno}: empty line in a GLUE TSV file")
        fields = line.split("\t")
        if len(fields) != n_fields:
            raise ValueError(
                f"{path}: line {lineno}: malformed row: {len(fields)} tab-separated fields, expected "
                f"{n_fields} (GLUE {spec.local_dir} layout)"
            )
        try:
            label = _parse_label(spec, fields[cols["label"]])
        except ValueError as e:
            raise ValueError(f"{path}: line {lineno}: {e}") from None
        out.append({
            "sentence1": fields[cols["sentence1"]],
            "sentence2": fields[cols["sentence2"]] if "sentence2" in cols else None,
            "label": label,
        })
    return out


def _load_local(spec: GlueTaskSpec, split: str, data_dir) -> list[dict[str, Any]]:
    try:
        path = glue_path(spec.name, split, data_dir)
    except FileNotFoundError as e:  # no data dir at all
        raise FileNotFoundError(f"cannot load GLUE {spec.local_dir} {split} from local files: {e}") from None
    return read_glue_tsv(path, spec.name)


# --------------------------------------------------------------------------------------------- hub
def hub_data_file(task: str, split: str) -> str:
    """The ``hf://`` URL of the parquet file of one task/split in ``nyu-mll/glue`` (main branch)."""
    spec = get_spec(task)
    _check_split(split)
    return f"hf://datasets/{HUB_REPO}/{spec.hub_config}/{spec.hub_split(split)}-00000-of-00001.parquet"


def _load_hub(spec: GlueTaskSpec, split: str) -> list[dict[str, Any]]:
    import datasets  # heavy: imported only for the hub source

    url = hub_data_file(spec.name, split)
    try:
        ds = datasets.load_dataset("parquet", data_files={split: url}, split=split)
    except Exception as e:  # network, auth, moved files: say what was tried
        raise RuntimeError(
            f"could not load GLUE {spec.name} {split} from the Hugging Face hub ({url}): {e}. "
            "Without hub access use local files: data.source=local with HUT_DATA or data.dir=..."
        ) from e
    return hub_rows_to_examples(spec.name, split, ds, origin=url)


def hub_rows_to_examples(task: str, split: str, rows, origin: str = HUB_REPO) -> list[dict[str, Any]]:
    """Rename hub columns (e.g. QNLI ``question``/``sentence``) to ``sentence1``/``sentence2``.

    ``rows``: a ``datasets.Dataset`` (or anything with ``column_names`` and column access by name).
    Label ids on the hub are the ones of the local mapping (``entailment`` = 0 etc.); a label outside
    the task's set (e.g. -1, the hub's unlabelled test rows) is a ``ValueError``.
    """
    spec = get_spec(task)
    needed = [c for c in (spec.hub_s1, spec.hub_s2, "label") if c is not None]
    missing = [c for c in needed if c not in rows.column_names]
    if missing:
        raise ValueError(f"{origin}: missing column(s) {missing} (has {rows.column_names})")
    s1 = rows[spec.hub_s1]
    s2 = rows[spec.hub_s2] if spec.hub_s2 else [None] * len(s1)
    labels = rows["label"]
    out = []
    for i, (a, b, y) in enumerate(zip(s1, s2, labels)):
        if spec.is_regression:
            y = float(y)
            lo, hi = STSB_RANGE
            if not math.isfinite(y) or not lo <= y <= hi:
                raise ValueError(f"{origin}: row {i}: score {y!r} is outside [{lo:g}, {hi:g}]")
        else:
            y = int(y)
            if not 0 <= y < spec.num_labels:
                raise ValueError(f"{origin}: row {i}: label {y} is not a {spec.name} class id (0..{spec.num_labels - 1})")
        out.append({"sentence1": a, "sentence2": b, "label": y})
    return out
