"""Table 2: FLOPs. The paper's six rows beside our analytic and measured counts, then every method.

* (a) The paper's rows (Table 2 prints GFLOPs for PAdapter 3.0M/0.8M, HAdapter 6.0M/0.8M, LoRA and
  HUT, all on RoBERTa-large): beside each, the paper's own count where it defines one (Eq. 10-11:
  forming the updated weights once per step, HUT 4dk + rd + rk, LoRA (2r+1)dk per matrix; the paper
  gives no formula for the adapters), and what a training step of that row's config (``configs/row/
  table1/``) measures above the frozen floor (``hut.flops``, FlopCounterMode).
* (b) Every registered method with its ``configs/method/<name>.yaml`` defaults: measured FLOPs of a
  training step and of inference, and the extra over the frozen floor.
"""
from __future__ import annotations

from hut import flops
from hut.results import paper as paper_figures
from hut.results.labels import method_label, model_label
from hut.results.layout import layout
from hut.config import load_group
from hut.methods import METHODS
from hut.results.render.table import NA, Table, signed
from hut.results.tables.base import Built, Inputs

FIELDS = ["section", "method", "label", "params_printed", "paper_gflops", "analytic_gflops", "formula",
          "adapter_params", "train_flops", "train_extra_flops", "infer_flops", "infer_extra_flops",
          "train_elementwise", "infer_elementwise", "train_extra_elementwise", "infer_extra_elementwise",
          "mergeable", "measured_on", "batch", "seq_len"]


def build_table2(inp: Inputs) -> Built:
    model = inp.flops_model
    model_cfg = load_group("model", model)
    s = flops.PAPER_SETTING
    n_mat = int(s["layers"]) * len(s["targets"])
    csv_rows: list[dict] = []
    notes: list[str] = []
    summary: list[str] = []
    floor = flops.measure(model_cfg, None) if inp.measure_flops else None

    # (a) the paper's rows
    rows_t1 = {(r.paper_row or {}).get("method"): r for r in layout("table1", "table1").rows}
    by_size = {((r.paper_row or {}).get("method"), paper_figures.millions((r.paper_row or {}).get("params"))): r
               for r in layout("table1", "table1").rows}
    a_head = ["Method (paper's row)", "#Params", "GFLOPs, paper", "GFLOPs, analytic (Eq. 10–11)", "formula",
              "Train step extra GFLOPs, measured", "extra elementwise MFLOPs"]
    a_body = []
    for pr in inp.paper_rows("table2"):
        row = by_size.get((pr["method"], paper_figures.millions(pr["params"]))) or rows_t1.get(pr["method"])
        label = paper_figures.paper_label(pr)
        formula = flops.ANALYTIC.get(pr["method"], (None, None))[0]
        analytic = (flops.analytic_flops(pr["method"], int(s["d"]), int(s["k"]), int(s["r"]), n_mat) / 1e9
                    if formula else None)
        measured = flops.measure(model_cfg, row.method_cfg) if (inp.measure_flops and row is not None) else None
        if measured is not None and measured.error:
            notes.append(f"{label}: could not be measured ({measured.error}).")
        ok = measured is not None and not measured.error and floor is not None
        dt = (measured.train - floor.train) if ok else None
        a_body.append([(label, method_label(pr["method"], label, tex=True)), str(pr["params"]), f"{pr['gflops']:.2f}",
                       NA if analytic is None else f"{analytic:.2f}", f"`{formula}`" if formula else "not given",
                       NA if dt is None else f"{dt.matmul / 1e9:.2f}", NA if dt is None else f"{dt.elementwise / 1e6:.1f}"])
        csv_rows.append({"section": "paper_rows", "method": pr["method"], "label": label,
                         "params_printed": str(pr["params"]), "paper_gflops": f"{pr['gflops']:.2f}",
                         "analytic_gflops": "" if analytic is None else f"{analytic:.6f}", "formula": formula or "",
                         "train_extra_flops": "" if dt is None else str(dt.matmul),
                         "train_extra_elementwise": "" if dt is None else str(dt.elementwise),
                         "batch": str(flops.BATCH), "seq_len": str(flops.SEQ_LEN)})
    part_a = Table("table2a", "", [], a_head, [(None, a_body)], [], [], [], md_align="lrrrlrr")

    # (b) every registered method, measured
    b_head = ["Method", "Adapter params", "Train step GFLOPs", "extra", "Inference GFLOPs", "extra",
              "Extra elementwise MFLOPs (train / infer)", "Mergeable", "Measured on"]
    b_body = []
    if inp.measure_flops:
        ms = flops.measure_all(model, METHODS.names())
        fl = ms[0]
        for m in ms:
            lab = ("frozen model (floor)", "frozen model (floor)") if m.method == "frozen" else (
                method_label(m.method), method_label(m.method, tex=True))
            if m.error:
                b_body.append([lab] + [NA] * 6 + ["", "failed"])
                notes.append(f"{lab[0]}: could not be measured ({m.error}).")
                summary.append(f"table2: {m.method}: FLOPs not measured ({m.error})")
                continue
            is_floor = m.method == "frozen"
            dt, di = m.train - fl.train, m.infer - fl.infer
            b_body.append([
                lab, "0" if is_floor else f"{m.params.get('adapter', 0):,}",
                f"{m.train.matmul / 1e9:.2f}", NA if is_floor else signed(dt.matmul / 1e9, 2),
                f"{m.infer.matmul / 1e9:.2f}", NA if is_floor else signed(di.matmul / 1e9, 2),
                NA if is_floor else f"{signed(dt.elementwise / 1e6, 1)} / {signed(di.elementwise / 1e6, 1)}",
                NA if m.mergeable is None else ("yes" if m.mergeable else "no"), m.measured_on])
            csv_rows.append({"section": "measured", "method": m.method,
                             "adapter_params": str(m.params.get("adapter", "")),
                             "train_flops": str(m.train.matmul), "train_extra_flops": str(dt.matmul),
                             "infer_flops": str(m.infer.matmul), "infer_extra_flops": str(di.matmul),
                             "train_elementwise": str(m.train.elementwise), "infer_elementwise": str(m.infer.elementwise),
                             "train_extra_elementwise": str(dt.elementwise), "infer_extra_elementwise": str(di.elementwise),
                             "mergeable": "" if m.mergeable is None else str(m.mergeable).lower(),
                             "measured_on": m.measured_on, "batch": str(flops.BATCH), "seq_len": str(flops.SEQ_LEN)})
    else:
        notes.append("Measured FLOPs skipped (`flops=false`).")
    part_b = Table("table2b", "", [], b_head, [(None, b_body)], [], [], [], md_align="lrrrrrrll")

    mname = model_label(model)
    caption = [
        f"Measured on {mname} built from its config (`hut.models.load_model(..., pretrained=False)`, no download), on "
        f"the meta device where the method's code allows it (else on the CPU, see 'Measured on'), input batch "
        f"{flops.BATCH} × {flops.SEQ_LEN} tokens, eval mode (dropout off), eager attention, 2-label classification "
        f"head. GFLOPs: matmul FLOPs counted by `torch.utils.flop_counter.FlopCounterMode` (2 per multiply-add). "
        f"Train step = forward + backward of `logits.sum()` (no optimiser step); inference = one forward with the "
        f"method unmerged (a mergeable method costs exactly the frozen model's forward once merged). extra = minus "
        f"the frozen model with only its classification head training (the floor). Elementwise: 1 FLOP per output "
        f"element of pointwise ATen ops (FlopCounterMode counts none), in MFLOPs.",
    ]
    para_a = (f"(a) **The paper's rows** ({paper_figures.CITATION}, Table 2) beside the paper's own count, "
              "where it defines one "
              f"(Eq. 10–11: the FLOPs to form the updated weights once per step, q and v in all {s['layers']} layers "
              f"of RoBERTa-large, d = k = {s['d']}, r = {s['r']}), and what a training step of the same row's config "
              f"(configs/row/table1/) measures above the floor. The paper does not say how it counts the adapters' "
              f"FLOPs.")
    para_b = "(b) **Measured**: every registered method with its `configs/method/<name>.yaml` defaults."
    notes = ["The paper's and the measured counts are different quantities: Eq. 10–11 count forming ΔW or W_new "
             "once per step; a measured step counts a whole forward/backward pass, in which the backward through "
             "the frozen network (needed by every method that adapts early layers) dominates."] + notes
    title = f"Table 2: FLOPs of HUT, LoRA and every registered method ({mname})"
    parts = [(para_a, part_a), (para_b, part_b)]
    return Built(Table("table2", title, caption, [], [], notes, FIELDS, csv_rows, parts=parts),
                 summary=tuple(summary))
