"""Training-time augmentation of spectrogram tensors: SpecAugment masks and mix-up.

Both work on any (B, C, H, W) batch whose rows are frequencies and whose columns are time
frames: the model-input images (row 0 is the highest frequency) or the frozen trunk's
feature maps, which keep that layout at a coarser grid. Masking the cached feature maps
keeps the frozen-feature cache usable (the trunk runs once); masking the images would need
the trunk again in every epoch. Pure functions; randomness comes from a torch Generator.
"""

from __future__ import annotations

import numpy as np
import torch


def _band_mask(
    batch: int, size: int, masks: int, max_width: int, generator: torch.Generator
) -> torch.Tensor:
    """(batch, size) bool: ``masks`` bands per row, each of width 0..max_width."""
    widths = torch.randint(0, max_width + 1, (batch, masks, 1), generator=generator)
    starts = (torch.rand((batch, masks, 1), generator=generator) * (size - widths + 1)).long()
    positions = torch.arange(size).view(1, 1, size)
    return ((positions >= starts) & (positions < starts + widths)).any(dim=1)


def spec_augment(
    x: torch.Tensor,
    masks: int,
    max_fraction: float,
    generator: torch.Generator,
    fill: float = 0.0,
) -> torch.Tensor:
    """A copy of ``x`` (B, C, H, W) with ``masks`` frequency bands (rows) and ``masks`` time
    spans (columns) per example set to ``fill``, each at most ``max_fraction`` of its axis
    wide (at least one row or column), as SpecAugment's frequency and time masking.
    ``x`` itself is not changed (it may be a cached tensor)."""
    if masks <= 0 or max_fraction <= 0:
        return x
    b, _, h, w = x.shape
    rows = _band_mask(b, h, masks, max(1, round(max_fraction * h)), generator)
    cols = _band_mask(b, w, masks, max(1, round(max_fraction * w)), generator)
    mask = rows[:, None, :, None] | cols[:, None, None, :]
    return x.masked_fill(mask.to(x.device), fill)


def mixup(
    x: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mix-up between examples (Zhang et al. 2018): ``(lam * x + (1 - lam) * x[perm], perm,
    lam)`` with ``lam ~ Beta(alpha, alpha)``; the loss is ``lam * loss(y) + (1 - lam) *
    loss(y[perm])``. ``alpha`` <= 0 returns ``x`` unchanged with lam 1."""
    perm = torch.randperm(len(x), generator=generator)
    if alpha <= 0:
        return x, perm, 1.0
    # numpy's exact Beta sampler, seeded from the run's generator so that a seed repeats a run
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    mixed = x.mul(lam).add_(x[perm.to(x.device)], alpha=1.0 - lam)
    return mixed, perm, lam
