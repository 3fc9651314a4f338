"""The ONNX Runtime path agrees with the PyTorch reference, records what ran, and analyses
a recording without importing torch once a model is exported."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from emotions.ser import audio, inference, networks, onnx_runtime, spectrogram_numpy
from emotions.ser.report import NO_SPEECH

LABELS = ["anger", "happy", "neutral", "sad"]
SIZE = 96


def _voiced_blocks(n: int, seed: int) -> np.ndarray:
    """Varied harmonic sounds, so the images (and the network's answers) differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(16_000) / 16_000
    f0 = rng.uniform(90, 300, (n, 1)) * (
        1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 4, (n, 1)) * t)
    )
    phase = 2 * np.pi * np.cumsum(f0, axis=1) / 16_000
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 6, (n, 1)) * t))
    noise = rng.uniform(0.001, 0.2, (n, 1)) * rng.standard_normal((n, 16_000))
    return (0.3 * voice * envelope + noise).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small network with a head fitted briefly, so its answers are not all alike."""
    torch.manual_seed(0)
    net = networks.build_network(
        "mobilenet_v3_small", len(LABELS), pretrained=False, seed=0, trainable="all"
    )
    blocks = _voiced_blocks(96, seed=1)
    images = torch.from_numpy(spectrogram_numpy.blocks_to_model_input(blocks, SIZE))
    targets = torch.arange(96) % len(LABELS)
    # BatchNorm statistics of these images (a scratch network's defaults flatten everything)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    net.train()
    with torch.no_grad():
        net(images)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()  # keep those statistics while the weights move
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(5):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(images), targets).backward()
        optimiser.step()
    net.eval()
    folder = tmp_path_factory.mktemp("model")
    checkpoint = folder / "model.pt"
    networks.save_checkpoint(net, checkpoint, {"labels": LABELS, "image_size": SIZE})
    card = onnx_runtime.export_for_inference(net, images, folder / "export")
    return net, checkpoint, folder / "export", card


def test_int8_export_agrees_with_pytorch_on_held_out_blocks(trained):
    net, _, export, card = trained
    assert card["image_size"] == SIZE and card["num_classes"] == len(LABELS)
    assert card["calibration"].endswith("training blocks")
    assert json.loads((export / onnx_runtime.CARD_FILE).read_text()) == card
    # ONNX fp32 is the same network
    assert card["fp32_agreement"]["top1"] == 1.0
    assert card["fp32_agreement"]["max_difference"] < 1e-4
    # the int8 model is chosen only when it agrees; either way the card says what runs
    if card["precision"] != "fp32":  # "int8", or "int8 trunk, fp32 head"
        int8 = card["int8_agreement"][card["precision"]]
        assert int8["top1"] >= 0.99 and int8["max_difference"] <= 0.02
    else:
        assert "int8 agreed" in card["int8_rejected"]

    # agreement measured here again, on blocks the export never saw
    held_out = spectrogram_numpy.blocks_to_model_input(_voiced_blocks(64, seed=9), SIZE)
    with torch.no_grad():
        reference = torch.softmax(networks.for_inference(net)(torch.from_numpy(held_out)), 1)
    fast = inference.Classifier.from_export(export, LABELS)
    assert fast.runtime == f"onnxruntime {card['precision']}"
    agreement = onnx_runtime.compare(reference.numpy(), fast.predict_images(held_out))
    assert agreement.top1 >= 0.99 and agreement.max_difference <= 0.02, agreement
    # the answers really differ between blocks (a constant model would agree trivially)
    assert len(set(reference.argmax(1).tolist())) > 1


def test_int8_that_disagrees_falls_back_to_fp32_and_says_why(trained, tmp_path, monkeypatch):
    net, *_ = trained
    monkeypatch.setattr(onnx_runtime, "MAX_PROBABILITY_DIFFERENCE", -1.0)
    images = spectrogram_numpy.blocks_to_model_input(_voiced_blocks(24, seed=2), SIZE)
    card = onnx_runtime.export_for_inference(net, images, tmp_path)
    assert card["precision"] == "fp32" and card["file"] == onnx_runtime.FP32_FILE
    assert "largest probability difference" in card["int8_rejected"]
    assert not (tmp_path / onnx_runtime.INT8_FILE).exists()  # both int8 scopes were tried
    assert set(card["int8_agreement"]) == {"int8", "int8 trunk, fp32 head"}
    assert inference.Classifier.from_export(tmp_path, LABELS).runtime == "onnxruntime fp32"


def test_onnx_analysis_matches_torch_segment_by_segment(trained, tmp_path):
    _, checkpoint, export, card = trained
    signal = np.concatenate([_voiced_blocks(20, seed=5).reshape(-1), np.zeros(24_000, np.float32)])
    path = audio.write_wav(tmp_path / "lecture.wav", signal[:-4_000], subtype="FLOAT")
    fast = inference.load_classifier(checkpoint, export, LABELS, device="cpu")
    assert fast.onnx is not None and fast.runtime == card["runtime"]
    reference = inference.Classifier.from_checkpoint(checkpoint, device="cpu")
    ours = [s for batch, _ in inference.classify_file(path, fast, vad=False) for s in batch]
    theirs = [s for batch, _ in inference.classify_file(path, reference, vad=False) for s in batch]
    assert [(s.index, s.start_s, s.end_s, s.is_silence) for s in ours] == [
        (s.index, s.start_s, s.end_s, s.is_silence) for s in theirs
    ]
    assert ours[-1].end_s == pytest.approx(21.25) and ours[-1].is_silence
    speech = [(a, b) for a, b in zip(ours, theirs, strict=True) if not a.is_silence]
    assert len(speech) == 20
    assert np.mean([a.label == b.label for a, b in speech]) >= 0.95
    diff = max(abs(a.probabilities[k] - b.probabilities[k]) for a, b in speech for k in LABELS)
    assert diff <= 0.02 + 0.01  # the export's tolerance, plus the input paths' level flips


def test_missing_export_is_made_from_the_recording_and_says_so(trained, tmp_path):
    _, checkpoint, _, _ = trained
    path = audio.write_wav(tmp_path / "lecture.wav", _voiced_blocks(12, seed=3).reshape(-1))
    classifier = inference.load_classifier(
        checkpoint, tmp_path / "export", LABELS, recording=path, device="cpu"
    )
    assert classifier.onnx is not None
    calibrated, source = classifier.card["calibration"].split(" ", 1)
    assert source == inference.LECTURE_CALIBRATION_SOURCE
    assert int(calibrated) + classifier.card["heldout_images"] == 12  # every block of sound
    assert onnx_runtime.read_card(tmp_path / "export") == classifier.card


def test_analysis_with_an_exported_model_never_imports_torch(trained, tmp_path):
    _, checkpoint, export, _ = trained
    path = audio.write_wav(tmp_path / "lecture.wav", _voiced_blocks(6, seed=4).reshape(-1))
    code = f"""
import sys
from emotions.ser import inference
c = inference.load_classifier({str(checkpoint)!r}, {str(export)!r}, {LABELS!r}, device="cpu")
rows = [s for batch, _ in inference.classify_file({str(path)!r}, c) for s in batch]
assert len(rows) == 6, rows
print(c.runtime, "torch" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False", out.stdout


def test_no_speech_blocks_are_never_spectrogrammed(trained, tmp_path, monkeypatch):
    """Silent and speechless blocks cost nothing: only speech reaches the model input."""
    _, _, export, _ = trained
    fast = inference.Classifier.from_export(export, LABELS)
    seen = []
    real = fast.model_input
    monkeypatch.setattr(fast, "model_input", lambda b, slot=0: seen.append(len(b)) or real(b, slot))

    class Detector:  # speech in even blocks only
        skipped = 0

        def speech_mask(self, blocks):
            return np.arange(len(blocks)) % 2 == 0

        def skip(self, blocks):
            Detector.skipped += len(blocks)

    blocks = _voiced_blocks(6, seed=6)
    blocks[4] = 0.0
    kinds = inference.block_kinds(blocks, detector=Detector())
    assert kinds.tolist() == [0, 2, 0, 2, 1, 2]
    path = audio.write_wav(tmp_path / "lecture.wav", blocks.reshape(-1), subtype="FLOAT")
    monkeypatch.setattr("emotions.ser.vad.SpeechDetector", lambda: Detector())
    rows = [s for batch, _ in inference.classify_file(path, fast) for s in batch]
    assert seen == [2]
    assert [s.label == NO_SPEECH for s in rows] == [False, True, False, True, False, True]
    assert [s.is_silence for s in rows] == [False, True, False, True, True, True]
    # a batch with nothing above the silence threshold never reaches the detector's model
    detector = Detector()
    assert inference.block_kinds(np.zeros((3, 16_000), np.float32), detector=detector).tolist() == [
        1,
        1,
        1,
    ]
    assert Detector.skipped == 3


def test_alexnet_at_256_exports_with_its_pooling_made_plain(tmp_path):
    """AlexNet pools 7 x 7 to 6 x 6 at 256 x 256, which the ONNX exporter cannot write as
    adaptive pooling; the export swaps in the equal plain pooling and gives the same logits."""
    net = networks.for_inference(
        networks.build_network("alexnet", len(LABELS), pretrained=False, seed=0)
    )
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        reference = net(x).numpy()
    onnx_runtime._export_onnx(net, tmp_path / "alexnet.onnx", 256)
    logits = onnx_runtime.OnnxModel(tmp_path / "alexnet.onnx").logits(x.numpy())
    np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-5)
    adaptive = [m for m in net.modules() if isinstance(m, torch.nn.AdaptiveAvgPool2d)]
    assert adaptive  # the caller's network keeps its own pooling
