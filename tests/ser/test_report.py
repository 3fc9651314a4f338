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
