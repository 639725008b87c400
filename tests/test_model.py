"""Freezing, LoRA adapters and head growth on a tiny BERT."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForTokenClassification

from homofit.config import LoraConfig, ModelConfig
from homofit.errors import HomofitError
from homofit.heads import TokenLabelHead, grow_head
from homofit.model import (
    apply_lora,
    freeze_parameters,
    resolve_model_path,
    trainable_modules,
    unwrap_adapters,
)


def _model(tiny_bert: Path) -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3)


def _trainable(model: torch.nn.Module) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


def test_freeze_none_trains_everything(tiny_bert: Path) -> None:
    model = _model(tiny_bert)
    freeze_parameters(model, "none", 0)
    assert _trainable(model) == {name for name, _ in model.named_parameters()}


def test_freeze_embeddings(tiny_bert: Path) -> None:
    model = _model(tiny_bert)
    freeze_parameters(model, "embeddings", 0)
    frozen = {name for name, _ in model.named_parameters()} - _trainable(model)
    assert frozen and all(name.startswith("bert.embeddings.") for name in frozen)


def test_freeze_bottom_layers(tiny_bert: Path) -> None:
    model = _model(tiny_bert)
    freeze_parameters(model, "bottom", 1)
    trainable = _trainable(model)
    assert not any(name.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for name in trainable)
    assert any(name.startswith("bert.encoder.layer.1.") for name in trainable)
    assert {"classifier.weight", "classifier.bias"} <= trainable


def test_freeze_bottom_more_layers_than_model_has(tiny_bert: Path) -> None:
    with pytest.raises(HomofitError, match="model.freeze_layers: 5 is more than the model's 2 layers"):
        freeze_parameters(_model(tiny_bert), "bottom", 5)


def test_freeze_all_but_head(tiny_bert: Path) -> None:
    model = _model(tiny_bert)
    freeze_parameters(model, "all_but_head", 0)
    assert _trainable(model) == {"classifier.weight", "classifier.bias"}  # a token classifier has no pooler
    assert trainable_modules(model) == "classifier (99)"


def test_freeze_all_but_head_trains_the_pooler_a_sequence_classifier_reads(tiny_bert: Path) -> None:
    """BertForSequenceClassification's head is pooler (dense + tanh over [CLS]) + classifier: both train."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    freeze_parameters(model, "all_but_head", 0)
    assert _trainable(model) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                                 "classifier.bias"}
    assert trainable_modules(model) == "bert.pooler.dense (1,056), classifier (66)"
    inputs = {"input_ids": torch.tensor([[2, 10, 11, 3]]), "labels": torch.tensor([1])}
    model(**inputs).loss.backward()
    assert model.bert.pooler.dense.weight.grad.abs().sum() > 0
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad is None


def test_trainable_modules_folds_layers(tiny_bert: Path) -> None:
    model = apply_lora(_model(tiny_bert), LoraConfig(r=2, target_modules=["query"]), ["classifier"])
    described = trainable_modules(model)
    assert "layer.*.attention.self.query.lora_A.default (128)" in described and "classifier" in described
    assert trainable_modules(_model(tiny_bert)) == "all modules"


def test_method_learning_rates_apply_only_when_lr_is_not_set() -> None:
    from homofit.config import load_config

    rates = {}
    for method, overrides in (("full", []), ("lora", ["model.lora.r=8"]), ("head", ["model.freeze=all_but_head"])):
        rates[method] = load_config(None, ["task.type=ner", *overrides]).optim.lr
    assert rates == {"full": 5e-5, "lora": 5e-4, "head": 1e-3}
    assert load_config(None, ["task.type=ner", "model.lora.r=8", "optim.lr=2e-5"]).optim.lr == 2e-5


def test_model_config_rejects_freeze_layers_without_bottom() -> None:
    with pytest.raises(ValueError, match="freeze_layers is only read with freeze: bottom"):
        ModelConfig(freeze="embeddings", freeze_layers=2)


def test_grow_head_keeps_trained_rows(tiny_bert: Path) -> None:
    model = _model(tiny_bert)
    old_weight = model.classifier.weight.detach().clone()
    grow_head(model, ["O", "B-a", "I-a", "B-new", "I-new"])
    assert model.classifier.out_features == 5
    torch.testing.assert_close(model.classifier.weight[:3], old_weight)
    assert model.config.id2label[3] == "B-new" and model.config.num_labels == 5


def test_grow_head_finds_a_nested_output_layer_and_names_a_missing_one(tiny_bert: Path) -> None:
    model = _model(tiny_bert)
    model.classifier = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))
    grow_head(model, ["O", "B-a", "I-a", "B-new"])
    assert model.classifier[2].out_features == 4 and model.classifier[0].out_features == 32
    model.classifier = torch.nn.Linear(32, 7)  # no layer with one output per label (4 now)
    with pytest.raises(HomofitError, match="has no output layer with one output per label"):
        grow_head(model, ["O", "B-a", "I-a", "B-new"])


def test_lora_trains_adapters_and_head_and_merges_to_plain_model(tiny_bert: Path) -> None:
    model = _model(tiny_bert)
    assert TokenLabelHead().trainable_modules(model) == ["classifier"]  # the head LoRA trains whole
    model = apply_lora(model, LoraConfig(r=2, target_modules=["query", "value"]), ["classifier"])
    trainable = _trainable(model)
    assert trainable and all("lora_" in name or "classifier" in name for name in trainable)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.fill_(0.01)  # a non-zero update, so merging changes the weights
    inputs = {"input_ids": torch.tensor([[2, 10, 11, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    model.eval()
    expected = model(**inputs).logits
    merged = unwrap_adapters(model)
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    torch.testing.assert_close(merged(**inputs).logits, expected, rtol=1e-4, atol=1e-5)
    assert hasattr(model, "merge_and_unload"), "unwrapping works on a copy and leaves the trained model wrapped"


def test_packaged_model_resolves_to_a_folder_when_installed() -> None:
    folder = Path(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert resolve_model_path("minilm") == str(folder)
