import numpy as np
import pytest

from emotions.ser.report import SegmentResult, dominant_per_minute, smooth_probabilities, summarize


def seg(i, label, silent=False, conf=0.9, length=1.0):
    return SegmentResult(
        i, i * 1.0, i * 1.0 + length, silent, "" if silent else label, None if silent else conf, {}
    )


def test_summary_shares_and_silence():
    segments = [
        seg(0, "sad"),
        seg(1, "sad"),
        seg(2, "", True),
        seg(3, "anger", conf=0.2, length=0.5),
    ]
    summary = summarize(segments, ["anger", "sad"])
    assert summary["shares"] == {"anger": pytest.approx(0.5 / 2.5), "sad": pytest.approx(2 / 2.5)}
    assert summary["silence_s"] == 1.0 and summary["speech_s"] == 2.5
    assert summary["dominant"] == "sad"
    assert summary["duration_s"] == 3.5
    assert summary["low_confidence_segments"] == 1  # 0.2 < 1.5 / 2 classes


def test_dominant_per_minute_and_all_silent_minute():
    segments = [seg(i, "happy") for i in range(30)] + [seg(i, "sad") for i in range(30, 60)]
    segments[0:25] = [seg(i, "sad") for i in range(25)]
    segments += [seg(i, "", True) for i in range(60, 70)]
    assert dominant_per_minute(segments) == [
        {"minute": 0, "label": "sad"},
        {"minute": 1, "label": None},
    ]


def test_smoothing_is_a_centred_mean():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    out = smooth_probabilities(probs, 3)
    assert out[1] == pytest.approx([2 / 3, 1 / 3])
    assert out[0] == pytest.approx([0.5, 0.5])
    assert smooth_probabilities(probs, 1) is probs


def test_classifier_uses_the_image_size_the_model_was_trained_at(tmp_path):
    from emotions.ser import networks
    from emotions.ser.inference import Classifier

    net = networks.build_network("mobilenet_v3_small", 2, pretrained=False, seed=0)
    networks.save_checkpoint(net, tmp_path / "m.pt", {"labels": ["a", "b"], "image_size": 64})
    classifier = Classifier.from_checkpoint(tmp_path / "m.pt", device="cpu")
    assert classifier.image_size == 64
    seen = []
    classifier.net.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    probs = classifier.predict_blocks(np.zeros((3, 16_000), dtype=np.float32) + 0.01)
    assert probs.shape == (3, 2) and seen[0][-2:] == (64, 64)


# ---------------------------------------------------------------- the report's timeline

LABELS4 = ["anger", "happy", "neutral", "sad"]


def speech(i, label, p=0.8):
    rest = (1 - p) / 3
    probs = {lab: (p if lab == label else rest) for lab in LABELS4}
    return SegmentResult(i, float(i), float(i + 1), False, label, p, probs)


def quiet(i, label=""):
    return SegmentResult(i, float(i), float(i + 1), True, label, None, {})


def test_clock_is_h_mm_ss():
    from emotions.ser.report import clock

    assert [clock(t) for t in (0, 9.99, 61, 3599.5, 10_800)] == [
        "0:00:00",
        "0:00:09",
        "0:01:01",
        "0:59:59",
        "3:00:00",
    ]


def test_smoothing_moves_band_runs_and_minutes_together():
    from emotions.ser.report import build_timeline

    # Anger with single-second flips to happy every 4th second: raw runs are short.
    segments = [speech(i, "happy" if i % 4 == 3 else "anger") for i in range(120)]
    raw = build_timeline(segments, LABELS4, 1)
    smooth = build_timeline(segments, LABELS4, 5)
    assert len(raw.runs) == 60 and [r.label for r in smooth.runs] == ["anger"]
    assert smooth.band.tolist() == [0] * 120
    assert (smooth.smoothed.argmax(axis=1) == smooth.band).all()
    assert [m.label for m in smooth.per_minute] == ["anger", "anger"]
    assert smooth.per_minute[0].shares["anger"] == 1.0
    assert raw.per_minute[0].shares["happy"] == 0.25
    # Shares stay the model's own answers whatever the smoothing.
    assert smooth.shares() == raw.shares()


def test_silence_and_no_speech_are_not_emotions_and_stop_smoothing():
    from emotions.ser.report import NO_SPEECH_CODE, SILENCE_CODE, build_timeline

    segments = (
        [speech(i, "sad") for i in range(10)]
        + [quiet(i) for i in range(10, 15)]
        + [quiet(i, "no speech") for i in range(15, 75)]
        + [speech(i, "anger") for i in range(75, 80)]
    )
    tl = build_timeline(segments, LABELS4, 15)
    assert set(tl.band[10:15]) == {SILENCE_CODE} and set(tl.band[15:75]) == {NO_SPEECH_CODE}
    assert [r.label for r in tl.runs] == ["sad", "silence", "no speech", "anger"]
    assert tl.runs[1].confidence is None
    # Speech next to silence is averaged over speech only: sad stays sad at full strength.
    assert tl.smoothed[9, 3] == pytest.approx(0.8)
    assert [m.kind for m in tl.per_minute] == ["speech", "speech"]
    assert tl.per_minute[0].label == "sad"
    assert tl.seconds_of(NO_SPEECH_CODE) == 60 and tl.seconds_of(SILENCE_CODE) == 5
    only_quiet = build_timeline([quiet(i, "no_speech") for i in range(70)], LABELS4, 5)
    assert [(m.label, m.kind) for m in only_quiet.per_minute] == [
        (None, "no speech"),
        (None, "no speech"),
    ]
    assert only_quiet.as_dict()["dominant"] is None


def test_top_moments_prefer_long_and_confident_stretches():
    from emotions.ser.report import build_timeline

    segments = (
        [speech(i, "anger", 0.5) for i in range(0, 20)]  # long, unsure: 20 × 0.5 = 10
        + [speech(i, "sad") for i in range(20, 25)]
        + [speech(i, "anger", 0.95) for i in range(25, 40)]  # long and sure: 15 × 0.95
        + [speech(i, "sad") for i in range(40, 45)]
        + [speech(i, "anger", 0.9) for i in range(45, 48)]
    )
    moments = build_timeline(segments, LABELS4, 1).top_moments
    assert [(r.start_s, r.end_s) for r in moments["anger"]] == [(25, 40), (0, 20), (45, 48)]
    assert moments["anger"][0].confidence == pytest.approx(0.95)
    assert moments["happy"] == [] and len(moments["sad"]) == 2


def test_summary_carries_top_moments_and_no_speech():
    segments = [speech(i, "anger") for i in range(30)] + [
        quiet(i, "no speech") for i in range(30, 40)
    ]
    summary = summarize(segments, LABELS4)
    assert summary["no_speech_s"] == 10 and summary["silence_s"] == 0
    assert summary["top_moments"]["anger"][0]["start_s"] == 0
    assert summary["top_moments"]["anger"][0]["end_s"] == 30


def test_colours_are_distinct_and_dark_enough():
    from emotions.ser.report import colours_for

    def luminance(hex_colour):
        def lin(c):
            c /= 255
            return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)

    colours = colours_for(["anger", "happy", "neutral", "sad", "fear", "disgust", "odd", "x"])
    assert len(set(list(colours.values())[:6])) == 6
    for colour in colours.values():
        assert 1.05 / (luminance(colour) + 0.05) >= 3.0, colour  # WCAG 1.4.11 against white
    usual = sorted(luminance(colours[k]) for k in ("anger", "happy", "neutral", "sad"))
    # In greyscale the four usual classes stay apart (relative luminance steps ≥ 0.03).
    assert all(b - a >= 0.03 for a, b in zip(usual, usual[1:], strict=False))
