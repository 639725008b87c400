"""homofit.dropout: CPU dropout with its mask drawn in bulk keeps torch's dropout's distribution and gradient."""

from __future__ import annotations

import pytest
import torch

from homofit.dropout import BulkDropout, keep_mask, use_bulk_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_an_element_is_kept_with_probability_one_minus_p(p: float) -> None:
    torch.manual_seed(0)
    keep = keep_mask(torch.Size([1000, 1000]), p)
    assert keep.dtype == torch.bool and keep.shape == (1000, 1000)
    assert abs(float(keep.float().mean()) - (1 - p)) < 0.002  # 4 standard deviations or more at 10^6 draws
    rows, columns = keep.float().mean(dim=1), keep.float().mean(dim=0)  # no stripes: every row and column alike
    assert float(rows.std()) < 0.03 and float(columns.std()) < 0.03


def test_masks_follow_torchs_seed_and_differ_call_to_call() -> None:
    torch.manual_seed(3)
    first, second = keep_mask(torch.Size([64, 64]), 0.3), keep_mask(torch.Size([64, 64]), 0.3)
    torch.manual_seed(3)
    assert torch.equal(keep_mask(torch.Size([64, 64]), 0.3), first)
    assert not torch.equal(first, second)


def test_kept_elements_are_scaled_and_the_gradient_goes_through_them_only() -> None:
    dropout = BulkDropout(0.25)
    values = torch.randn(8, 5, 16, requires_grad=True)
    torch.manual_seed(1)
    out = dropout(values)
    torch.manual_seed(1)
    keep = keep_mask(values.shape, 0.25)
    torch.testing.assert_close(out, values.detach() * keep * (1 / 0.75), rtol=0, atol=0)
    out.backward(torch.ones_like(out))
    torch.testing.assert_close(values.grad, keep * (1 / 0.75), rtol=0, atol=0)


def test_outside_cpu_training_it_is_torchs_dropout() -> None:
    values = torch.randn(4, 6)
    dropout = BulkDropout(0.5)
    dropout.eval()
    assert torch.equal(dropout(values), values)
    assert torch.equal(BulkDropout(0.0)(values), values)
    assert torch.equal(BulkDropout(1.0)(values), torch.zeros_like(values))


def test_every_plain_dropout_of_a_model_is_replaced_with_its_p() -> None:
    class Custom(torch.nn.Dropout):
        pass

    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.2),
                                torch.nn.Sequential(torch.nn.Dropout(0.4), Custom(0.1)))
    assert use_bulk_dropout(model) == 2
    assert [(type(module).__name__, module.p) for module in model.modules() if isinstance(module, torch.nn.Dropout)] \
        == [("BulkDropout", 0.2), ("BulkDropout", 0.4), ("Custom", 0.1)]
