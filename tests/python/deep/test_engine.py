"""Training loop and evaluation on a tiny model."""

import pytest
import torch
import torch.nn.functional as F

from srnomogram.deep.engine import batch_slices, evaluate, train_one_epoch
from srnomogram.deep.presets import EvalPreset, TrainPreset
from srnomogram.errors import InputError


def test_batch_slices_keep_a_short_last_batch_but_drop_a_single_image():
    assert batch_slices(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_slices(9, 4) == [(0, 4), (4, 8)]
    assert batch_slices(4, 4) == [(0, 4)]
    with pytest.raises(InputError, match=r"'batch_size' parameter \(5\) is larger than the training set \(4 lesions\)"):
        batch_slices(4, 5)


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_train_one_epoch_returns_one_loss_per_iteration_and_learns():
    torch.manual_seed(0)
    n = 40
    labels = torch.arange(n) % 2
    images = torch.where(labels[:, None, None, None] == 1, 200, 40).to(torch.uint8).expand(n, 1, 10, 10).clone()
    model = _Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    first = train_one_epoch(model, opt, images, labels, 8, TrainPreset(8), gen)
    assert first.shape == (5,) and first.dtype == torch.float32
    for _ in range(10):
        last = train_one_epoch(model, opt, images, labels, 8, TrainPreset(8), gen)
    assert last.mean() < 0.5 * first[0]


def test_evaluate_returns_the_softmax_of_the_model_in_eval_mode():
    torch.manual_seed(0)
    model = _Tiny()
    model.train()
    x = torch.randint(0, 256, (7, 1, 10, 10), dtype=torch.uint8)
    p = evaluate(model, x, EvalPreset(8), batch_size=3)
    assert not model.training
    with torch.no_grad():
        ref = torch.softmax(model(EvalPreset(8)(x)), 1)
    torch.testing.assert_close(p, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(p.sum(1), torch.ones(7), rtol=0, atol=1e-6)
