"""Every fine-tuning method, registered in ``METHODS`` on import (one small module per method)."""
from hut.methods.base import METHODS, Method, build_method, count_parameters, is_head, merge_model, prepare_model

# Importing a module registers its methods. Keep this list in sync with configs/method/.
from hut.methods import hut as _hut  # noqa: F401,E402  hut, hut_compact (a package: config, function, layer, model)
from hut.methods import lora as _lora  # noqa: F401,E402  lora, dora (peft, plus fused c_attn slices)
from hut.methods import hira as _hira  # noqa: F401,E402  hira (peft, plus fused c_attn slices)
from hut.methods import ia3 as _ia3  # noqa: F401,E402  ia3 (on HUT's layer)
from hut.methods import parts as _parts  # noqa: F401,E402  ssf, hut_noshift (HUT's parts, on HUT's layer)
from hut.methods import peft_methods as _peft  # noqa: F401,E402  vera, fourierft, prefix
from hut.methods import full as _full  # noqa: F401,E402  ft, ft_top2, bitfit
from hut.methods import adapters as _adapters  # noqa: F401,E402  hadapter, padapter, ladapter

__all__ = ["METHODS", "Method", "build_method", "count_parameters", "is_head", "merge_model", "prepare_model"]
