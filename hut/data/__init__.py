"""Data loaders: GLUE (:mod:`hut.data.glue`), E2E NLG (:mod:`hut.data.e2e`) and the tokenisation
cache (:mod:`hut.data.cache`). Local files live under ``data.dir`` (default: ``$HUT_DATA``)."""
from hut.data.cache import tokenize_glue
from hut.data.e2e import load_e2e_eval, load_e2e_pairs, parse_mr, render_mr
from hut.data.glue import GLUE_TASKS, GlueTaskSpec, load_glue

__all__ = [
    "GLUE_TASKS",
    "GlueTaskSpec",
    "load_glue",
    "tokenize_glue",
    "load_e2e_pairs",
    "load_e2e_eval",
    "parse_mr",
    "render_mr",
]
