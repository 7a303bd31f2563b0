"""The run store: everything about a run on disk, in one place.

* :mod:`~hut.runs.record`: the record's schema (``metrics.json``, INTERFACE.md), reading one, its
  fingerprint, the per-epoch dev predictions beside it;
* :mod:`~hut.runs.paths`: where a run lives (:func:`~hut.runs.paths.run_paths`);
* :mod:`~hut.runs.checkpoint`: a run's checkpoint, written and read back only by its own fingerprint;
* :mod:`~hut.runs.store`: which run a config is (:func:`~hut.runs.store.identify`: its one
  fingerprint, weights included), whether it is finished or may be reused (``RunConflict``), its lock,
  and its running / finished / failed record, each written by one function.

The trainer asks the store and nothing else about the disk; ``hut.train``, ``hut.plan`` and the
results side ask it too, never the trainer. Files are written by :mod:`hut.files`.

This package's own names are those of ``record`` and ``paths`` (what a reader of records needs);
``store`` and ``checkpoint`` are imported by name (they build on ``hut.models`` and torch).
"""
from hut.runs.paths import DEV_PREDICTIONS, RECORD, RunPaths, method_key, paths_of_record, run_paths
from hut.runs.record import (READABLE_SCHEMAS, SCHEMA_VERSION, CorruptRecord, new_record, read_epoch_predictions,
                             read_record, record_fingerprint, save_epoch_predictions, scrub_secrets, summary)

__all__ = ["DEV_PREDICTIONS", "RECORD", "RunPaths", "method_key", "paths_of_record", "run_paths", "READABLE_SCHEMAS",
           "SCHEMA_VERSION", "CorruptRecord", "new_record", "read_epoch_predictions", "read_record", "record_fingerprint",
           "save_epoch_predictions", "scrub_secrets", "summary"]
