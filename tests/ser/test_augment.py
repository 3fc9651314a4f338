"""SpecAugment masks and mix-up between examples (emotions.ser.augment)."""

import pytest
import torch

from emotions.ser.augment import mixup, spec_augment


def test_spec_augment_zeroes_bands_of_rows_and_columns_without_touching_the_input():
    x = torch.ones(8, 3, 20, 30)
    out = spec_augment(x, masks=2, max_fraction=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, torch.ones_like(x))  # a cached tensor must stay intact
    zero = out == 0
    assert zero.any()
    # a masked cell is masked in every channel, and lies on a masked row or column
    assert torch.equal(zero.all(1), zero.any(1))
    for b in range(8):
        cells = zero[b, 0]
        rows = cells.all(1)  # fully masked rows (frequency bands)
        cols = cells.all(0)  # fully masked columns (time spans)
        assert torch.equal(cells, rows[:, None] | cols[None, :])
        assert rows.sum() <= 2 * 2 and cols.sum() <= 2 * 3  # 2 masks, <= 10% wide each


def test_spec_augment_is_repeatable_and_off_when_asked():
    x = torch.randn(4, 3, 16, 16)
    a = spec_augment(x, 1, 0.25, torch.Generator().manual_seed(5))
    b = spec_augment(x, 1, 0.25, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert spec_augment(x, 0, 0.25, torch.Generator()) is x


def test_mixup_mixes_pairs_with_a_beta_weight():
    x = torch.randn(6, 3, 4, 4)
    mixed, perm, lam = mixup(x, 0.4, torch.Generator().manual_seed(1))
    assert 0.0 <= lam <= 1.0
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    assert sorted(perm.tolist()) == list(range(6))
    again, perm2, lam2 = mixup(x, 0.4, torch.Generator().manual_seed(1))
    assert lam2 == lam and torch.equal(perm, perm2) and torch.equal(mixed, again)


def test_mixup_off_returns_the_batch():
    x = torch.randn(3, 3, 4, 4)
    out, _, lam = mixup(x, 0.0, torch.Generator())
    assert out is x and lam == pytest.approx(1.0)
