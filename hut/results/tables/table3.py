"""Table 3: E2E NLG test results (GPT-2 medium in the paper), methods × the five metrics.

BLEU, METEOR and ROUGE-L × 100, NIST and CIDEr as computed: the E2E convention of the LoRA paper's
Table 3, whose rows the paper compares with. The cell is the record's best epoch (by BLEU).
"""
from __future__ import annotations

from hut.results.layout import layout
from hut.results.tables.base import Built, Inputs
from hut.results.tables.method_table import Column, build_method_table

# (record key, column label, scale, decimals)
E2E_METRICS = (("BLEU", "BLEU", 100.0, 1), ("NIST", "NIST", 1.0, 2), ("METEOR", "METEOR", 100.0, 1),
               ("ROUGE_L", "ROUGE-L", 100.0, 1), ("CIDEr", "CIDEr", 1.0, 2))
CAPTION = ("E2E NLG, experiment `{experiment}` ({n} finished runs): the record's best epoch. BLEU, METEOR and "
           "ROUGE-L × 100; NIST and CIDEr as computed (the E2E convention of LoRA's Table 3, whose rows the paper "
           "compares with). #Params: trainable parameters (the record's `params.adapter`).")


def build_table3(inp: Inputs) -> Built:
    lay = layout("table3", inp.experiments["table3"])
    columns = [Column(m, label, scale, digits, lambda r: r.task == "e2e", m, m) for m, label, scale, digits in E2E_METRICS]
    title = "Table 3: E2E NLG ({models})" if lay.experiment != "demo" else "Table 3 (demo): E2E NLG subset ({models})"
    return build_method_table(inp, lay, "table3", title, CAPTION, columns, avg=False)
