"""HUT as a peft method: ``import hut.peft`` registers it (``peft_type`` ``HUT``), then peft's own API works.

    import hut.peft
    from hut.peft import HutConfig
    from peft import get_peft_model, PeftModel

    model = get_peft_model(base, HutConfig(r=8, target_modules=["query", "value"], task_type="SEQ_CLS"))
    ...  # train (transformers' Trainer, TRL, accelerate, a plain loop)
    model.save_pretrained("out")                      # adapter_config.json: "peft_type": "HUT"
    model = PeftModel.from_pretrained(base, "out")    # in a fresh process, after `import hut.peft`
    merged = model.merge_and_unload()                 # plain transformers modules

=================  =================================================================================
module             what
=================  =================================================================================
``register``       the peft version check, ``HUT`` added to ``PeftType``, ``register_peft_method``
``config``         ``HutConfig`` (a ``PeftConfig``: r, targets, fused q/k/v slices, init, bias mode,
                   compact forms, fan_in_fan_out)
``layer``          ``HutLayer`` (peft's tuner layer; forward and merge from ``hut.methods.hut.core``)
``model``          ``HutModel`` (peft's ``BaseTuner``: creates the layers, default targets)
=================  =================================================================================

docs/library.md has the whole story (Trainer, bf16, several adapters, what is exact).
"""
import peft
from peft.utils import peft_types

from hut.peft.register import PEFT_REQUIRED, add_peft_type, register_hut, require_peft

require_peft(peft.__version__, hasattr(peft_types, "register_peft_method"))
add_peft_type(peft_types.PeftType)

from hut.peft.config import HutConfig  # noqa: E402  (needs peft checked first)
from hut.peft.layer import HutLayer  # noqa: E402
from hut.peft.model import HutModel  # noqa: E402

register_hut(peft_types.register_peft_method, peft_types.PeftType, HutConfig, HutModel)

__all__ = ["HutConfig", "HutLayer", "HutModel", "PEFT_REQUIRED"]
