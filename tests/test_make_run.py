"""The README's first command, `make run`, started as a newcomer starts it: the address it
prints is where the site answers, and Ctrl-C leaves nothing running or listening.

Only the places it writes to are its own (a scratch database, var/, media and static
folders, a Redis key prefix), so it never touches a developer's site on this machine.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, RUN_PREFIX, _free_port

pytestmark = pytest.mark.live

ADDRESS = re.compile(r"sersite runs at (http://\S+?)/?\s")
# Migrations, collectstatic and a worker importing torch, on a shared 2-core machine.
START_DEADLINE_S = 240
DEFAULT_PORT = 8000


class Output:
    """The command's output, read in a thread so that the pipe never fills."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def text(self) -> str:
        return "".join(self.lines)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(proc: subprocess.Popen) -> None:
    """Ctrl-C as a terminal sends it (to the whole group), then SIGTERM, then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, 30), (signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if not group_alive(proc.pid):
            return
        os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait_s
        while group_alive(proc.pid) and time.monotonic() < deadline:
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass


# Room for the start deadline and a slow stop beyond the suite-wide 300 s.
@pytest.mark.timeout(START_DEADLINE_S + 180)
@pytest.mark.parametrize("port_from", ["default", "PORT"])
def test_make_run_serves_the_address_it_prints(tmp_path: Path, port_from: str):
    env = {
        key: value
        for key, value in os.environ.items()
        # As a newcomer runs it: no test settings, no PORT unless the case sets one.
        if key not in {"SERSITE_TESTING", "DJANGO_SETTINGS_MODULE", "PORT"}
    }
    if port_from == "PORT":
        port = _free_port()
        env["PORT"] = str(port)
    else:
        # The README's command as typed: honcho exports PORT=5000 to its processes when
        # none is set, which is how the printed 8000 once went wrong.
        port = DEFAULT_PORT
        if listening(port):
            pytest.skip(f"port {port} is in use on this machine")
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'site.sqlite3'}",
        SERSITE_VAR_DIR=str(tmp_path / "var"),
        MEDIA_ROOT=str(tmp_path / "media"),
        STATIC_ROOT=str(tmp_path / "static"),
        REDIS_KEY_PREFIX=f"{RUN_PREFIX}-make-run",
        WORKER_CONCURRENCY="1",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    output = Output(proc)
    served = None
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        address = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = ADDRESS.search(output.text)
            address = found.group(1) if found else None
            if address:
                try:
                    answer = requests.get(address + "/healthz", timeout=5)
                    served = answer.status_code, answer.json()
                    if answer.status_code == 200:
                        break
                except requests.RequestException:
                    pass  # not listening yet
            time.sleep(1)
        assert address == f"http://127.0.0.1:{port}", output.text[-3000:]
        assert served and served[0] == 200, (served, output.text[-3000:])
    finally:
        stop_group(proc)
        output.thread.join(timeout=10)
    assert not group_alive(proc.pid), output.text[-2000:]
    assert not listening(port)
