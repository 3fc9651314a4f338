"""Noise mix-up at a target SNR and peak normalisation (emotions.ser.mixing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emotions.ser.audio import split_blocks
from emotions.ser.constants import BLOCK_SAMPLES, SAMPLE_RATE
from emotions.ser.mixing import (
    SKIP_SILENT_BLOCK,
    SKIP_SILENT_NOISE,
    augment_blocks,
    crop_or_loop,
    mix_at_snr,
    noise_segments,
    normalise_peak,
    replay_mix,
    rms,
)

SR = SAMPLE_RATE
TARGETS_DB = (0.0, 5.0, 15.0, 20.0, 40.0)


def measured_snr_db(clean: torch.Tensor, added_noise: torch.Tensor) -> torch.Tensor:
    """Whole-block SNR measured independently of the code under test, in float64."""
    c, n = clean.double(), added_noise.double()
    return 10 * torch.log10(c.square().sum(-1) / n.square().sum(-1))


@pytest.fixture(params=["speech", "recorded"])
def clean_blocks(request, make_speech, make_recorded) -> torch.Tensor:
    """10 one-second blocks: speech-like or recorded-like (reverb, hum, DC, 16-bit)."""
    make = make_speech if request.param == "speech" else make_recorded
    return torch.from_numpy(split_blocks(make(10.0, seed=11)).copy())


@pytest.fixture(params=[(0.3, 1.0), (5.0, 1.0), (0.3, 2.0), (5.0, 0.0)], ids=str)
def noise(request, make_noise) -> torch.Tensor:
    """(seconds, colour exponent): shorter and longer than a block; pink, brown, white."""
    seconds, exponent = request.param
    return torch.from_numpy(make_noise(int(seconds * SR), exponent, seed=5, rms=0.05))


def test_mixture_snr_matches_every_target(clean_blocks, noise):
    generator = torch.Generator().manual_seed(0)
    segments, _ = noise_segments(noise, len(clean_blocks), BLOCK_SAMPLES, generator)
    targets = torch.tensor(TARGETS_DB).repeat(2)  # each target on two different blocks
    result = mix_at_snr(clean_blocks, segments, targets)
    assert not result.skipped.any()
    snr = measured_snr_db(clean_blocks, result.mixed - clean_blocks)
    assert torch.allclose(snr, targets.double(), atol=0.05), snr


def test_augmented_blocks_keep_the_snr_after_normalisation(clean_blocks, noise):
    augmented = augment_blocks(clean_blocks, noise, snrs=TARGETS_DB, seed=3)
    assert [a.snr_db for a in augmented] == list(TARGETS_DB)
    c = clean_blocks.double()
    for aug in augmented:
        n = torch.stack(
            [crop_or_loop(noise, BLOCK_SAMPLES, int(o)) for o in aug.record.offsets]
        ).double()
        y = aug.mixed.double()
        # Recover the unknown peak scale p and gain g from  p * y = clean + g * noise  by least
        # squares (2x2 normal equations per block), then measure what was really added.
        yy, nn, yn = (y * y).sum(-1), (n * n).sum(-1), (y * n).sum(-1)
        yc, nc = (y * c).sum(-1), (n * c).sum(-1)
        det = yy * nn - yn * yn
        p = (yc * nn - yn * nc) / det
        g = (yc * yn - yy * nc) / det
        assert torch.allclose(p[:, None] * y, c + g[:, None] * n, atol=1e-5)
        snr = measured_snr_db(c, g[:, None] * n)
        assert torch.allclose(snr, torch.full_like(snr, aug.snr_db), atol=0.05), snr
        assert torch.allclose(aug.mixed.abs().amax(-1), torch.ones(len(y)))


def test_higher_snr_means_less_noise(make_speech, make_noise):
    clean = torch.from_numpy(split_blocks(make_speech(1.0)).copy())
    segment = torch.from_numpy(make_noise(BLOCK_SAMPLES, 1.0, seed=2))[None]
    gains = [float(mix_at_snr(clean, segment, snr).gain) for snr in (0.0, 20.0, 40.0)]
    assert gains[0] > gains[1] > gains[2] > 0
    assert gains[0] / gains[1] == pytest.approx(10.0)  # 20 dB is a factor 10 in amplitude


# --- noise segments ----------------------------------------------------------------------------


def test_long_noise_is_cropped_at_the_offset():
    noise = torch.arange(100, dtype=torch.float32)
    np.testing.assert_array_equal(crop_or_loop(noise, 30, 70).numpy(), np.arange(70, 100))
    with pytest.raises(ValueError):
        crop_or_loop(noise, 30, 71)  # would run past the end
    with pytest.raises(ValueError):
        crop_or_loop(noise, 30, -1)


def test_short_noise_is_looped():
    noise = torch.arange(7, dtype=torch.float32)
    segment = crop_or_loop(noise, 20, 5)
    np.testing.assert_array_equal(segment.numpy(), (5 + np.arange(20)) % 7)
    with pytest.raises(ValueError):
        crop_or_loop(noise, 20, 7)
    with pytest.raises(ValueError):
        crop_or_loop(torch.zeros(0), 20, 0)


@pytest.mark.parametrize("noise_len", [7, 16, 20, 1000])
def test_noise_segments_are_seeded_crops(noise_len):
    noise = torch.randn(noise_len, generator=torch.Generator().manual_seed(1))
    segments, offsets = noise_segments(noise, 50, 16, torch.Generator().manual_seed(9))
    again, offsets_again = noise_segments(noise, 50, 16, torch.Generator().manual_seed(9))
    assert torch.equal(segments, again) and torch.equal(offsets, offsets_again)
    assert offsets.dtype == torch.int64
    high = noise_len - 16 if noise_len >= 16 else noise_len - 1
    assert offsets.min() >= 0 and offsets.max() <= high
    for segment, offset in zip(segments, offsets, strict=True):
        assert torch.equal(segment, crop_or_loop(noise, 16, int(offset)))
    other, other_offsets = noise_segments(noise, 50, 16, torch.Generator().manual_seed(10))
    if noise_len > 16:
        assert not torch.equal(offsets, other_offsets)


# --- silence and bad input ---------------------------------------------------------------------


def test_silent_block_and_silent_noise_are_left_clean(make_speech, make_noise):
    speech = torch.from_numpy(split_blocks(make_speech(2.0)).copy())
    clean = torch.stack([speech[0], torch.zeros(BLOCK_SAMPLES), speech[1]])
    noise = torch.from_numpy(make_noise(BLOCK_SAMPLES, 1.0, seed=3))
    segments = torch.stack([noise, noise, torch.zeros(BLOCK_SAMPLES)])
    result = mix_at_snr(clean, segments, 10.0)
    assert result.reasons == (None, SKIP_SILENT_BLOCK, SKIP_SILENT_NOISE)
    assert result.skipped.tolist() == [False, True, True]
    assert result.gain[1:].tolist() == [0.0, 0.0] and result.gain[0] > 0
    assert torch.isfinite(result.mixed).all()
    assert torch.equal(result.mixed[1:], clean[1:])
    assert not torch.equal(result.mixed[0], clean[0])


def test_silent_noise_file_in_augmentation(make_speech):
    clean = torch.from_numpy(split_blocks(make_speech(3.0)).copy())
    (aug,) = augment_blocks(clean, torch.zeros(4000), snrs=[15.0])
    assert aug.record.reasons == (SKIP_SILENT_NOISE,) * 3
    assert torch.isfinite(aug.mixed).all()
    assert torch.allclose(aug.mixed, normalise_peak(clean))


def test_mix_rejects_mismatched_or_non_finite_input():
    clean, noise = torch.ones(2, 100), torch.ones(2, 100)
    with pytest.raises(ValueError):
        mix_at_snr(clean, torch.ones(2, 99), 10.0)
    with pytest.raises(ValueError):
        mix_at_snr(torch.full((2, 100), float("nan")), noise, 10.0)
    with pytest.raises(ValueError):
        mix_at_snr(clean, noise, float("inf"))


def test_normalise_peak():
    x = torch.tensor([[0.1, -0.5, 0.25], [0.0, 0.0, 0.0], [2.0, 1.0, -4.0]])
    y = normalise_peak(x)
    expected = torch.tensor([[0.2, -1.0, 0.5], [0.0, 0.0, 0.0], [0.5, 0.25, -1.0]])
    assert torch.allclose(y, expected)
    tiny = torch.tensor([[1e-40, -1e-40]])  # subnormal: dividing by it would overflow
    assert torch.isfinite(normalise_peak(tiny)).all()


def test_rms():
    assert float(rms(torch.tensor([3.0, -3.0, 3.0, -3.0]))) == pytest.approx(3.0)
    t = torch.arange(SR) / SR
    assert float(rms(torch.sin(2 * np.pi * 50 * t))) == pytest.approx(1 / np.sqrt(2), rel=1e-4)


# --- reproducible augmentation -----------------------------------------------------------------


def test_augmentation_is_reproducible_and_replayable(make_speech, make_noise):
    blocks = split_blocks(make_speech(4.0, seed=2))  # numpy in is fine
    noise = make_noise(3 * SR, 1.0, seed=4)
    first = augment_blocks(blocks, noise, seed=42, noise_id="pink-3s")
    second = augment_blocks(blocks, noise, seed=42, noise_id="pink-3s")
    other = augment_blocks(blocks, noise, seed=43, noise_id="pink-3s")
    assert [a.snr_db for a in first] == [15.0, 20.0, 40.0]
    for a, b, c in zip(first, second, other, strict=True):
        assert torch.equal(a.mixed, b.mixed)
        assert not torch.equal(a.record.offsets, c.record.offsets)
        assert torch.equal(replay_mix(blocks, noise, a.record), a.mixed)
    rows = first[1].record.rows()
    assert len(rows) == len(blocks)
    assert rows[2]["seed"] == 42 and rows[2]["snr_db"] == 20.0
    assert rows[2]["noise_id"] == "pink-3s" and rows[2]["skipped"] is None
    assert rows[2]["noise_offset"] == int(first[1].record.offsets[2])
    assert rows[2]["gain"] > 0
