"""Spectrogram images and model input (emotions.ser.spectrogram)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from PIL import Image

from emotions.ser.audio import split_blocks
from emotions.ser.constants import (
    AMIN,
    HOP_LENGTH,
    IMAGENET_MEAN,
    IMAGENET_STD,
    N_FFT,
    N_FRAMES,
    N_FREQ,
    SAMPLE_RATE,
    TOP_DB,
    WIN_LENGTH,
)
from emotions.ser.mixing import normalise_peak
from emotions.ser.spectrogram import (
    JET_LUT,
    blocks_to_model_input,
    blocks_to_rgb,
    db_to_levels,
    db_to_rgb,
    iter_model_input,
    power_spectrogram,
    power_to_db,
    save_png,
    to_model_input,
)

SR = SAMPLE_RATE


def librosa_power(block: np.ndarray) -> np.ndarray:
    """The method's reference computation, block by block."""
    stft = librosa.stft(
        block, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window="hamming"
    )
    return np.abs(stft) ** 2


def librosa_db(block: np.ndarray) -> np.ndarray:
    return librosa.power_to_db(librosa_power(block), ref=np.max, amin=AMIN, top_db=TOP_DB)


@pytest.fixture
def blocks(make_speech, make_recorded, make_noise) -> np.ndarray:
    """Six 1 s blocks: speech-like, recorded-like, pink noise."""
    return np.concatenate(
        [
            split_blocks(make_speech(2.0, seed=8)),
            split_blocks(make_recorded(2.0, seed=9)),
            split_blocks(make_noise(2 * SR, 1.0, seed=10)),
        ]
    )


def test_power_spectrogram_shape_and_values_match_librosa(blocks):
    power = power_spectrogram(torch.from_numpy(blocks.astype(np.float64)))
    assert power.shape == (len(blocks), N_FREQ, N_FRAMES) == (6, 257, 259)
    for i, block in enumerate(blocks.astype(np.float64)):
        expected = librosa_power(block)
        np.testing.assert_allclose(power[i].numpy(), expected, rtol=1e-9, atol=1e-12)


def test_frames_for_other_block_lengths():
    half = np.random.default_rng(0).standard_normal(SR // 2)
    assert power_spectrogram(half).shape == (1, 257, 1 + (SR // 2) // HOP_LENGTH)


def test_db_matches_librosa_within_a_thousandth_of_a_db(blocks):
    for dtype, top_range in ((np.float64, TOP_DB), (np.float32, 60.0)):
        x = blocks.astype(dtype)
        db = power_to_db(power_spectrogram(torch.from_numpy(x))).numpy()
        for ours, block in zip(db, x, strict=True):
            reference = librosa_db(block)
            unclipped = reference > -TOP_DB
            assert unclipped.mean() > 0.5  # the comparison covers most of the image
            # float64: the whole unclipped range; float32 (what the pipeline runs): the top
            # 60 dB, where its rounding is far below 1e-3 dB
            region = reference > -top_range
            assert np.abs(ours - reference)[region].max() < 1e-3
            assert ours.min() >= -TOP_DB and ours.max() == 0.0


def test_db_range_is_fixed_and_silence_is_the_floor():
    t = np.arange(SR) / SR
    half_tone = np.where(t < 0.5, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
    x = np.stack([np.zeros(SR), np.full(SR, 0.3), half_tone])
    db = power_to_db(power_spectrogram(torch.from_numpy(x.astype(np.float32))))
    assert torch.isfinite(db).all()
    assert (db[0] == -TOP_DB).all()  # silence: the bottom of the scale, not librosa's 0 dB
    assert (db[1:].amax(dim=(1, 2)) == 0.0).all() and db.min() >= -TOP_DB
    # a tone then digital silence: the silent frames sit at the clip, -TOP_DB
    assert (db[2][:, -100:] == -TOP_DB).all()
    # AMIN bounds the range of a very quiet block: why blocks are peak-normalised first
    quiet = power_to_db(power_spectrogram(1e-3 * x[2:]))
    assert quiet.min() > -TOP_DB
    # DC only: the loudest bin is 0 Hz
    assert int(db[1].amax(dim=1).argmax()) == 0


def test_jet_lut_equals_matplotlib_at_every_level():
    import matplotlib

    expected = matplotlib.colormaps["jet"](np.arange(256), bytes=True)[:, :3]
    assert JET_LUT.shape == (256, 3) and JET_LUT.dtype == np.uint8
    np.testing.assert_array_equal(JET_LUT, expected)


def test_levels_follow_matplotlibs_normalised_colour_mapping():
    import matplotlib
    from matplotlib.colors import Normalize

    db = torch.linspace(-TOP_DB, 0.0, 257 * 259, dtype=torch.float32).reshape(1, 257, 259)
    levels = db_to_levels(db)
    assert levels.dtype == torch.uint8
    assert int(levels.min()) == 0 and int(levels.max()) == 255
    cmap = matplotlib.colormaps["jet"]
    expected = cmap(Normalize(-TOP_DB, 0.0)(db[0].numpy()), bytes=True)[..., :3]
    np.testing.assert_array_equal(JET_LUT[levels[0].numpy()], expected)


def test_image_is_uint8_with_low_frequencies_at_the_bottom():
    t = np.arange(SR) / SR
    low = np.sin(2 * np.pi * 500 * t)
    high = np.sin(2 * np.pi * 6000 * t)
    rgb = db_to_rgb(power_to_db(power_spectrogram(np.stack([low, high]).astype(np.float32))))
    assert rgb.shape == (2, 257, 259, 3) and rgb.dtype == torch.uint8
    # the brightest (dark red, top of jet) row of each image
    top_colour = torch.from_numpy(JET_LUT[255].copy())
    rows_low = (rgb[0] == top_colour).all(-1).sum(1).argmax()
    rows_high = (rgb[1] == top_colour).all(-1).sum(1).argmax()
    bin_hz = SR / N_FFT
    assert int(rows_low) == 256 - round(500 / bin_hz)  # 500 Hz near the bottom
    assert int(rows_high) == 256 - round(6000 / bin_hz)  # 6 kHz near the top


def test_silent_block_image_is_the_bottom_colour():
    rgb = blocks_to_rgb(np.zeros((1, SR), np.float32), device="cpu")
    assert (rgb[0] == torch.from_numpy(JET_LUT[0].copy())).all()
    model_input = blocks_to_model_input(np.zeros((1, SR), np.float32), device="cpu")
    bottom = np.broadcast_to(JET_LUT[0], (257, 259, 3)).copy()
    assert torch.equal(model_input, to_model_input(bottom))


def test_model_input_resizes_and_normalises_like_the_method():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 257, 259, 3), dtype=np.uint8)
    rgb[1] = (10, 200, 90)  # a uniform image
    x = to_model_input(rgb)
    assert x.shape == (2, 3, 256, 256) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    uniform = (torch.tensor([10.0, 200.0, 90.0]) / 255 - mean) / std
    assert torch.allclose(x[1], uniform[:, None, None].expand(3, 256, 256), atol=1e-6)
    # the method resized its PNG images: the same as Pillow's antialiased bilinear resize,
    # up to one uint8 level of rounding
    pil = np.asarray(Image.fromarray(rgb[0]).resize((256, 256), Image.BILINEAR), np.float32)
    pil = (torch.from_numpy(pil).permute(2, 0, 1) / 255 - mean[:, None, None]) / std[:, None, None]
    assert (x[0] - pil).abs().max() <= 1.01 / 255 / min(IMAGENET_STD)
    assert (x[0] - pil).abs().mean() < 0.05 / 255 / min(IMAGENET_STD)


def test_to_model_input_rejects_float_images():
    with pytest.raises(ValueError):
        to_model_input(np.zeros((257, 259, 3), np.float32))


def test_batched_path_equals_the_step_by_step_path(blocks):
    steps = to_model_input(
        db_to_rgb(power_to_db(power_spectrogram(normalise_peak(torch.from_numpy(blocks)))))
    )
    batched = blocks_to_model_input(blocks, device="cpu", batch=4)
    assert batched.shape == (len(blocks), 3, 256, 256)
    # the batched path computes colour levels straight from power: the same formula, but
    # float rounding may put a value sitting on a level boundary one level over
    differs = (batched - steps).abs() > 1e-6
    assert differs.float().mean() < 1e-4
    assert (batched - steps).abs().max() < 0.1  # one jet level at most
    assert torch.equal(blocks_to_model_input(blocks, device="cpu", batch=64), batched)
    # peak normalisation first: the level of a block does not change its image (but for
    # rounding that moves a rare pixel across a colour-level boundary)
    quiet = blocks_to_model_input(blocks * 0.01, device="cpu")
    assert ((quiet - batched).abs() > 1e-6).float().mean() < 1e-4


def test_iter_model_input_batches(blocks):
    sizes = [len(b) for b in iter_model_input(blocks, device="cpu", batch=4)]
    assert sizes == [4, 2]
    empty = blocks_to_model_input(np.zeros((0, SR), np.float32), device="cpu")
    assert empty.shape == (0, 3, 256, 256)


def test_save_png_round_trip(tmp_path, blocks):
    rgb = blocks_to_rgb(blocks[:1], device="cpu")[0]
    path = save_png(rgb, tmp_path / "block.png")
    with Image.open(path) as image:
        assert image.size == (259, 257) and image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), rgb.numpy())
    with pytest.raises(ValueError):
        save_png(np.zeros((257, 259), np.uint8), tmp_path / "grey.png")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_agrees_with_the_cpu(blocks):
    cpu = blocks_to_model_input(blocks, device="cpu")
    cuda = blocks_to_model_input(blocks, device="cuda").cpu()
    # cuFFT rounding can move a pixel across a colour-level boundary, and the CUDA resize
    # rounds a float result: nearly all values agree to one uint8 level, none by much more
    diff = (cpu - cuda).abs() * 255 * min(IMAGENET_STD)
    assert (diff > 1.01).float().mean() < 1e-3
    assert diff.max() < 12
