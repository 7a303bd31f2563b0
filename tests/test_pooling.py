"""``pooling: mean`` (hut/models.py MaskedMeanPooler): the demo's MiniLM classifies from the masked mean
of its last hidden states, the pooling that checkpoint was trained with. Checked on a tiny random BERT."""
from __future__ import annotations

import pytest
import torch

from hut.methods import METHODS, build_method, prepare_model
from hut.models import MaskedMeanPooler, load_model
from tests.test_methods import method_cfg

TINY_BERT = {"name": "tiny_bert", "source": "config", "pooling": "mean", "head_prefixes": ["classifier"],
             "arch": {"model_type": "bert", "vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2,
                      "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64,
                      "type_vocab_size": 2}}


def tiny_bert(pooling: str = "mean", kind: str = "classification"):
    torch.manual_seed(0)
    lm = load_model({**TINY_BERT, "pooling": pooling}, kind, num_labels=2, pretrained=False, with_tokenizer=False)
    lm.model.eval()
    return lm


def padded_pair():
    """Row 0 is row 1's first 7 tokens followed by 5 pads: its logits must equal those of the 7 alone."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 1000, (2, 12), generator=g)
    ids[0, 7:] = 0
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    return ids, mask


def test_pooler_is_the_masked_mean_of_the_last_hidden_states():
    lm = tiny_bert()
    assert isinstance(lm.model.bert.pooler, MaskedMeanPooler)
    ids, mask = padded_pair()
    with torch.no_grad():
        out = lm.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        h = out.hidden_states[-1]
        m = mask.unsqueeze(-1).float()
        expected = lm.model.classifier((h * m).sum(1) / m.sum(1))
    torch.testing.assert_close(out.logits, expected)


def test_padding_does_not_change_the_prediction():
    lm = tiny_bert()
    ids, mask = padded_pair()
    with torch.no_grad():
        batched = lm.model(input_ids=ids, attention_mask=mask).logits[0]
        alone = lm.model(input_ids=ids[:1, :7], attention_mask=mask[:1, :7]).logits[0]
        unmasked = lm.model(input_ids=ids[:1]).logits[0]  # no mask given: the pads are averaged in
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    assert not torch.allclose(batched, unmasked, atol=1e-4)


def test_cls_pooling_is_the_default_and_untouched():
    lm = tiny_bert("cls")
    assert type(lm.model.bert.pooler).__name__ == "BertPooler"


@pytest.mark.parametrize("method_name", METHODS.names())
def test_every_method_on_a_mean_pooled_encoder(method_name):
    """Identity at init where the method promises it, and padding invariance after injection (prefix
    tuning prepends virtual tokens to the mask: the pooler must average over the real tokens only)."""
    lm = tiny_bert()
    ids, mask = padded_pair()
    with torch.no_grad():
        before = lm.model(input_ids=ids, attention_mask=mask).logits
    method = build_method(method_cfg(method_name, **({"n_frequency": 64} if method_name == "fourierft" else {})))
    model = prepare_model(lm.model, method, lm.family, lm.head_prefixes).eval()
    with torch.no_grad():
        after = model(input_ids=ids, attention_mask=mask).logits
        alone = model(input_ids=ids[:1, :7], attention_mask=mask[:1, :7]).logits[0]
    if method.identity_at_init:
        torch.testing.assert_close(after, before, atol=1e-6, rtol=0)
    torch.testing.assert_close(after[0], alone, atol=1e-5, rtol=0)


def test_export_refuses_a_mean_pooled_model_by_name(tmp_path):
    from hut.export import export_merged

    lm = tiny_bert()
    method = build_method(method_cfg("hut"))
    model = prepare_model(lm.model, method, lm.family, lm.head_prefixes)
    with pytest.raises(ValueError, match="MaskedMeanPooler.*model.pooling=cls"):
        export_merged(model, method, tmp_path / "merged", None)


def test_bad_pooling_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        tiny_bert("max")
    roberta = {"name": "r", "source": "config", "pooling": "mean",
               "arch": {"model_type": "roberta", "vocab_size": 100, "hidden_size": 16, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "intermediate_size": 32}}
    with pytest.raises(ValueError, match="pooling: mean needs a BERT"):
        load_model(roberta, "classification", pretrained=False, with_tokenizer=False)


@pytest.mark.parametrize("method_name", ["hut", "prefix"])
def test_a_deep_copy_pools_with_its_own_mask(method_name):
    """The mask hook must reach the copy's pooler, not the original's (copy.deepcopy of a prepared model)."""
    import copy

    lm = tiny_bert()
    model = prepare_model(lm.model, build_method(method_cfg(method_name)), lm.family, lm.head_prefixes).eval()
    twin = copy.deepcopy(model)
    ids, mask = padded_pair()
    with torch.no_grad():
        torch.testing.assert_close(twin(input_ids=ids, attention_mask=mask).logits,
                                   model(input_ids=ids, attention_mask=mask).logits)
