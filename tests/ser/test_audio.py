"""Decoding, resampling, splitting and silence (emotions.ser.audio)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from emotions.ser.audio import (
    AudioDecodeError,
    AudioInfo,
    block_rms_dbfs,
    count_blocks,
    decode,
    iter_blocks,
    iter_decode,
    probe,
    silence_mask,
    split_blocks,
    write_wav,
)
from emotions.ser.constants import BLOCK_SAMPLES, SAMPLE_RATE

SR = SAMPLE_RATE


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    n = min(reference.size, test.size)
    err = test[:n].astype(np.float64) - reference[:n]
    return 10 * np.log10(np.sum(reference[:n].astype(np.float64) ** 2) / np.sum(err**2))


def best_lag(reference: np.ndarray, test: np.ndarray, max_lag: int = 400) -> int:
    core = reference[max_lag : reference.size - max_lag]
    n = min(reference.size, test.size)
    corr = np.correlate(test[:n], core, mode="valid")
    return int(np.argmax(corr)) - max_lag


@pytest.fixture
def speech_wav(tmp_path, make_speech):
    """A 2 s speech-like 16-bit WAV at 16 kHz and its decoded samples."""
    path = write_wav(tmp_path / "speech.wav", make_speech(2.0, seed=3))
    return path, decode(path)


# --- every format decodes to the WAV's samples -------------------------------------------------

# (name, suffix, container, audio codec, video codec, minimum waveform SNR in dB vs the WAV)
PYAV_FORMATS = [
    ("flac", ".flac", "flac", "flac", None, None),  # lossless: compared sample by sample
    ("mp3", ".mp3", "mp3", "libmp3lame", None, 12.0),
    ("opus", ".opus", "ogg", "libopus", None, 20.0),
    ("m4a-aac", ".m4a", "ipod", "aac", None, 20.0),
    ("mp4-video", ".mp4", "mp4", "aac", "mpeg4", 20.0),
    ("mkv-video", ".mkv", "matroska", "libopus", "mpeg4", 20.0),
    ("webm-video", ".webm", "webm", "libopus", "libvpx", 20.0),
]


@pytest.mark.parametrize(
    "name,suffix,container,codec,video,min_snr", PYAV_FORMATS, ids=[f[0] for f in PYAV_FORMATS]
)
def test_pyav_formats_decode_to_the_wav_samples(
    tmp_path, speech_wav, encode_audio, name, suffix, container, codec, video, min_snr
):
    _, reference = speech_wav
    path = encode_audio(
        reference, SR, tmp_path / f"clip{suffix}", container, codec, video_codec=video
    )
    decoded = decode(path)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    if min_snr is None:
        np.testing.assert_array_equal(decoded, reference)
        return
    # lossy codecs: same timing (no delay, at most one codec frame of padding at the end) and
    # the same waveform up to coding noise
    assert 0 <= decoded.size - reference.size <= 1024
    assert best_lag(reference, decoded) == 0
    assert snr_db(reference, decoded) >= min_snr


@pytest.mark.parametrize(
    "subtype,atol",
    [("PCM_U8", 1 / 64), ("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-8), ("FLOAT", 0)],
)
def test_wav_sample_formats_decode_to_the_same_samples(tmp_path, make_speech, subtype, atol):
    x = make_speech(1.5, seed=1)
    path = write_wav(tmp_path / f"{subtype}.wav", x, subtype=subtype)
    np.testing.assert_allclose(decode(path), x, atol=atol, rtol=0)


def test_double_wav_and_ogg_vorbis(tmp_path, speech_wav):
    _, reference = speech_wav
    double = tmp_path / "double.wav"
    sf.write(str(double), reference.astype(np.float64), SR, subtype="DOUBLE")
    np.testing.assert_array_equal(decode(double), reference)

    vorbis = tmp_path / "speech.ogg"
    sf.write(str(vorbis), reference, SR, format="OGG", subtype="VORBIS")
    decoded = decode(vorbis)
    assert decoded.size == reference.size
    assert best_lag(reference, decoded) == 0
    assert snr_db(reference, decoded) >= 15.0


def test_probe_reports_the_source_stream(tmp_path, make_speech, encode_audio):
    stereo = np.stack([make_speech(1.5, 48_000, seed=1), make_speech(1.5, 48_000, seed=2)], 1)
    wav = write_wav(tmp_path / "stereo48.wav", stereo, sr=48_000)
    assert probe(wav) == AudioInfo(1.5, 48_000, 2, "pcm_s16le")

    opus = encode_audio(stereo.T, 48_000, tmp_path / "s.opus", "ogg", "libopus")
    info = probe(opus)
    assert (info.sample_rate, info.channels, info.codec) == (48_000, 2, "opus")
    assert info.duration_s == pytest.approx(1.5, abs=0.03)


# --- sample rates, channels and odd signals ----------------------------------------------------


@pytest.mark.parametrize("source_sr", [8_000, 22_050, 44_100, 48_000])
def test_resampling_keeps_in_band_tones_exactly(tmp_path, source_sr):
    t = np.arange(int(1.5 * source_sr)) / source_sr
    tones = lambda t: 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t)  # noqa: E731
    path = write_wav(tmp_path / f"tones{source_sr}.wav", tones(t), sr=source_sr, subtype="FLOAT")
    decoded = decode(path)
    assert decoded.size == int(1.5 * SR)
    expected = tones(np.arange(decoded.size) / SR)
    inner = slice(200, -200)  # the resampling filter's edges
    np.testing.assert_allclose(decoded[inner], expected[inner], atol=2e-3)


def test_resampling_removes_content_above_8khz(tmp_path):
    t = np.arange(48_000) / 48_000
    path = write_wav(tmp_path / "hiss.wav", 0.5 * np.sin(2 * np.pi * 11_000 * t), sr=48_000)
    decoded = decode(path)
    # an 11 kHz tone cannot exist at 16 kHz: it must be filtered, not aliased to 5 kHz
    assert block_rms_dbfs(decoded[400:-400])[0] < -40


def test_stereo_is_the_mean_of_the_channels(tmp_path, make_speech):
    left = make_speech(1.0, seed=1)
    right = -0.5 * make_speech(1.0, seed=2)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], 1), subtype="FLOAT")
    np.testing.assert_allclose(decode(path), (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("channels", [8, 12])
def test_many_channels_are_their_mean(tmp_path, make_speech, channels):
    # PyAV 18 crashed the process reading planar frames of 8 or more channels.
    speech = make_speech(1.0, seed=3)
    gains = np.linspace(0.0, 1.0, channels)
    path = write_wav(tmp_path / "array.wav", np.outer(speech, gains), subtype="FLOAT")
    np.testing.assert_allclose(decode(path), speech * gains.mean(), atol=1e-6)


def test_silence_decodes_to_zeros_and_is_masked(tmp_path):
    path = write_wav(tmp_path / "silence.wav", np.zeros(int(2.5 * SR)))
    x = decode(path)
    assert x.size == int(2.5 * SR) and not x.any()
    blocks = split_blocks(x)
    assert blocks.shape == (3, BLOCK_SAMPLES)
    assert silence_mask(blocks).all()
    assert np.isneginf(block_rms_dbfs(blocks)).all()


def test_dc_only_signal_is_kept(tmp_path):
    path = write_wav(tmp_path / "dc.wav", np.full(SR, 0.25), subtype="FLOAT")
    x = decode(path)
    np.testing.assert_array_equal(x, np.full(SR, 0.25, dtype=np.float32))
    assert block_rms_dbfs(split_blocks(x))[0] == pytest.approx(20 * np.log10(0.25))
    assert not silence_mask(split_blocks(x)).any()


def test_clipped_input_stays_within_full_scale(tmp_path, make_speech):
    hot = np.clip(8 * make_speech(1.0), -1, 1)  # hard-clipped at 16-bit full scale
    x = decode(write_wav(tmp_path / "clipped.wav", hot))
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    np.testing.assert_allclose(x, hot, atol=1e-4)
    # a full-scale square wave resampled from 44.1 kHz overshoots (Gibbs): clipped back to 1
    t = np.arange(44_100) / 44_100
    square = np.sign(np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    y = decode(write_wav(tmp_path / "square.wav", square, sr=44_100, subtype="FLOAT"))
    assert np.abs(y).max() == 1.0


def test_float_wav_over_full_scale_is_clipped(tmp_path):
    path = write_wav(tmp_path / "loud.wav", np.array([0.5, 3.0, -2.0, 0.25]), subtype="FLOAT")
    np.testing.assert_array_equal(decode(path), np.array([0.5, 1.0, -1.0, 0.25], np.float32))


def test_nan_and_inf_samples_become_zero(tmp_path, make_speech):
    x = make_speech(1.0, seed=4)
    bad = x.copy()
    bad[[100, 2000, 3000]] = [np.nan, np.inf, -np.inf]
    path = write_wav(tmp_path / "nan.wav", bad, subtype="FLOAT")
    decoded = decode(path)
    expected = x.copy()
    expected[[100, 2000, 3000]] = 0.0
    np.testing.assert_array_equal(decoded, expected)

    # At 48 kHz the NaN is removed before the resampling filter, so it cannot spread: put it
    # on a quiet sample next to the loudest one; the output moves by that sample's small
    # value, instead of zeroing the loud samples the filter mixes it with.
    x48 = make_speech(1.0, sr=48_000, seed=4)
    loudest = int(np.argmax(np.abs(x48)))
    near = np.arange(loudest - 30, loudest + 30)
    quiet = int(near[np.argmin(np.abs(x48[near]))])
    bad48 = x48.copy()
    bad48[quiet] = np.nan
    clean = decode(write_wav(tmp_path / "clean48.wav", x48, sr=48_000, subtype="FLOAT"))
    dirty = decode(write_wav(tmp_path / "nan48.wav", bad48, sr=48_000, subtype="FLOAT"))
    assert np.isfinite(dirty).all()
    assert np.abs(dirty - clean).max() <= abs(x48[quiet])
    changed = np.flatnonzero(np.abs(dirty - clean) > 1e-6)
    assert changed.size > 0 and np.all(np.abs(changed - quiet // 3) < 64)


def test_very_short_input(tmp_path, make_speech):
    short = write_wav(tmp_path / "short.wav", make_speech(0.3))
    x = decode(short)
    assert x.size == int(0.3 * SR)
    assert split_blocks(x).shape == (0, BLOCK_SAMPLES)
    assert list(iter_blocks(short)) == []

    padded = decode(write_wav(tmp_path / "six.wav", make_speech(0.6)))
    blocks = split_blocks(padded)
    assert blocks.shape == (1, BLOCK_SAMPLES)
    np.testing.assert_array_equal(blocks[0, : padded.size], padded)
    assert not blocks[0, padded.size :].any()


def test_damaged_data_decodes_what_is_there(tmp_path, speech_wav, encode_audio):
    path, reference = speech_wav
    cut = tmp_path / "cut.wav"
    data = path.read_bytes()
    cut.write_bytes(data[: 44 + 2 * 12_345])  # the recording stopped mid-way
    np.testing.assert_allclose(decode(cut), reference[:12_345], atol=1e-4)

    mp3 = encode_audio(reference, SR, tmp_path / "ok.mp3", "mp3", "libmp3lame")
    damaged = bytearray(mp3.read_bytes())
    damaged[4_000:4_600] = np.random.default_rng(0).integers(0, 256, 600, np.uint8).tobytes()
    broken = tmp_path / "damaged.mp3"
    broken.write_bytes(bytes(damaged))
    x = decode(broken)
    # the frames around the damage are skipped (the rest of the timeline moves up by them)
    assert np.isfinite(x).all() and 0 <= reference.size - x.size <= SR // 2
    assert snr_db(reference[:8_000], x[:8_000]) > 12  # the start before the damage is intact


# --- unreadable files: one typed error naming the file -----------------------------------------


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, np.uint8).tobytes())


def _html(path):
    path.write_text("<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n" * 20)


def _empty(path):
    path.write_bytes(b"")


def _truncated_header(path):
    write_wav(path, np.zeros(SR))
    path.write_bytes(path.read_bytes()[:30])


def _header_only(path):
    write_wav(path, np.zeros(SR))
    path.write_bytes(path.read_bytes()[:44])


BAD_FILES = {
    "random-bytes.wav": (_random_bytes, "not a recognised"),
    "page.wav": (_html, "not a recognised"),
    "empty.wav": (_empty, "empty"),
    "truncated.wav": (_truncated_header, "not a recognised"),
    "header-only.wav": (_header_only, "no audio samples"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("reader", [decode, probe, lambda p: next(iter_blocks(p))])
def test_unreadable_files_raise_a_typed_error_naming_the_file(tmp_path, name, reader):
    make, reason = BAD_FILES[name]
    path = tmp_path / name
    make(path)
    with pytest.raises(AudioDecodeError) as caught:
        reader(path)
    assert caught.value.path == path
    assert name in str(caught.value)
    assert reason in caught.value.reason


def test_video_without_audio_raises(tmp_path, speech_wav, encode_audio):
    _, reference = speech_wav
    path = encode_audio(reference, SR, tmp_path / "silent-film.mp4", "mp4", "", video_codec="mpeg4")
    with pytest.raises(AudioDecodeError, match="silent-film.mp4") as caught:
        decode(path)
    assert "no audio stream" in caught.value.reason and "video" in caught.value.reason
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        probe(path)


def test_missing_file_and_directory_raise(tmp_path):
    with pytest.raises(AudioDecodeError, match="not found"):
        decode(tmp_path / "nowhere.wav")
    with pytest.raises(AudioDecodeError, match="not a regular file"):
        decode(tmp_path)


def test_decode_error_is_a_value_error():
    error = AudioDecodeError("somewhere/lecture.mp3", "bad")
    assert isinstance(error, ValueError)
    assert str(error) == "cannot decode audio from 'lecture.mp3': bad"


# --- streaming ---------------------------------------------------------------------------------


def test_iter_decode_chunks_equal_the_whole(tmp_path, make_speech):
    path = write_wav(tmp_path / "x.wav", make_speech(3.3, 44_100), sr=44_100)
    whole = decode(path)
    chunks = list(iter_decode(path, chunk_seconds=0.5))
    assert [c.size for c in chunks[:-1]] == [8_000] * (len(chunks) - 1)
    assert 0 < chunks[-1].size <= 8_000
    np.testing.assert_array_equal(np.concatenate(chunks), whole)


@pytest.mark.parametrize("seconds", [6.0, 7.3, 7.6])
@pytest.mark.parametrize("batch_blocks", [1, 3, 100])
def test_iter_blocks_equals_split_blocks_of_decode(tmp_path, make_speech, seconds, batch_blocks):
    path = write_wav(tmp_path / "x.wav", make_speech(seconds))
    expected = split_blocks(decode(path))
    batches = list(iter_blocks(path, batch_blocks=batch_blocks, chunk_seconds=0.7))
    firsts = [first for first, _ in batches]
    assert firsts == list(range(0, len(expected), batch_blocks))
    assert all(len(b) == batch_blocks for _, b in batches[:-1])
    np.testing.assert_array_equal(np.concatenate([b for _, b in batches]), expected)


def _peak_traced_bytes(path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        n_blocks = sum(len(b) for _, b in iter_blocks(path, batch_blocks=2, chunk_seconds=0.5))
        return n_blocks, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_the_file(tmp_path, make_speech):
    speech = make_speech(2.0)
    short = write_wav(tmp_path / "half-minute.wav", np.tile(speech, 15))
    long = write_wav(tmp_path / "two-minutes.wav", np.tile(speech, 60))
    n_short, peak_short = _peak_traced_bytes(short)
    n_long, peak_long = _peak_traced_bytes(long)
    assert (n_short, n_long) == (30, 120)
    assert peak_long < 1.25 * peak_short + 65_536  # same few blocks, 4x the audio
    assert peak_long < 120 * SR * 4 / 6  # far below the decoded two minutes


# --- splitting and silence ---------------------------------------------------------------------


def test_split_blocks_tail_policy():
    x = np.arange(3 * 100 + 60, dtype=np.float32)
    blocks = split_blocks(x, block_samples=100, min_tail_fraction=0.5)
    assert blocks.shape == (4, 100)
    np.testing.assert_array_equal(blocks.reshape(-1)[:360], x)
    assert not blocks[3, 60:].any()
    assert split_blocks(x, 100, min_tail_fraction=0.7).shape == (3, 100)
    assert split_blocks(x, 100, min_tail_fraction=0.0).shape == (4, 100)
    assert split_blocks(x[:300], 100, min_tail_fraction=0.0).shape == (3, 100)
    assert split_blocks(x[:399], 100, min_tail_fraction=1.0).shape == (3, 100)


def test_split_blocks_without_padding_is_a_view():
    x = np.zeros(3 * 100, dtype=np.float32)
    blocks = split_blocks(x, 100)
    assert np.shares_memory(blocks, x)


@pytest.mark.parametrize("n", [0, 1, 49, 50, 99, 100, 101, 150, 1234])
@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_count_blocks_matches_split_blocks(n, fraction):
    assert count_blocks(n, 100, fraction) == len(split_blocks(np.zeros(n), 100, fraction))


def test_split_blocks_rejects_bad_arguments():
    with pytest.raises(ValueError):
        split_blocks(np.zeros((2, 100)))
    with pytest.raises(ValueError):
        split_blocks(np.zeros(100), min_tail_fraction=1.5)
    with pytest.raises(ValueError):
        split_blocks(np.zeros(100), block_samples=0)


def test_silence_mask_uses_the_dbfs_threshold():
    t = np.arange(BLOCK_SAMPLES) / SR
    sine = np.sin(2 * np.pi * 440 * t)
    levels_db = np.array([0.0, -40.0, -49.0, -51.0, -70.0])
    # a full-scale sine is -3.01 dBFS: scale so each block's RMS sits at the given level
    blocks = np.stack([sine * np.sqrt(2) * 10 ** (db / 20) for db in levels_db])
    np.testing.assert_allclose(block_rms_dbfs(blocks), levels_db, atol=1e-3)
    assert silence_mask(blocks).tolist() == [False, False, False, True, True]
    assert silence_mask(blocks, threshold_dbfs=-45).tolist() == [False, False, True, True, True]


def test_write_wav_round_trip(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    path = write_wav(tmp_path / "f.wav", x, subtype="FLOAT")
    data, sr = sf.read(str(path), dtype="float32")
    assert sr == SR
    np.testing.assert_array_equal(data, x)
