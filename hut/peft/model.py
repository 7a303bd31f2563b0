"""``HutModel``: peft's tuner for HUT (what ``get_peft_model`` builds for a :class:`HutConfig`).

peft's ``BaseTuner`` does the matching (``target_modules``, ``exclude_modules``), the freezing, the
adapter bookkeeping, saving and loading; this class creates :class:`~hut.peft.layer.HutLayer` s and
gives the model's layers one :class:`~hut.methods.hut.HostReads` (one device-to-host read per
backward for all of them).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn as nn
from peft.tuners.tuners_utils import BaseTuner
from peft.utils.other import get_pattern_key

from hut.methods.hut import HostReads
from hut.peft.config import HutConfig
from hut.peft.layer import HutLayer

# model_type -> the query and value projections (the paper's placement), when target_modules is not set.
# GPT-2 is not here: its q and v are thirds of c_attn (``fused_slices``), which a user sets explicitly.
DEFAULT_TARGETS: dict[str, list[str]] = {
    "roberta": ["query", "value"],
    "bert": ["query", "value"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
}
LOW_DTYPES = (torch.bfloat16, torch.float16)
GPT2_HINT = ("target_modules=['c_attn'], fused_slices={'c_attn': ['q', 'v']}, fan_in_fan_out=True "
             "(GPT-2's q, k, v are thirds of one Conv1D)")


class HutModel(BaseTuner):
    """Creates HUT adapters on a transformers (or any torch) model; use it through ``peft.get_peft_model``."""

    prefix: str = "hut_"
    tuner_layer_cls = HutLayer
    target_module_mapping = DEFAULT_TARGETS

    def _pre_injection_hook(self, model: nn.Module, config: HutConfig, adapter_name: str) -> None:
        self.__dict__.setdefault("host_reads", HostReads())  # one per model, shared by every adapter

    def _prepare_adapter_config(self, peft_config: HutConfig, model_config: dict) -> HutConfig:
        if peft_config.target_modules is None and model_config.get("model_type") not in self.target_module_mapping:
            hint = f"; e.g. {GPT2_HINT}" if model_config.get("model_type") == "gpt2" else ""
            raise ValueError(f"HutConfig.target_modules is not set and HUT has no default for model type "
                             f"{model_config.get('model_type')!r} (defaults: {sorted(self.target_module_mapping)}): "
                             f"set target_modules{hint}")
        return super()._prepare_adapter_config(peft_config, model_config)

    def inject_adapter(self, model: nn.Module, adapter_name: str, *args, **kwargs) -> None:
        super().inject_adapter(model, adapter_name, *args, **kwargs)
        config = self.peft_config[adapter_name]
        names = [n for n, m in model.named_modules() if isinstance(m, HutLayer) and adapter_name in m.hut_options]
        unused = [p for p in (config.fused_slices or {}) if not any(get_pattern_key([p], n) == p for n in names)]
        if unused:
            raise ValueError(f"HutConfig.fused_slices pattern(s) {unused} match no adapted module "
                             f"(adapted: {sorted({n.rpartition('.')[2] for n in names})})")
        low = sorted({str(m.get_base_layer().weight.dtype).removeprefix("torch.") for n, m in model.named_modules()
                      if isinstance(m, HutLayer) and m.get_base_layer().weight.dtype in LOW_DTYPES})
        if low:
            warnings.warn(f"HUT on {'/'.join(low)}-stored weights: a frozen weight already on that grid rounds a scale "
                          "update under half a step (2^-9 in bf16) back to itself; load the model in float32 and "
                          "train under autocast (Trainer's bf16=True) for HUT's exact low-precision path "
                          "(docs/library.md)", stacklevel=2)

    def _create_and_replace(self, hut_config: HutConfig, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str, **kwargs) -> None:
        if current_key is None:
            raise ValueError("HutModel._create_and_replace needs the module's name (current_key)")
        slices = hut_config.slices_for(current_key)
        if isinstance(target, HutLayer):
            target.update_layer(adapter_name, hut_config, slices)
            return
        new = HutLayer(target, adapter_name, hut_config, slices, reads=self.host_reads)
        if adapter_name not in self.active_adapters:
            new.requires_grad_(False)  # an added adapter is not trainable until set_adapter
        self._replace_module(parent, target_name, new, target)

    def _replace_module(self, parent: nn.Module, child_name: str, new_module: nn.Module, child: nn.Module) -> None:
        """Put ``new_module`` in place of ``child``; a new HUT layer's factors go to its weight's device.

        peft's default also copies ``child.weight`` onto a module without a ``base_layer``, which fails
        when ``merge_and_unload`` puts back a module that has no weight (a classification head kept in
        ``modules_to_save``); peft's LoRA and HiRA override it likewise.
        """
        setattr(parent, child_name, new_module)
        if isinstance(new_module, HutLayer):
            weight = new_module.get_base_layer().weight
            for name in new_module.adapter_layer_names:
                for factors in getattr(new_module, name).values():
                    if weight.device.type != "meta" and all(p.device.type != "meta" for p in factors.parameters()):
                        factors.to(weight.device)
