"""``HutConfig``: HUT's options as a peft ``PeftConfig`` (what ``save_pretrained`` writes to adapter_config.json)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft.config import PeftConfig
from peft.utils.other import get_pattern_key
from peft.utils.peft_types import PeftType

from hut.methods.hut.config import BIAS_MODES, COMPACT_FORMS, INITS
from hut.methods.targets import SLICE_NAMES

PEFT_TYPE = "HUT"


@dataclass
class HutConfig(PeftConfig):
    """HUT (arXiv 2409.13501) for peft's ``get_peft_model``: per adapted matrix W0 (d×k),
    h = (γ ⊙ mean M_B) ⊙ f(mean M_A ⊙ x) + β with f the frozen affine layer.

    Args:
        r: the rank of M_A (d×r) and M_B (r×k): d·r + r·k + 2k parameters per adapted matrix
            (the paper's Table 6: 8 on RoBERTa's query and value; Table 7: 4 on GPT-2).
        target_modules: module names (exact, or a suffix after a dot) or one regex, as in
            ``LoraConfig``. Not set: the query and value projections for the model types in
            ``hut.peft.model.DEFAULT_TARGETS``.
        exclude_modules: names or a regex of modules never adapted.
        fused_slices: for a module whose output is [q | k | v] (GPT-2's ``c_attn``): pattern ->
            the thirds to adapt, each with its own factors; the others stay frozen, e.g.
            ``{"c_attn": ["q", "v"]}`` (the paper's placement). Patterns match module names as
            peft's ``rank_pattern`` keys do. A targeted module no pattern matches is one matrix.
        init: ``ones`` (the frozen model exactly) or ``ones_plus_noise`` (entries 1 + noise with
            row/column means 1: the same function, different entries; noise std ``init_std``).
        bias_mode: how the frozen bias enters: ``scale`` (h = s ⊙ (x·W_a + b0) + β) or ``keep``
            (h = s ⊙ (x·W_a) + γ ⊙ b0 + β); see ``hut.methods.hut.layer``.
        compact: ``None`` (the paper's M_A, M_B, γ, β); ``split``: the means as parameters
            (a, b, γ, β: d + 3k per matrix, the same functions; with Adam, ``r`` rescales its eps
            through ``hut.methods.hut.apply_eps_scales``); ``folded``: a, γ, β (d + 2k).
        fan_in_fan_out: True where the target stores its weight as (fan_in, fan_out), i.e.
            transformers' ``Conv1D`` (GPT-2). Checked against each target's type.
        modules_to_save: modules trained in full and saved with the adapter (a task head).
        memory_efficient: HUT's autograd functions (False: plain autograd, same numbers; tests).
    """

    r: int = field(default=8, metadata={"help": "rank of M_A (d×r) and M_B (r×k)"})
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "module names or a regex to adapt (None: q and v by model type)"})
    exclude_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "module names or a regex never to adapt"})
    fused_slices: Optional[dict[str, list[str]]] = field(
        default=None, metadata={"help": "fused [q|k|v] modules: pattern -> slices to adapt, e.g. {'c_attn': ['q', 'v']}"})
    init: str = field(default="ones", metadata={"help": f"one of {', '.join(INITS)}"})
    init_std: float = field(default=0.02, metadata={"help": "noise std of init=ones_plus_noise"})
    bias_mode: str = field(default="scale", metadata={"help": f"one of {', '.join(BIAS_MODES)}"})
    compact: Optional[str] = field(
        default=None, metadata={"help": f"None (M_A, M_B, γ, β) or one of {', '.join(COMPACT_FORMS)}"})
    fan_in_fan_out: bool = field(default=False, metadata={"help": "True for transformers' Conv1D (GPT-2)"})
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "modules trained in full and saved with the adapter (a task head)"})
    memory_efficient: bool = field(default=True, metadata={"help": "HUT's autograd functions (False: plain autograd)"})

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType(PEFT_TYPE)  # a member since hut.peft.register ran (hut.peft imports it first)
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"HutConfig.r must be a positive integer (got {self.r!r})")
        for key, choices in (("init", INITS), ("bias_mode", BIAS_MODES)):
            if getattr(self, key) not in choices:
                raise ValueError(f"HutConfig.{key} must be one of {', '.join(choices)} (got {getattr(self, key)!r})")
        if self.compact is not None and self.compact not in COMPACT_FORMS:
            raise ValueError(f"HutConfig.compact must be None or one of {', '.join(COMPACT_FORMS)} (got {self.compact!r})")
        if isinstance(self.init_std, bool) or not isinstance(self.init_std, (int, float)) or self.init_std < 0:
            raise ValueError(f"HutConfig.init_std must be a number >= 0 (got {self.init_std!r})")
        for pattern, slices in (self.fused_slices or {}).items():
            bad = [s for s in slices if s not in SLICE_NAMES] if isinstance(slices, (list, tuple)) else [slices]
            if bad or not slices:
                raise ValueError(f"HutConfig.fused_slices[{pattern!r}] must list some of {', '.join(SLICE_NAMES)} "
                                 f"(got {slices!r})")
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, list):
            self.exclude_modules = set(self.exclude_modules)

    def slices_for(self, module_name: str) -> tuple[int, ...] | None:
        """The fused thirds to adapt in ``module_name`` (indices into q, k, v), or None: one matrix."""
        if not self.fused_slices:
            return None
        key = get_pattern_key(list(self.fused_slices), module_name)
        names = self.fused_slices.get(key)
        return None if names is None else tuple(sorted(SLICE_NAMES.index(n) for n in set(names)))
