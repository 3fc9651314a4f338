"""A tiny training run queued through the HTTP API is trained by a real worker: its epochs
arrive over the WebSocket, the model is saved with its evaluation, and a second run
cancelled mid-training ends cancelled without a model."""

import csv
import io
import json
import signal
import subprocess
import sys
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from emotions.models import EmotionModel, TrainingRun
from tests.live import TERMINAL, receive, wait_for_state, ws_connect
from tests.services.test_training import BACKBONE, TINY, make_dataset, make_noises

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]  # where manage.py is


class JobEvents:
    """The user's job events over the WebSocket, as a page gets them: when the server drops
    the socket (seen under heavy CPU load: the channel layer's Redis read times out), it
    reconnects and subscribes to the job, whose snapshot then says where the job is."""

    def __init__(self, live_url: str, http) -> None:
        self.live_url, self.http = live_url, http
        self.sockets = ExitStack()
        self.ws = self.sockets.enter_context(ws_connect(live_url, http, "/ws/jobs/"))
        self.reconnects = 0

    def next(self, job_id: int, deadline: float) -> dict:
        """The next message about ``job_id``."""
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no news of job {job_id} in time"
            try:
                msg = receive(self.ws, remaining)
            except ConnectionClosed:
                self.reconnect(job_id)
                continue
            if msg.get("job", {}).get("id") == job_id:
                return msg

    def until_terminal(self, job_id: int, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        events = []
        while True:
            events.append(self.next(job_id, deadline))
            last = events[-1]
            if last["job"]["state"] in TERMINAL and last["type"] in {"state", "snapshot"}:
                return events

    def reconnect(self, job_id: int) -> None:
        self.reconnects += 1
        assert self.reconnects <= 3, "the WebSocket keeps dropping"
        warnings.warn("the server dropped the WebSocket; reconnected", stacklevel=2)
        self.ws = self.sockets.enter_context(ws_connect(self.live_url, self.http, "/ws/jobs/"))
        self.ws.send(json.dumps({"action": "subscribe", "job": job_id}))

    def close(self) -> None:
        self.sockets.close()


def test_tiny_run_streams_epochs_and_saves_an_evaluated_model(
    make_user, login_as, live_url, celery_worker
):
    user = make_user("researcher")
    dataset, noises = make_dataset(user), make_noises(user)
    http = login_as("researcher")
    body = {
        "dataset": dataset.pk,
        "preset": "mixup",
        "protocol": "speaker",
        "noises": [n.pk for n in noises],
        # The default network, from its packaged ImageNet weights; small images, few epochs.
        "config": {"epochs": 2, "batch_size": 16, "image_size": 64, "lr": 0.01},
    }
    live = JobEvents(live_url, http)
    started = time.monotonic()
    answer = http.post(f"{live_url}/api/training-runs/", json=body)
    assert answer.status_code == 201, answer.text
    run = answer.json()
    # A double click while it is queued or running is refused.
    assert http.post(f"{live_url}/api/training-runs/", json=body).status_code == 409
    events = live.until_terminal(run["job"]["id"], timeout=300)
    elapsed = time.monotonic() - started
    live.close()
    assert events[-1]["job"]["state"] == "succeeded", events[-1]["job"]
    print(f"\ntiny mix-up run (2 epochs): {elapsed:.1f} s end to end")

    epochs = [(e["data"]["run"], e["data"]["epoch"]) for e in events if e["type"] == "epoch"]
    if not live.reconnects:  # else some events fell in the gap; the API has them all below
        assert epochs == [(run["id"], 1), (run["id"], 2)]
        training = [
            e["data"] for e in events if e["type"] == "progress" and e["job"]["stage"] == "training"
        ]
        assert training and {"epoch", "batch", "loss", "accuracy", "eta_s"} <= set(training[-1])
    assert epochs, "no epoch event arrived over the WebSocket"
    for e in events:
        if e["type"] == "epoch":
            assert 0 <= e["data"]["accuracy"] <= 1 and e["data"]["loss"] > 0
            assert "val_accuracy" in e["data"]

    model = EmotionModel.objects.get()
    assert set(model.metrics) == {"clean", "15dB", "20dB", "40dB"}
    # Pitch tells the two emotions apart, for speakers never heard in training too.
    assert model.metrics["clean"]["accuracy"] >= 0.75, model.metrics["clean"]
    assert model.pretrained and model.backbone == "mobilenet_v2" and not model.synthetic_speech
    assert model.provenance.startswith("ImageNet-1k (torchvision MobileNet_V2_Weights")
    assert model.weights.storage.exists(model.weights.name)

    detail = http.get(f"{live_url}/api/training-runs/{run['id']}/").json()
    assert detail["model"]["id"] == model.pk
    assert [h["epoch"] for h in detail["history"]] == [1, 2]
    assert detail["split"]["protocol"] == "speaker" and detail["split"]["fingerprint"]
    timing = detail["split"]["timing"]
    cache = detail["split"]["blocks_cache"]
    print(f"timing {timing}; blocks {cache}")
    rows = list(
        csv.reader(io.StringIO(http.get(f"{live_url}/api/training-runs/{run['id']}/csv/").text))
    )
    assert rows[0][:2] == ["Test set", "Accuracy (%)"]
    assert [r[0] for r in rows[1:5]] == ["clean", "15dB", "20dB", "40dB"]

    # The classical baselines were fitted on the same split and scored on every test set.
    baselines = detail["baselines"]
    assert set(baselines) == {
        "spectral_stats_hgb",
        "spectral_stats_logreg",
        "egemaps_logreg",
        "egemaps_hgb",
    }
    n_test = detail["split"]["n_test_blocks"]
    for baseline in baselines.values():
        assert set(baseline["metrics"]) == {"clean", "15dB", "20dB", "40dB"}
        assert all(m["n"] == n_test for m in baseline["metrics"].values())
        assert set(model.metrics["clean"]) <= set(baseline["metrics"]["clean"]) | {"f1_weighted"}
    names = [b["name"] for b in baselines.values()]
    baseline_rows = [r[0] for r in rows[5:]]
    assert baseline_rows == [f"{s} ({n})" for n in names for s in ("clean", "15dB", "20dB", "40dB")]
    results = http.get(f"{live_url}/api/training-runs/{run['id']}/results/").json()
    assert results["baselines"] == baselines
    comparison = results["baseline_comparison"]
    assert [s["test_set"] for s in comparison["sets"]] == ["clean", "15dB", "20dB", "40dB"]
    page = http.get(f"{live_url}/train/runs/{run['id']}/").text
    assert "Confusion matrices" in page and "40dB" in page
    assert "Against classical baselines" in page and comparison["summary"] in page
    assert all(name in page for name in names)
    for sentence in comparison["shortfalls"]:  # every lost comparison is said in words
        assert sentence.replace("'", "&#x27;") in page

    # Per-item predictions: one row per test block and test set, a probability per class.
    answer = http.get(f"{live_url}/api/training-runs/{run['id']}/predictions/")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(table) == 4 * n_test
    assert {"item", "speaker", "snr_db", "noise", "true", "predicted"} <= set(table[0])
    assert {"p_angry", "p_calm"} <= set(table[0])
    assert {r["speaker"] for r in table} == set(detail["split"]["test_speakers"])
    assert {r["noise"] for r in table if r["test_set"] == "clean"} == {""}
    test_noise_names = {n["name"] for n in detail["test_noises"]}
    assert {r["noise"] for r in table if r["test_set"] != "clean"} <= test_noise_names
    models = http.get(f"{live_url}/api/models/").json()["results"]
    assert [m["id"] for m in models] == [model.pk]


def test_cancel_mid_training_ends_cancelled_without_a_model(
    make_user, login_as, live_url, celery_worker
):
    user = make_user("researcher")
    dataset, noises = make_dataset(user), make_noises(user, n=1)
    http = login_as("researcher")
    # Many slow epochs (whole network, no feature cache) so the cancel lands mid-training.
    config = {**TINY, "epochs": 300, "trainable": "all", "cache_trunk_features": False}
    body = {
        "dataset": dataset.pk,
        "preset": "clean",
        "protocol": "utterance",
        "noises": [noises[0].pk],
        "backbone": BACKBONE,
        "config": config,
    }
    live = JobEvents(live_url, http)
    run = http.post(f"{live_url}/api/training-runs/", json=body).json()
    job_id = run["job"]["id"]
    deadline = time.monotonic() + 240
    while True:
        msg = live.next(job_id, deadline)
        assert msg["job"]["state"] in {"queued", "running"}, msg["job"]
        if msg["type"] == "epoch" or (
            msg["type"] == "snapshot" and msg["job"]["stage"] == "training"
        ):
            break
    answer = http.post(f"{live_url}/api/jobs/{job_id}/cancel/")
    assert answer.status_code == 200, answer.text
    asked = time.monotonic()
    events = live.until_terminal(job_id, timeout=60)
    live.close()
    assert events[-1]["job"]["state"] == "cancelled"
    print(f"\ncancel took effect in {time.monotonic() - asked:.1f} s")
    job = wait_for_state(http, live_url, job_id, {"cancelled"})
    assert job["state"] == "cancelled"
    assert not EmotionModel.objects.exists()
    assert TrainingRun.objects.get(pk=run["id"]).model is None
    assert http.get(f"{live_url}/api/training-runs/{run['id']}/csv/").status_code == 409


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_cli_run_cancels_its_job_and_the_same_run_can_start_again(
    make_user, live_env, stop
):
    from emotions.services import training

    user = make_user("researcher")
    dataset, noises = make_dataset(user), make_noises(user, n=1)
    # Many slow epochs (whole network, no feature cache) so the signal lands mid-training.
    args = ["--dataset", str(dataset.pk), "--preset", "clean", "--protocol", "utterance"]
    args += ["--backbone", BACKBONE, "--epochs", "300", "--image-size", "64"]
    args += ["--batch-size", "16", "--trainable", "all", "--no-cache-trunk-features"]
    args += ["--no-pretrained", "--no-baselines", "--noises", str(noises[0].pk)]
    command = [sys.executable, "manage.py", "train", *args]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=live_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            run = TrainingRun.objects.select_related("job").filter(dataset=dataset).first()
            if run and run.job.state == "running" and run.job.stage == "training":
                break
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the command never started training"
            time.sleep(0.3)
        proc.send_signal(stop)
        output = proc.communicate(timeout=90)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert f"Interrupted ({stop.name}): the run was cancelled, no model saved." in output
    run.job.refresh_from_db()
    assert run.job.state == "cancelled" and run.job.message == "Interrupted in the terminal."
    assert not EmotionModel.objects.exists()

    # The identical run is not blocked by the interrupted one.
    again = training.create_training_run(
        user,
        dataset,
        preset=run.preset,
        protocol=run.protocol,
        noises=noises,
        backbone=BACKBONE,
        config={k: v for k, v in run.config.items() if k not in ("backbone", "kfold")},
        seed=run.seed,
        dispatch=False,
    )
    assert again.job.params["fingerprint"] == run.job.params["fingerprint"]
