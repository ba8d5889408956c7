"""Training loop and evaluation (torchvision references' ``train_one_epoch`` / ``evaluate``).

The whole training set is one uint8 tensor on the device; each epoch draws a permutation on
the device, slices batches from it, augments them there (:mod:`srnomogram.deep.presets`) and
keeps the per-iteration losses as device tensors. Nothing in the loop calls ``.item()`` or
copies to the host, so on a GPU the host only queues work; the caller reads the losses once
per epoch (for the progress bar).

On CUDA the training forward/backward run under bf16 autocast with channels-last memory (the
defaults of :class:`~srnomogram.deep.model.DeepClassifier`); on the CPU the same code runs in fp32.
:func:`evaluate` runs in fp32 unless given a dtype (the model asks for bf16 only with ``amp="bf16"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._threads import adapt_threads
from .._torch import autocast
from ..errors import InputError


def batch_slices(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch of an epoch over ``n`` images.

    The last, smaller batch is kept, except a single-image remainder, which is dropped for that
    epoch (BatchNorm cannot normalise one image; the permutation changes every epoch, so every
    image is still used).
    """
    if batch_size > n:
        raise InputError(f"The 'batch_size' parameter ({batch_size}) is larger than the training set ({n} lesions). Lower batch_size to at most {n}.")
    out = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(out) > 1 and out[-1][1] - out[-1][0] == 1:
        out.pop()
    return out


def train_one_epoch(model, optimizer, images, labels, batch_size, preset, generator=None, *, amp_dtype=None, channels_last=False, step_fn=None):
    """One pass over ``images`` in a random order.

    Parameters
    ----------
    model : torch.nn.Module
        On the same device as ``images``; set to training mode here.
    optimizer : torch.optim.Optimizer
    images : torch.Tensor
        uint8 (N, 1, P, P) on the device.
    labels : torch.Tensor
        int64 (N,) on the device.
    batch_size : int
    preset : callable
        ``preset(uint8 batch, generator) -> float batch`` (:class:`~srnomogram.deep.presets.TrainPreset`).
    generator : torch.Generator, optional
        On the device; drives the permutation and the augmentation.
    amp_dtype : torch.dtype, optional
        Autocast dtype (``torch.bfloat16`` on CUDA), or None for fp32.
    channels_last : bool
    step_fn : callable, optional
        A (possibly ``torch.compile``-d) ``step_fn(x, y) -> loss`` replacing the default
        forward + cross-entropy.

    Returns
    -------
    torch.Tensor
        float32 (iterations,) on the device: the mean cross-entropy of each iteration.
    """
    model.train()
    n = images.shape[0]
    device = images.device
    perm = torch.randperm(n, device=device, generator=generator)
    losses = []
    for start, stop in batch_slices(n, batch_size):
        adapt_threads()  # a shared machine: compute with the cores other jobs leave free
        idx = perm[start:stop]
        x = preset(images[idx], generator)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels[idx]
        with autocast(device, amp_dtype):
            loss = step_fn(x, y) if step_fn is not None else F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().float())
    return torch.stack(losses)


@torch.no_grad()
def evaluate(model, images, preset, batch_size=64, *, amp_dtype=None, channels_last=False):
    """Class probabilities (softmax) of every image, in order.

    Returns
    -------
    torch.Tensor
        float32 (N, num_classes) on the images' device.
    """
    model.eval()
    device = images.device
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = preset(images[start : start + batch_size])
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            logits = model(x)
        out.append(torch.softmax(logits.float(), dim=1))
    return torch.cat(out) if out else torch.zeros((0, 2), device=device)
