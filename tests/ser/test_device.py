"""One device choice for the ML core: SERSITE_DEVICE, an explicit preference, or auto."""

import pytest
import torch

from emotions.ser.device import DEVICE_ENV, choose_device, describe_device


@pytest.fixture
def cuda_present(monkeypatch):
    """CUDA reported present (nothing is ever moved there in these tests)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.fixture
def cuda_absent(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_takes_cuda_when_present(monkeypatch, cuda_present):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert choose_device().type == "cuda"
    monkeypatch.setenv(DEVICE_ENV, "auto")
    assert choose_device().type == "cuda"


def test_the_environment_forces_the_cpu_although_cuda_is_present(monkeypatch, cuda_present):
    monkeypatch.setenv(DEVICE_ENV, " CPU ")
    assert choose_device() == torch.device("cpu")
    assert describe_device().startswith("cpu (")


def test_an_explicit_preference_wins_over_the_environment(monkeypatch, cuda_present):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert choose_device("cuda:1") == torch.device("cuda:1")
    assert choose_device(torch.device("cpu")) == torch.device("cpu")
    assert choose_device("auto").type == "cuda"


def test_cuda_asked_for_without_cuda_falls_back_to_the_cpu(monkeypatch, cuda_absent, caplog):
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    assert choose_device() == torch.device("cpu")
    assert "CUDA is not available" in caplog.text


@pytest.mark.parametrize("value", ["gpu", "tpu", "mps"])
def test_unknown_devices_are_refused_with_the_choices(monkeypatch, value):
    monkeypatch.setenv(DEVICE_ENV, value)
    with pytest.raises(ValueError, match="cpu, cuda or auto"):
        choose_device()
