"""homofit.optim: learning-rate schedules and which parameters get weight decay."""

from __future__ import annotations

import math

import pytest

from homofit.config import OptimConfig
from homofit.optim import build_optimizer, build_scheduler, lr_multiplier, warmup_steps


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.0), (1, 0.25), (3, 0.75), (4, 1.0), (5, 5 / 6), (7, 0.5), (10, 0.0), (12, 0.0)],
)
def test_linear_with_warmup(step: int, expected: float) -> None:
    # 4 warmup steps up to the base rate, then down to 0 over the remaining 6 of 10.
    assert lr_multiplier("linear", step, warmup=4, total=10) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.0), (1, 0.5), (2, 1.0), (4, 0.5 * (1 + math.cos(math.pi * 0.25))), (6, 0.5), (10, 0.0)],
)
def test_cosine_with_warmup(step: int, expected: float) -> None:
    assert lr_multiplier("cosine", step, warmup=2, total=10) == pytest.approx(expected)


@pytest.mark.parametrize(("step", "expected"), [(0, 0.0), (1, 1 / 3), (3, 1.0), (9, 1.0), (100, 1.0)])
def test_constant_with_warmup(step: int, expected: float) -> None:
    assert lr_multiplier("constant", step, warmup=3, total=10) == pytest.approx(expected)


def test_no_warmup_starts_at_the_base_rate() -> None:
    assert lr_multiplier("linear", 0, warmup=0, total=5) == 1.0
    assert lr_multiplier("cosine", 0, warmup=0, total=5) == 1.0
    assert lr_multiplier("linear", 5, warmup=0, total=5) == 0.0


def test_warmup_steps_from_ratio_or_count() -> None:
    assert warmup_steps(OptimConfig(warmup_ratio=0.1), 639) == 64  # ceil(63.9), as configs/wnut17.yaml says
    assert warmup_steps(OptimConfig(warmup_steps=7, warmup_ratio=0.5), 100) == 7
    assert warmup_steps(OptimConfig(), 100) == 0


def tiny_token_classifier(tiny_bert):
    from transformers import AutoModelForTokenClassification

    return AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3)


def test_no_weight_decay_on_bias_and_layer_norm(tiny_bert) -> None:
    model = tiny_token_classifier(tiny_bert)
    optimizer = build_optimizer(model, OptimConfig(weight_decay=0.01))
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    decay, no_decay = ([names[id(parameter)] for parameter in group["params"]] for group in optimizer.param_groups)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.01, 0.0]
    assert sorted(decay + no_decay) == sorted(names.values())
    assert all(name.endswith(".bias") or "LayerNorm" in name for name in no_decay)
    assert all(not name.endswith(".bias") and "LayerNorm" not in name for name in decay)
    assert "bert.embeddings.LayerNorm.weight" in no_decay and "classifier.bias" in no_decay
    assert "classifier.weight" in decay and "bert.embeddings.word_embeddings.weight" in decay


def test_frozen_parameters_are_left_out(tiny_bert) -> None:
    model = tiny_token_classifier(tiny_bert)
    for parameter in model.bert.parameters():
        parameter.requires_grad_(False)
    optimizer = build_optimizer(model, OptimConfig(name="sgd", lr=0.1, momentum=0.9))
    assert [len(group["params"]) for group in optimizer.param_groups] == [1, 1]  # classifier weight, bias
    assert type(optimizer).__name__ == "SGD"
    assert optimizer.param_groups[0]["momentum"] == 0.9


def test_scheduler_follows_lr_multiplier(tiny_bert) -> None:
    model = tiny_token_classifier(tiny_bert)
    config = OptimConfig(lr=1e-3, schedule="linear", warmup_steps=2)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, total_steps=6)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.0, 5e-4, 1e-3, 7.5e-4, 5e-4, 2.5e-4])


@pytest.mark.parametrize("norm", [0.25, 1.0 - 1e-7, 1.0, 1.0 + 1e-6, 7.5, float("nan"), float("inf")])
def test_clipping_that_skips_the_unit_scale_gives_clip_grad_norms_gradients(norm: float) -> None:
    import torch

    from homofit.train import clip_gradients

    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 3)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    gradients = [torch.randn_like(parameter) for parameter in models[0].parameters()]
    scale = norm / float(torch.linalg.vector_norm(torch.cat([gradient.flatten() for gradient in gradients])))
    for model in models:
        for parameter, gradient in zip(model.parameters(), gradients):
            parameter.grad = gradient * scale
    models[0][1].bias.grad = None  # a parameter without a gradient is left out, as clip_grad_norm_ does
    models[1][1].bias.grad = None
    torch.nn.utils.clip_grad_norm_(models[0].parameters(), 1.0)
    clip_gradients(models[1], 1.0, skip_unit_scale=True)
    for expected, got in zip(models[0].parameters(), models[1].parameters()):
        assert (expected.grad is None and got.grad is None) or torch.equal(expected.grad.nan_to_num(),
                                                                          got.grad.nan_to_num())
