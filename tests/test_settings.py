"""The site starts with no configuration at all (SQLite under var/, generated key)."""

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_starts_on_sqlite_without_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SECRET_"))}
    env["SERSITE_VAR_DIR"] = str(tmp_path)
    for args in (["migrate", "--noinput"], ["check"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "db.sqlite3").stat().st_size > 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50 and oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"
    probe = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings;"
         "print(settings.SECRET_KEY); print(settings.DEBUG)"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "sersite.settings"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert probe.stdout.split() == [key.strip(), "False"]


def test_suite_runs_on_the_configured_database():
    expected = (
        "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    )
    assert connection.vendor == expected
