"""The numpy model input equals the torch one (the reference) step by step."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from emotions.ser import spectrogram as reference
from emotions.ser import spectrogram_numpy as fast
from emotions.ser.jet import JET_LUT


@pytest.fixture
def blocks(make_speech, make_noise):
    speech = make_speech(6.0, seed=3).reshape(6, 16_000)
    noise = make_noise(16_000 * 2, exponent=1.0, seed=4).reshape(2, 16_000)
    out = np.concatenate([speech, noise]).astype(np.float32)
    out[1] = 0.0  # digital silence
    out[2] *= 1e-5  # very quiet, still above the floor
    return out


def _db(power: np.ndarray) -> np.ndarray:
    peak = np.maximum(power.max(axis=(1, 2), keepdims=True), 1e-10)
    return np.maximum(10 * np.log10(np.maximum(power, 1e-10) / peak), -80.0)


def test_power_spectrogram_equals_torch_within_float32_rounding(blocks):
    x = fast.normalise_peak(blocks)
    np.testing.assert_array_equal(x, reference.normalise_peak(torch.from_numpy(blocks)).numpy())
    ours = fast.power_spectrogram(x)
    theirs = reference.power_spectrogram(torch.from_numpy(x)).numpy()
    truth = reference.power_spectrogram(torch.from_numpy(x.astype(np.float64))).numpy()
    assert ours.shape == theirs.shape == (8, 257, 259)
    # in dB on the image's 80 dB scale: both float32 paths are a few thousandths of a dB
    # from the float64 truth near the floor, and within 1e-3 dB of each other above -60 dB
    diff = np.abs(_db(ours) - _db(theirs))
    assert diff[_db(truth) > -60].max() < 1e-3
    assert diff.max() < 0.01
    assert np.abs(_db(ours) - _db(truth)).max() < 0.01


@pytest.mark.parametrize("size", [256, 224, 64])
def test_uint8_resize_is_bit_identical_to_torch(blocks, size):
    levels = fast.power_to_levels(fast.power_spectrogram(fast.normalise_peak(blocks)))
    rgb = np.ascontiguousarray(JET_LUT[levels[:, ::-1, :]].transpose(0, 3, 1, 2))
    theirs = reference._resize_uint8(torch.from_numpy(rgb), size).numpy()
    np.testing.assert_array_equal(fast.resize_uint8(rgb, size), theirs)


@pytest.mark.parametrize("size", [256, 64])
def test_model_input_matches_torch_up_to_level_boundaries(blocks, size):
    theirs = reference.blocks_to_model_input(blocks, device="cpu", size=size).numpy()
    buffer = np.full((16, 3, size, size), np.nan, dtype=np.float32)
    ours = fast.blocks_to_model_input(blocks, size, out=buffer)
    assert ours.shape == (8, 3, size, size) and ours.dtype == np.float32
    assert np.shares_memory(ours, buffer)  # written into the caller's buffer
    diff = np.abs(ours - theirs)
    # a value lying on a colour-level boundary may fall on the other side in either path
    assert (diff > 1e-5).mean() < 1e-3
    assert diff.max() < 0.1
    # the silent block is the floor colour everywhere in both
    np.testing.assert_allclose(ours[1], theirs[1], atol=1e-6)


def test_analysis_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "import emotions.ser.spectrogram_numpy, emotions.ser.onnx_runtime, emotions.ser.audio\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
