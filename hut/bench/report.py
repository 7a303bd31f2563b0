"""The benchmark's results as JSON and Markdown, the goals checked against the intervals.

Goals (for each model, from the ratios' 95% intervals, never from a single median):

* HUT's training step no slower than LoRA's: the interval of HUT/LoRA lies at or below 1.00;
* HUT's extra activation memory (over the floor) at most LoRA's;
* merged HUT inference equal to the base model: the interval of merged/base contains 1.00 (or lies below).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from hut.files.atomic import write_atomic
from hut.results.render.formats import markdown as md_table


def ratio_text(d: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not d:
        return "–"
    lo, hi = d["ci95"]
    return f"{d['ratio']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def goals(model: str, res: Mapping[str, Any]) -> list[dict[str, Any]]:
    by = {r["method"]: r for r in res["rows"]}
    hut, lora = by.get("hut"), by.get("lora")
    out = []
    r = hut["ratio_to_lora_ci"] if hut else None
    out.append({"model": model, "goal": "hut train step <= lora (95% interval at or below 1.00)",
                "value": r, "met": None if not r else r["ci95"][1] <= 1.0})
    if hut and lora and hut.get("extra_act_mb") is not None and lora.get("extra_act_mb") is not None:
        d = hut["extra_act_mb"] - lora["extra_act_mb"]
        out.append({"model": model, "goal": "hut extra activation memory <= lora's", "value": d, "met": d <= 1e-6,
                    "detail": f"hut {hut['extra_act_mb']:+.2f} MiB, lora {lora['extra_act_mb']:+.2f} MiB over the floor"})
    inf = res.get("inference") or {}
    m = inf.get("merged_over_base_ci")
    out.append({"model": model, "goal": "merged hut inference = base (interval contains 1.00 or lies below)",
                "value": m, "met": None if not m else m["ci95"][0] <= 1.0})
    for g in out:
        v = g["value"]
        shown = ratio_text(v) if isinstance(v, Mapping) else ("–" if v is None else f"{v:+.2f} MiB")
        g["line"] = (f"GOAL [{model}] {g['goal']}: {shown} "
                     f"{'not measured' if g['met'] is None else ('MET' if g['met'] else 'NOT MET')}"
                     + (f" ({g['detail']})" if g.get("detail") else ""))
    return out


def markdown(result: Mapping[str, Any]) -> str:
    st = result["setup"]
    lines = [f"# hut.bench: preset={st['preset']}, device={st['device']}, dtype={st['dtype']}", "",
             f"Command: `{st['command']}`", "",
             f"torch {st['versions'].get('torch')}, transformers {st['versions'].get('transformers')}, peft "
             f"{st['versions'].get('peft')}; {st['threads']} thread(s); {st['rounds']} timed rounds after "
             f"{st['warmup']} warm-up, candidates interleaved, x{st['repeats']} repeats; dropout p=0 everywhere. "
             + ("Times: thread CPU time (this process's thread only; other load on the machine does not count), "
                "wall time labelled as such." if st["device"] == "cpu" else "Times: CUDA events."),
             "Ratios: geometric mean of per-round ratios [bootstrap 95% interval].", ""]
    for name, res in result["models"].items():
        ms = res["setup"]
        lines += [f"## {name}: {ms['layers']} layers, batch {ms['batch']} x {ms['seq']} tokens, {ms['dtype']}", ""]
        lines.append(md_table(
            ["method", "trainable", "step (s, median)", "vs floor", "vs LoRA", "vs LoRA (wall)",
             "extra act vs floor (MiB)", "peak mem (MiB)"],
            [[r["method"], f"{r['trainable_params']:,}", f"{r['train_step_s']:.4f}", ratio_text(r["ratio_to_floor_ci"]),
              ratio_text(r["ratio_to_lora_ci"]), ratio_text(r["ratio_to_lora_wall_ci"]),
              "–" if r["extra_act_mb"] is None else f"{r['extra_act_mb']:.2f}", f"{r['peak_mem_mb']:.1f}"]
             for r in res["rows"]]).rstrip("\n"))
        inf = res["inference"]
        lines.append("")
        if inf.get("error"):
            lines.append(f"Inference: failed ({inf['error']}).")
        else:
            lines.append(f"Inference (forward, eval, {inf['rounds']} rounds): HUT merged/base "
                         f"**{ratio_text(inf['merged_over_base_ci'])}**, HUT unmerged/base {ratio_text(inf['hut_unmerged_over_base_ci'])}, "
                         f"LoRA unmerged/base {ratio_text(inf['lora_unmerged_over_base_ci'])}; merged vs unmerged max |diff| "
                         f"{inf['merged_max_abs_diff']:.2e}."
                         + (f" A/A control, a copy of the base in its own memory / base: "
                            f"{ratio_text(inf['base_copy_over_base_ci'])}." if inf.get("base_copy_over_base_ci") else ""))
        rep = res.get("repeatable")
        if rep:
            lines.append(f"Repeatability: {rep['agree']} of {rep['pairs']} ratios' intervals overlap between the two "
                         f"repeats" + (f" (not: {', '.join(rep['disagree'])})" if rep["disagree"] else "") + ".")
        if res["failed"]:
            lines.append("Failed: " + "; ".join(f"{k}: {v}" for k, v in res["failed"].items()))
        lines.append("")
    lines += ["## Goals", ""] + [f"- `{g['line']}`" for g in result["goals"]] + [""]
    return "\n".join(lines) + "\n"


def _clean(o: Any) -> Any:
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, Mapping):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write(result: Mapping[str, Any], out: Path, stem: str, md: str | None = None) -> tuple[Path, Path]:
    """<out>/<stem>.json (non-finite numbers as null) and <stem>.md (``md``, else this bench's markdown)."""
    j, m = Path(out) / f"{stem}.json", Path(out) / f"{stem}.md"
    write_atomic(j, json.dumps(_clean(result), indent=2, default=str, allow_nan=False) + "\n")
    write_atomic(m, markdown(result) if md is None else md)
    return j, m
