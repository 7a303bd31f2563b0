"""Baselines through peft: ``vera``, ``fourierft`` and ``prefix`` (prefix tuning).

((IA)^3 was here too; it now runs on HUT's layer, see :mod:`hut.methods.ia3` for why.)

Module-level methods (vera, fourierft)
--------------------------------------
The modules come from :func:`hut.methods.targets.resolve_targets` and are handed to peft as exact
module names; peft's tuner injects its layers into the model *in place* and the model object (and
its class, ``generate`` included) stays the same. peft adapts whole modules only: on GPT-2, whose
q, k and v live fused in one ``Conv1D`` (``attn.c_attn``), any of q/k/v adapts the *whole* c_attn
(all three thirds). hut and lora adapt the slices themselves; these baselines do not.

* ``vera``      - VeRA (Kopiczko et al., 2024): frozen shared random A (r x d_in), B (d_out x r) and
                  trainable vectors per module, h = W0 x + Λ_b B Λ_d A x. peft starts Λ_b at 0 and
                  Λ_d at ``d_initial``, so step 0 is the frozen model (identity at init).
* ``fourierft`` - FourierFT (Gao et al., 2024): ΔW = scaling · Re(IDFT2(S)), S sparse with
                  ``n_frequency`` trainable entries at fixed random positions. The paper (and peft's
                  default, ``init_zero: false``) draws the entries from N(0, 1), so the model does
                  *not* start at the frozen function; ``init_zero: true`` starts them at 0 (identity).
Both merge exactly (``merge`` folds each peft layer into its base layer and puts the stock
``nn.Linear``/``Conv1D`` back).

Prefix tuning (``prefix``)
--------------------------
Prefix tuning (Li & Liang, 2021) - the paper's "PreLayer" row - learns ``num_virtual_tokens``
key/value vectors per layer that every attention layer attends to. It needs peft's ``PeftModel``
wrapper (``get_peft_model``), which feeds them in as ``past_key_values``; ``apply`` returns that
wrapper (``PeftModelForSequenceClassification`` for encoders with a head, ``PeftModelForCausalLM``
for decoders), so ``model(**batch)`` and ``model.generate(...)`` keep working. Differences from a
plain ``get_peft_model`` call:

* peft puts a trainable *copy* of the classification head in a ``ModulesToSaveWrapper``; we put
  the model's own head back, which :func:`prepare_model` keeps trainable like for every method
  (one head, counted once, same parameter names as elsewhere).
* In the bert family the embeddings offset the position ids by the cache length (the prefix), which
  would shift every real token's position by ``num_virtual_tokens`` and overflow RoBERTa's 514
  position table for long inputs. A pre-forward hook on the encoder passes the position ids the
  model would use without a prefix (prefix vectors have no position). Decoders keep peft's
  behaviour (positions continue after the prefix; RoPE in Llama is relative anyway).

Not an identity at init (the prefix is attended to from step 0), not mergeable.

The LoRA paper's PreLayer learns hidden activations (L·d per token, keys and values then come from
the frozen projections); peft's prefix learns keys and values directly (2·L·d per token), e.g.
10 tokens on RoBERTa-large or GPT-2 medium = 491,520 parameters.
"""
from __future__ import annotations

import inspect
import logging
import types
from dataclasses import dataclass

import torch
import torch.nn as nn
from peft import FourierFTConfig as PeftFourierFTConfig
from peft import PrefixTuningConfig, TaskType, get_peft_model
from peft import VeraConfig as PeftVeraConfig
from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils.other import ModulesToSaveWrapper

from hut.methods.base import METHODS, Method
from hut.methods.config import MethodConfig, option
from hut.methods.targets import replace_module, resolve_targets

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class VeraConfig(MethodConfig):
    r: int = option(256, minimum=1)  # VeRA paper, RoBERTa-large GLUE
    targets: list[str] = option(["q", "v"])
    d_initial: float = option(0.1)  # initial value of Λ_d
    dropout: float = option(0.0, minimum=0.0, below=1.0)
    projection_prng_key: int = option(0, minimum=0)  # seed of the shared random A, B


@dataclass(frozen=True)
class FourierFTConfig(MethodConfig):
    n_frequency: int = option(1000, minimum=1)
    scaling: float = option(150.0)
    targets: list[str] = option(["q", "v"])
    random_loc_seed: int = option(777, minimum=0)
    init_zero: bool = option(False)  # false: the paper's N(0, 1) spectrum (not an identity at init)


@dataclass(frozen=True)
class PrefixConfig(MethodConfig):
    num_virtual_tokens: int = option(10, minimum=1)
    prefix_projection: bool = option(False)
    encoder_hidden_size: int = option(512, minimum=1)


def _module_names(model: nn.Module, family: str, targets: list[str], method: str) -> list[str]:
    """Whole-module names for peft; a fused-slice target (GPT-2 q/k/v) becomes the whole module."""
    resolved = resolve_targets(model, family, targets)
    fused = sorted({t.name.rsplit(".", 1)[-1] for t in resolved if t.slices is not None})
    if fused:
        log.info("method %s: peft adapts whole modules; targets %s adapt all of the fused %s", method,
                 targets, ", ".join(fused))
    return [t.name for t in resolved]


def _fan_in_fan_out(model: nn.Module, names: list[str]) -> bool:
    """GPT-2's Conv1D stores weights (in, out): tell peft up front (it would warn and switch)."""
    modules = dict(model.named_modules())
    return any(type(modules[n]).__name__ == "Conv1D" for n in names)


# --------------------------------------------------------------------------- module-level methods
def merge_peft_layers(model: nn.Module) -> nn.Module:
    """Fold every peft tuner layer into its base layer and put the base (stock) module back."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    for name, layer in layers:
        with torch.no_grad():
            layer.merge()
        replace_module(model, name, layer.get_base_layer())
    if "peft_config" in vars(model):  # left on the model by peft's tuner; nothing of peft remains
        del model.peft_config
    return model


class _PeftTunerMethod(Method):
    """Inject one peft tuner (LoRA-like: per-module layers) into the model in place."""

    identity_at_init = True
    mergeable = True

    def peft_config(self, model: nn.Module, family: str):  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        config = self.peft_config(model, family)
        tuner_cls = PEFT_TYPE_TO_TUNER_MAPPING[config.peft_type]
        # The tuner replaces the target modules in place and marks only its own parameters trainable
        # (everything is frozen on entry anyway). We keep the model, not the tuner wrapper: VeRA's
        # shared A/B buffers are registered on every VeRA layer, so nothing lives only on the tuner
        # (which is why peft's inject_adapter_in_model, which refuses VeRA, is not used).
        tuner_cls(model, config, adapter_name="default")
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        return merge_peft_layers(model)


@METHODS.register("vera")
class VeRAMethod(_PeftTunerMethod):
    name = "vera"
    Config = VeraConfig

    def peft_config(self, model, family):
        c = self.config
        names = _module_names(model, family, c.targets, self.name)
        return PeftVeraConfig(r=c.r, target_modules=names, fan_in_fan_out=_fan_in_fan_out(model, names),
                              d_initial=c.d_initial, vera_dropout=c.dropout, projection_prng_key=c.projection_prng_key,
                              save_projection=True, init_weights=True)


@METHODS.register("fourierft")
class FourierFTMethod(_PeftTunerMethod):
    name = "fourierft"
    Config = FourierFTConfig
    identity_at_init = False  # the paper's N(0, 1) spectrum; an instance with init_zero=true is an identity

    def __init__(self, cfg):
        super().__init__(cfg)
        c = self.config
        self.n_frequency, self.scaling = c.n_frequency, c.scaling
        self.random_loc_seed, self.init_zero = c.random_loc_seed, c.init_zero
        self.identity_at_init = self.init_zero

    def peft_config(self, model, family):
        names = _module_names(model, family, self.config.targets, self.name)
        modules = dict(model.named_modules())
        for n in names:
            w = modules[n].weight
            if self.n_frequency > w.numel():
                raise ValueError(f"method fourierft: n_frequency={self.n_frequency} exceeds the {w.numel()} "
                                 f"entries of {n} ({tuple(w.shape)}); lower method.n_frequency")
        return PeftFourierFTConfig(n_frequency=self.n_frequency, scaling=self.scaling, target_modules=names,
                               random_loc_seed=self.random_loc_seed, init_weights=self.init_zero,
                               fan_in_fan_out=_fan_in_fan_out(model, names))


# --------------------------------------------------------------------------- prefix tuning
class _UnshiftedPositions:
    """Pre-forward hook on a bert-family encoder: position ids as if there were no prefix cache.

    BERT/RoBERTa embeddings start the positions at the cache length; the prefix vectors are not
    tokens, so the real tokens keep the positions they were pre-trained with (and RoBERTa's
    514-entry table does not overflow at max_length 512). RoBERTa-style embeddings (pads keep
    ``padding_idx``) use their own ``create_position_ids_from_input_ids`` with no cache offset.
    """

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if kwargs.get("past_key_values") is None or kwargs.get("position_ids") is not None or ids is None:
            return None
        emb = getattr(module, "embeddings", None)
        if hasattr(emb, "create_position_ids_from_input_ids") and getattr(emb, "padding_idx", None) is not None:
            pos = emb.create_position_ids_from_input_ids(ids, emb.padding_idx, 0)
        else:
            pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0).expand_as(ids)
        kwargs["position_ids"] = pos
        return args, kwargs


def _forward_taking_past_key_values(self, *args, past_key_values=None, **kwargs):
    """The backbone's own forward, reached under the argument name peft passes (see below)."""
    if past_key_values is not None:
        kwargs["cache"] = past_key_values
    return type(self).forward(self, *args, **kwargs)


def _accept_past_key_values(backbone: nn.Module) -> None:
    """Let peft find ``past_key_values`` in an encoder backbone whose forward now calls it ``cache``.

    transformers 5.2x renamed the BERT/RoBERTa encoder argument ``past_key_values`` to ``cache``
    (the old name is still accepted as a deprecated alias). peft (0.21) decides whether a sequence
    classifier supports prefix tuning by looking for the *old name* in the backbone's signature and
    refuses otherwise ("Model does not support past key values ..."). This per-instance forward has
    that name and hands the prefix over as ``cache``; it is a bound method (``types.MethodType``), so
    ``copy.deepcopy`` of the model stays correct. A no-op where the backbone still has the old name.
    """
    params = inspect.signature(backbone.forward).parameters
    if "past_key_values" in params or "cache" not in params:
        return
    backbone.forward = types.MethodType(_forward_taking_past_key_values, backbone)


@METHODS.register("prefix")
class PrefixTuningMethod(Method):
    name = "prefix"
    Config = PrefixConfig
    identity_at_init = False
    mergeable = False

    @staticmethod
    def _task_type(model: nn.Module):
        arch = type(model).__name__
        if arch.endswith("ForSequenceClassification"):
            return TaskType.SEQ_CLS
        if arch.endswith("ForQuestionAnswering"):
            return TaskType.QUESTION_ANS
        if arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel"):
            return TaskType.CAUSAL_LM
        raise ValueError(f"method prefix: unsupported model class {arch} (expected *ForSequenceClassification, "
                         f"*ForQuestionAnswering or a causal LM)")

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        task_type = self._task_type(model)
        c = self.config
        config = PrefixTuningConfig(task_type=task_type, num_virtual_tokens=c.num_virtual_tokens,
                                    prefix_projection=c.prefix_projection, encoder_hidden_size=c.encoder_hidden_size)
        peft_model = get_peft_model(model, config)
        # Put the model's own head back in place of peft's ModulesToSaveWrapper (trainable copy).
        wrapped = [(n, m) for n, m in peft_model.base_model.named_modules() if isinstance(m, ModulesToSaveWrapper)]
        for name, wrapper in wrapped:
            replace_module(peft_model.base_model, name, wrapper.original_module)
        if family == "bert":
            backbone = getattr(peft_model.base_model, peft_model.base_model.base_model_prefix)
            backbone.register_forward_pre_hook(_UnshiftedPositions(), with_kwargs=True)
            _accept_past_key_values(backbone)
        return peft_model
