"""SERSITE_DEVICE=cpu on a machine that reports CUDA: every path computes on the CPU, and the
job says so.

CUDA is faked present (torch.cuda.is_available -> True) on a machine without a usable GPU,
so any path that chose CUDA on its own would fail here moving a tensor there. The training
task runs in this process exactly as the worker runs it (workers.tasks.train_model).
"""

import numpy as np
import pytest
import torch

from emotions.models import Job
from emotions.ser import inference, spectrogram
from emotions.ser import training as core
from emotions.ser.device import DEVICE_ENV, choose_device
from tests.services.test_training import create, make_dataset, make_noises
from workers import tasks
from workers.device import device_description, device_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def cpu_forced_with_cuda_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # torch's optimizers ask the accelerator whether a CUDA graph is being captured whenever
    # CUDA reports present; that bookkeeping is torch's, not a device choice of ours.
    monkeypatch.setattr(
        torch.optim.Optimizer, "_accelerator_graph_capture_health_check", lambda self: None
    )
    monkeypatch.setenv(DEVICE_ENV, "auto")
    assert choose_device().type == "cuda"  # the fake works: auto would pick CUDA
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_training_inference_and_spectrograms_stay_on_the_cpu(
    make_user, cpu_forced_with_cuda_present, monkeypatch
):
    owner = make_user("researcher")
    dataset = make_dataset(owner, speakers=2, per_label=1)
    run = create(owner, dataset, noises=make_noises(owner, n=2), protocol="utterance")
    placed = []
    real_place = core.place_network

    def spy(net, device):
        placed.append(torch.device(device).type)
        return real_place(net, device)

    monkeypatch.setattr(core, "place_network", spy)

    # Training, as the worker runs it; the job records the device it computed on.
    tasks.train_model(run.job_id)
    job = Job.objects.get(pk=run.job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.device.startswith("cpu (") and job.device == device_description()
    assert device_name() == "cpu"
    assert placed and set(placed) == {"cpu"}
    run.refresh_from_db()

    # Inference with the trained model, on the default device.
    classifier = inference.Classifier.from_checkpoint(run.model.weights.path)
    assert classifier.device.type == "cpu"
    assert next(classifier.net.parameters()).device.type == "cpu"
    blocks = np.random.default_rng(0).standard_normal((2, 16_000)).astype(np.float32) * 0.1
    probabilities = classifier.predict_blocks(blocks)
    assert probabilities.shape == (2, 2)

    # Spectrograms and the training loop's own default.
    assert spectrogram.blocks_to_model_input(blocks, size=64).device.type == "cpu"
    assert spectrogram.blocks_to_rgb(blocks).device.type == "cpu"
    x = spectrogram.blocks_to_model_input(blocks, size=64)
    assert core.predict_proba(classifier.net, x).shape == (2, 2)
