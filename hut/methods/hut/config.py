"""The options of ``hut`` and ``hut_compact`` (``configs/method/hut.yaml``, ``hut_compact.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass

from hut.methods.config import MethodConfig, option

INITS = ("ones", "ones_plus_noise")
BIAS_MODES = ("scale", "keep")
COMPACT_FORMS = ("split", "folded")


@dataclass(frozen=True)
class HutConfig(MethodConfig):
    r: int = option(8, minimum=1)  # the paper's rank (Table 6: r=8 on q, v; Table 7: r=4)
    targets: list[str] = option(["q", "v"])  # short names (hut.methods.targets); GPT-2: slices of c_attn
    init: str = option("ones", choices=INITS)  # the paper states no init; ones = the frozen model at step 0
    init_std: float = option(0.02, minimum=0.0)  # noise of init=ones_plus_noise (row/column means kept at 1)
    bias_mode: str = option("scale", choices=BIAS_MODES)  # how the frozen bias enters (see layer.py)
    memory_efficient: bool = option(True)  # custom autograd function; false = plain autograd (tests)


@dataclass(frozen=True)
class HutCompactConfig(MethodConfig):
    r: int = option(1, minimum=1)  # the HUT rank it reproduces (Adam eps × r on a, b); never changes the count
    form: str = option("split", choices=COMPACT_FORMS)  # split: a, b, γ, β; folded: a, γ, β
    targets: list[str] = option(["q", "v"])
    init: str = option("ones", choices=INITS)  # both inits have means 1, i.e. the same compact start
    bias_mode: str = option("scale", choices=BIAS_MODES)
    memory_efficient: bool = option(True)
