"""Exact parameter counts of a method on a model, without downloading anything.

    python -m hut.params model=roberta_large method=hut [method.r=8] [method.targets=[q,v]] [format=json]

The model is built from its config's ``arch`` with random weights on the ``meta`` device (no memory,
no download); a method that cannot be applied on ``meta`` is retried on the CPU. Encoder families
(bert) get a sequence-classification head with 2 labels, decoders (gpt2, llama) a causal-LM head.
Prints ``adapter`` (trainable minus the task head), ``trainable`` and ``total`` counts, as
``hut.methods.count_parameters`` defines them; ``format=json`` prints one JSON line.

Arguments are the run's Hydra overrides, composed as ``python -m hut.train`` composes them:
``model=`` and ``method=`` pick ``configs/model/<M>.yaml`` and ``configs/method/<X>.yaml`` (or
``row=table1/padapter_0.8m`` a paper row), ``method.<key>=<value>`` overrides single keys
(``method.targets=[q,v]``); ``format=`` is this command's own.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Sequence

from omegaconf import OmegaConf

from hut.build import build
from hut.config import compose, composition_error, split_own
from hut.runtime.console import quiet_libraries
from hut.methods import build_method

USAGE = ("usage: python -m hut.params model=M method=X [method.r=R] [method.targets=[q,v]] [row=table1/hut] "
         "[format=text|json]")


def resolve_configs(overrides: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(model cfg, method cfg, format): the run config composed as ``hut.train`` composes it.

    ``model=`` and ``method=`` (or a paper ``row=``) are required; any other run override
    (``method.r=4``) applies; ``format=`` is this command's own.
    """
    own, ovs = split_own(overrides, ("format",), "hut.params", USAGE)
    fmt = own.get("format", "text")
    keys = {o.split("=", 1)[0] for o in ovs}
    for need in ("model", "method"):
        if need not in keys and "row" not in keys:
            raise SystemExit(f"missing {need}=...\n{USAGE}")
    if fmt not in ("text", "json"):
        raise SystemExit(f"format must be text or json (got {fmt!r})")
    try:
        cfg = OmegaConf.to_container(compose(ovs), resolve=True)
    except Exception as e:  # noqa: BLE001 - Hydra's composition errors: one line naming the known options
        raise SystemExit(f"hut.params: {composition_error(e, ovs)}\n{USAGE}") from None
    return cfg["model"], cfg["method"], fmt


def count(model_cfg: dict[str, Any], method_cfg: dict[str, Any]) -> dict[str, Any]:
    """Build the real-size model from config (meta, else CPU), apply the method, count."""
    method = build_method(method_cfg)  # config errors surface here, once

    def counted(device: str) -> dict[str, int]:
        return build(model_cfg, method_cfg, pretrained=False, with_tokenizer=False, device=device).params

    try:
        counts, device = counted("meta"), "meta"
    except Exception:  # noqa: BLE001  some methods need real tensors; a real error recurs on the CPU
        counts, device = counted("cpu"), "cpu"
    return {"model": model_cfg.get("name"), "method": method.name, **counts, "built_on": device,
            "method_cfg": {k: v for k, v in method_cfg.items() if k != "name"}}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    quiet_libraries()
    model_cfg, method_cfg, fmt = resolve_configs(argv)
    try:
        res = count(model_cfg, method_cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if fmt == "json":
        print(json.dumps(res, sort_keys=True))
    else:
        print(f"model={res['model']} method={res['method']} {json.dumps(res['method_cfg'], sort_keys=True)}")
        for key in ("adapter", "trainable", "total"):
            print(f"{key:>10}: {res[key]:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
