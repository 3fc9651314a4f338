"""Shared fixtures: users, and the real moving parts — a Celery worker process and the
site's ASGI server (Uvicorn, as `make run` starts it) — started against the test
database, Redis and channel layer.

Each test run uses its own Redis key prefix (broker, results, channel layer), so it
never crosses a running site or another test run on the same Redis.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
RUN_PREFIX = f"sersite-test-{os.getpid()}"
# Shared by this process, the worker and the web server (as a remote store would be).
LIVE_MEDIA_ROOT = Path(tempfile.gettempdir()) / f"{RUN_PREFIX}-media"
# Workers' ONNX export cache for this run (outside the media folder, as in production).
LIVE_INFERENCE_DIR = Path(tempfile.gettempdir()) / f"{RUN_PREFIX}-inference"


def pytest_configure(config):
    from django.conf import settings

    if not settings.configured:  # run without Django (-p no:django): the ML core only
        return
    settings.REDIS_KEY_PREFIX = RUN_PREFIX
    settings.MEDIA_ROOT = LIVE_MEDIA_ROOT
    settings.INFERENCE_DIR = LIVE_INFERENCE_DIR
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = RUN_PREFIX
    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": f"{RUN_PREFIX}:"}
    from sersite.celery import app

    app.conf.broker_transport_options = options
    app.conf.result_backend_transport_options = options


# ---------------------------------------------------------------- users


def pytest_unconfigure(config):
    shutil.rmtree(LIVE_MEDIA_ROOT, ignore_errors=True)
    shutil.rmtree(LIVE_INFERENCE_DIR, ignore_errors=True)


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, password: str = "pw-for-tests-1", **extra):
        return django_user_model.objects.create_user(username, password=password, **extra)

    return make


# ---------------------------------------------------------------- live processes


def _database_url() -> str:
    """A URL for the *test* database, for processes other than this one."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    original = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(original._replace(path="/" + settings_dict["NAME"]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_env(django_db_setup, django_db_blocker) -> dict[str, str]:
    from django.conf import settings

    LIVE_MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url(),
        REDIS_KEY_PREFIX=RUN_PREFIX,
        SECRET_KEY=settings.SECRET_KEY,
        MEDIA_ROOT=str(LIVE_MEDIA_ROOT),
        INFERENCE_DIR=str(LIVE_INFERENCE_DIR),
        SERSITE_TESTING="1",
        DEBUG="0",
        PYTHONUNBUFFERED="1",
        # One torch thread per worker: on 2 cores shared with the test process and the
        # server, more threads only contend (measured 10-20x slower per image under load).
        OMP_NUM_THREADS="1",
        JOB_HEARTBEAT_TIMEOUT=str(settings.JOB_HEARTBEAT_TIMEOUT),
    )
    return env


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed when the process is reaped
    # A session of its own, so a test can kill the process with all its children.
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


def start_worker(
    env: dict, logs_dir: Path, name: str = "test", queues: str = "cpu,gpu"
) -> subprocess.Popen:
    from sersite.celery import app

    hostname = f"{name}-{os.getpid()}@{socket.gethostname()}"
    cmd = [sys.executable, "-m", "celery", "-A", "sersite", "worker", "-Q", queues, "-c", "1"]
    cmd += ["-n", hostname, "-l", "info", "--without-gossip", "--without-mingle"]
    proc = _start(cmd, env, logs_dir / f"worker-{name}.log")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((logs_dir / f"worker-{name}.log").read_text()[-3000:])
        replies = app.control.ping(destination=[hostname], timeout=0.5) or []
        if replies:
            proc.hostname = hostname
            return proc
    _stop(proc)
    raise RuntimeError("the Celery worker did not answer within 90 s")


@pytest.fixture(scope="session")
def celery_worker(live_env, logs_dir):
    proc = start_worker(live_env, logs_dir)
    yield proc
    _stop(proc)


def server_command(port: int) -> list[str]:
    """The site's ASGI server as `make run` starts it (sersite.server), on loopback."""
    return [sys.executable, "-m", "sersite.server", "--host", "127.0.0.1", "--port", str(port)]


def start_server(env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    """Start the site's server on a free port; return it and its URL once it answers."""
    port = _free_port()
    proc = _start(server_command(port), env, log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace")[-3000:])
        try:
            requests.get(url + "/accounts/login/", timeout=1)
            return proc, url
        except requests.RequestException:  # not listening yet, or too busy to answer
            time.sleep(0.2)
    _stop(proc)
    raise RuntimeError("the web server did not answer within 60 s")


@pytest.fixture(scope="session")
def live_url(live_env, logs_dir) -> str:
    proc, url = start_server(live_env, logs_dir / "web.log")
    yield url
    _stop(proc)


def login(url: str, username: str, password: str = "pw-for-tests-1") -> requests.Session:
    """Sign in through the real login page; the session carries cookie and CSRF token."""
    session = requests.Session()
    session.get(url + "/accounts/login/", timeout=10).raise_for_status()
    answer = session.post(
        url + "/accounts/login/",
        data={"username": username, "password": password, "next": "/"},
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": url + "/"},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302, f"login failed: {answer.status_code}"
    session.headers.update({"X-CSRFToken": session.cookies["csrftoken"], "Referer": url + "/"})
    return session


@pytest.fixture
def login_as(live_url):
    return lambda username, password="pw-for-tests-1": login(live_url, username, password)


# ---------------------------------------------------------------- audio and models

LABELS = ["anger", "happy", "neutral", "sad"]


def lecture_signal(seconds_speech_a=2.0, seconds_silence=2.0, seconds_speech_b=2.5, sr=16_000):
    """Speech-like sound (harmonics with syllable-rate envelope), digital silence, more sound."""
    import numpy as np

    rng = np.random.default_rng(7)

    def voiced(seconds, f0):
        t = np.arange(int(seconds * sr)) / sr
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
        return (0.2 * tone * envelope + 0.01 * rng.standard_normal(t.size)).astype("float32")

    silence = np.zeros(int(seconds_silence * sr), dtype="float32")
    return np.concatenate([voiced(seconds_speech_a, 140), silence, voiced(seconds_speech_b, 210)])


@pytest.fixture(scope="session")
def checkpoint_file(tmp_path_factory) -> Path:
    """A small scratch network (MobileNetV3-small, 4 classes) saved like a trained model."""
    from emotions.ser import networks

    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    net = networks.build_network("mobilenet_v3_small", len(LABELS), pretrained=False, seed=1)
    networks.save_checkpoint(net, path, {"labels": LABELS})
    return path


@pytest.fixture
def emotion_model(make_user, checkpoint_file):
    """An active, shared model in the database, its weights in storage."""
    from django.core.files import File

    from emotions.models import EmotionModel

    owner = make_user("trainer", is_staff=True)
    model = EmotionModel(
        owner=owner,
        name="tiny test model",
        backbone="mobilenet_v3_small",
        labels=LABELS,
        provenance="no ImageNet weights: trained from scratch",
        pretrained=False,
        is_active=True,
        metrics={"clean": {"f1_weighted": 0.5}},
    )
    with open(checkpoint_file, "rb") as fh:
        model.weights.save("tiny.pt", File(fh), save=False)
    model.save()
    return model
