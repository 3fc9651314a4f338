"""Backbones, freezing, weights files and checkpoints (emotions.ser.networks)."""

import hashlib
import shutil

import numpy as np
import pytest
import torch
import torchvision

from emotions.ser import networks
from emotions.ser.constants import BACKBONES
from emotions.ser.networks import (
    SCRATCH_PROVENANCE,
    WeightsError,
    build_network,
    find_weights,
    import_weights,
    load_checkpoint,
    save_checkpoint,
)
from emotions.ser.training import TrainConfig, predict_proba, train


def trainable_names(net: networks.SERNetwork) -> set[str]:
    """Names (torchvision layout) of the parameters that the optimiser will update."""
    model = net.torchvision_model
    return {name for name, p in model.named_parameters() if p.requires_grad}


def images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- freezing


def test_alexnet_trains_conv5_and_dense_layers_only_and_keeps_trunk_bit_identical():
    net = build_network("alexnet", 3, seed=0)

    assert net.provenance == SCRATCH_PROVENANCE and not net.pretrained
    # Method: conv1-conv4 (with conv4's ReLU) frozen; conv5 and all dense layers trained.
    assert isinstance(net.trunk[-2], torch.nn.Conv2d) and net.trunk[-2].out_channels == 256
    assert isinstance(net.trunk[-1], torch.nn.ReLU)
    assert trainable_names(net) == {
        f"{layer}.{kind}"
        for layer in ("features.10", "classifier.1", "classifier.4", "classifier.6")
        for kind in ("weight", "bias")
    }
    assert not any(p.requires_grad for p in net.trunk.parameters())

    trunk_before = {k: v.clone() for k, v in net.trunk.state_dict().items()}
    head_before = {k: v.clone() for k, v in net.head.named_parameters()}
    # Without the feature cache the gradient flows through the trunk's graph.
    config = TrainConfig(epochs=1, batch_size=4, lr=0.01, cache_trunk_features=False)
    train(net, images(4), torch.tensor([0, 1, 2, 0]), config)

    for key, value in net.trunk.state_dict().items():
        assert torch.equal(value.cpu(), trunk_before[key]), key
    for name, param in net.head.named_parameters():
        assert not torch.equal(param.cpu(), head_before[name]), name


def test_mobilenet_v2_freezes_early_blocks_and_its_batchnorm_stays_in_eval():
    net = build_network("mobilenet_v2", 4, seed=0)

    names = trainable_names(net)
    trained_blocks = {int(n.split(".")[1]) for n in names if n.startswith("features.")}
    assert trained_blocks == set(range(14, 19))
    assert {"classifier.1.weight", "classifier.1.bias"} <= names
    frozen = {n for n, _ in net.torchvision_model.named_parameters()} - names
    assert frozen and all(int(n.split(".")[1]) < 14 for n in frozen)

    net.train()
    trunk_bn = [m for m in net.trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    head_bn = [m for m in net.head.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert trunk_bn and not any(m.training for m in trunk_bn)
    assert head_bn and all(m.training for m in head_bn)


def test_trainable_all_and_classifier_move_the_split():
    everything = build_network("mobilenet_v3_small", 2, pretrained=False, trainable="all")
    assert not everything.has_trunk
    assert all(p.requires_grad for p in everything.parameters())

    classifier = build_network("mobilenet_v3_small", 2, pretrained=False, trainable="classifier")
    assert all(n.startswith("classifier.") for n in trainable_names(classifier))
    assert len(trainable_names(classifier)) == 4  # two Linear layers

    with pytest.raises(ValueError, match="trainable"):
        build_network("mobilenet_v3_small", 2, trainable="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backbone"):
        build_network("vgg16", 2)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_outputs_num_classes_and_matches_torchvision(backbone):
    net = build_network(backbone, 5, pretrained=False, seed=1)
    net.eval()
    x = images(2, seed=2)

    with torch.no_grad():
        out = net(x)
        reference = net.torchvision_model.eval()(x)

    assert out.shape == (2, 5)
    assert net.num_classes == 5 and net.backbone == backbone
    # Splitting into trunk and head must not change the computation.
    torch.testing.assert_close(out, reference, rtol=0, atol=0)


# ---------------------------------------------------------------- MobileNetV2 package weights


def test_mobilenet_v2_imagenet_weights_load_with_verified_checksum():
    path = networks.mobilenet_v2_weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == networks.MOBILENET_V2_SHA256

    net = build_network("mobilenet_v2", 3)

    assert net.pretrained
    assert net.provenance == (
        "ImageNet-1k (torchvision MobileNet_V2_Weights.IMAGENET1K_V1, sha256 b0353104…)"
    )
    file_weights = torch.load(path, map_location="cpu", weights_only=True)
    loaded = net.backbone_state_dict()
    for key in ("features.0.0.weight", "features.18.1.running_var"):
        assert torch.equal(loaded[key], file_weights[key]), key
    assert loaded["classifier.1.weight"].shape == (3, 1280)


def test_tampered_mobilenet_v2_weights_are_rejected(tmp_path, monkeypatch):
    tampered = tmp_path / "mobilenet_v2-b0353104.pth"
    shutil.copyfile(networks.mobilenet_v2_weights_path(), tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr(networks, "_packaged_mobilenet_v2_file", lambda: tampered)

    with pytest.raises(WeightsError, match="checksum"):
        networks.mobilenet_v2_weights_path()
    with pytest.raises(WeightsError, match="checksum"):
        build_network("mobilenet_v2", 3)


def test_missing_weights_package_means_training_from_scratch(monkeypatch):
    monkeypatch.setattr(networks, "_packaged_mobilenet_v2_file", lambda: None)

    net = build_network("mobilenet_v2", 3)

    assert not net.pretrained and net.weights_sha256 is None
    assert net.provenance == "no ImageNet weights: trained from scratch"
    with pytest.raises(WeightsError, match="not installed"):
        networks.mobilenet_v2_weights_path()


def test_pretrained_false_ignores_available_weights():
    net = build_network("mobilenet_v2", 3, pretrained=False)
    assert not net.pretrained and net.provenance == SCRATCH_PROVENANCE


# ---------------------------------------------------------------- imported weights


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A random state dict with torchvision AlexNet's keys and shapes, saved as a file."""
    with torch.device("meta"):
        reference = torchvision.models.alexnet(weights=None).state_dict()
    # Half precision and zeros keep the 61M-parameter file small and quick to write.
    state = {k: torch.zeros(v.shape, dtype=torch.float16) for k, v in reference.items()}
    state["features.0.weight"] = torch.randn(64, 3, 11, 11).half()
    path = tmp_path_factory.mktemp("src") / "my-alexnet.pth"
    torch.save(state, path)
    return path


def test_import_weights_accepts_an_alexnet_state_dict_and_builds_from_it(alexnet_file, tmp_path):
    imported = import_weights("alexnet", alexnet_file, tmp_path / "weights")

    sha256 = hashlib.sha256(alexnet_file.read_bytes()).hexdigest()
    assert imported.sha256 == sha256
    assert imported.path.parent == tmp_path / "weights"
    assert imported.path.read_bytes() == alexnet_file.read_bytes()
    assert find_weights("alexnet", tmp_path / "weights") == imported
    assert find_weights("resnet18", tmp_path / "weights") is None

    net = build_network("alexnet", 4, weights_dir=tmp_path / "weights")

    assert net.pretrained and net.weights_sha256 == sha256
    assert sha256[:8] in net.provenance and "not a known torchvision file" in net.provenance
    first_conv = net.trunk[0].weight
    assert first_conv.dtype == torch.float32
    assert torch.equal(first_conv, torch.load(alexnet_file, weights_only=True)["features.0.weight"])


def test_imported_weights_changed_after_import_are_rejected(alexnet_file, tmp_path):
    imported = import_weights("alexnet", alexnet_file, tmp_path)
    with imported.path.open("ab") as f:
        f.write(b"\0")

    with pytest.raises(WeightsError, match="changed since import"):
        build_network("alexnet", 4, weights_dir=tmp_path)


def test_known_torchvision_alexnet_file_is_named_as_such():
    provenance = networks.weights_provenance("alexnet", "7be5be79" + "0" * 56)
    assert provenance == "ImageNet-1k (torchvision AlexNet_Weights.IMAGENET1K_V1, sha256 7be5be79…)"


def test_import_weights_rejects_another_architecture(tmp_path):
    other = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    src = tmp_path / "mnv3.pth"
    torch.save(other, src)

    with pytest.raises(WeightsError, match="not torchvision alexnet ImageNet weights"):
        import_weights("alexnet", src, tmp_path / "weights")
    assert not (tmp_path / "weights").exists() or not any((tmp_path / "weights").iterdir())


def test_check_architecture_names_a_wrong_shape():
    state = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    networks.check_architecture("mobilenet_v3_small", state)  # the real thing passes
    state["classifier.3.weight"] = torch.zeros(10, 1024)

    with pytest.raises(WeightsError, match=r"wrong shapes: classifier\.3\.weight \(10, 1024\)"):
        networks.check_architecture("mobilenet_v3_small", state)


@pytest.mark.parametrize(
    "content",
    [b"this is not a checkpoint", b""],
    ids=["text", "empty"],
)
def test_import_weights_rejects_a_non_checkpoint_file(tmp_path, content):
    src = tmp_path / "alexnet.pth"
    src.write_bytes(content)

    with pytest.raises(WeightsError, match="not a PyTorch weights file"):
        import_weights("alexnet", src, tmp_path / "weights")


def test_import_weights_rejects_a_checkpoint_that_is_not_a_state_dict(tmp_path):
    src = tmp_path / "alexnet.pth"
    torch.save([torch.zeros(3)], src)

    with pytest.raises(WeightsError, match="does not hold a state dict"):
        import_weights("alexnet", src, tmp_path / "weights")
    with pytest.raises(WeightsError, match="does not exist"):
        import_weights("alexnet", tmp_path / "missing.pth", tmp_path / "weights")


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    net = build_network("mobilenet_v3_small", 3, pretrained=False, seed=0)
    x, y = images(12, size=32), torch.arange(12) % 3
    # One epoch moves the head's weights and BatchNorm statistics away from their init.
    # On the CPU, so that predictions can be compared bit for bit.
    train(net, x, y, TrainConfig(epochs=1, batch_size=6, lr=0.05, device="cpu"))
    labels = ["angry", "happy", "sad"]
    path = tmp_path / "model.pt"

    save_checkpoint(net, path, {"labels": labels, "config": {"epochs": 1}, "snrs": (15.0, 20.0)})
    loaded, extra = load_checkpoint(path)

    assert extra == {"labels": labels, "config": {"epochs": 1}, "snrs": (15.0, 20.0)}
    assert (loaded.backbone, loaded.num_classes, loaded.trainable) == (
        "mobilenet_v3_small",
        3,
        "default",
    )
    assert loaded.provenance == net.provenance and loaded.pretrained == net.pretrained
    assert not any(p.requires_grad for p in loaded.trunk.parameters())
    expected = predict_proba(net, x, batch_size=5, device="cpu")
    assert (predict_proba(loaded, x, batch_size=5, device="cpu") == expected).all()


def test_checkpoint_refuses_non_plain_extra_and_foreign_files(tmp_path):
    net = build_network("mobilenet_v3_small", 2, pretrained=False)
    with pytest.raises(TypeError, match="plain data"):
        save_checkpoint(net, tmp_path / "a.pt", {"path": tmp_path})

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(WeightsError, match="not a sersite network checkpoint"):
        load_checkpoint(foreign)


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "alexnet"])
def test_inference_copy_folds_batchnorm_and_predicts_the_same(backbone):
    net = build_network(backbone, 3, pretrained=False, seed=3)
    x = torch.randn(4, 3, 64, 64)
    fast = networks.for_inference(net)
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert has_bn == (backbone == "mobilenet_v2")
    assert fast.num_classes == 3
    np.testing.assert_allclose(predict_proba(fast, x), predict_proba(net, x), atol=1e-5)
