"""User-supplied regular expressions (a labelled folder's speaker pattern) run in RE2:
matching is linear in the file name, so a pattern cannot stall an import; a pattern RE2
cannot compile is refused at the API with a readable 400 and nothing stored.

The timeout marks are a safety net, not a speed measurement: with Python's backtracking
`re`, `(a+)+$` on 34 a's and a '!' takes hours, so the test fails instead of hanging.
"""

import pytest
from rest_framework.test import APIClient

from emotions.models import Dataset, Job, Utterance
from emotions.ser.corpora import folder
from emotions.ser.corpora.base import CorpusError, compile_pattern
from tests.api.test_datasets_api import post_archive
from tests.services.test_datasets import run_job, wav_bytes, zip_bytes

pytestmark = pytest.mark.django_db

EVIL_PATTERN = "(a+)+$"
EVIL_NAME = "a" * 34 + "!"


@pytest.fixture
def ada(make_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user("ada"))
    return client


@pytest.mark.timeout(60)
def test_catastrophic_pattern_is_linear(tmp_path):
    (tmp_path / "angry").mkdir()
    (tmp_path / "angry" / f"{EVIL_NAME}0.wav").write_bytes(wav_bytes(0.5))
    items = folder.scan(tmp_path, speaker_pattern=EVIL_PATTERN)
    assert [item.speaker for item in items] == ["unknown"]
    # The same engine still finds the speakers a sensible pattern names.
    (tmp_path / "angry" / "spk7_x.wav").write_bytes(wav_bytes(0.5))
    items = folder.scan(tmp_path, speaker_pattern=r"(?P<speaker>spk\d+)_")
    assert sorted(item.speaker for item in items) == ["spk7", "unknown"]


@pytest.mark.timeout(120)
def test_import_with_catastrophic_pattern_finishes(ada):
    files = {
        f"{label}/{EVIL_NAME}{i}.wav": wav_bytes(0.6)
        for label in ("angry", "calm")
        for i in range(2)
    }
    answer = post_archive(ada, zip_bytes(files), layout="folder", speaker_pattern=EVIL_PATTERN)
    assert answer.status_code == 201, answer.content
    job = run_job(answer.json()["import_job"]["id"])
    assert job.state == Job.State.SUCCEEDED, job.error
    assert set(Utterance.objects.values_list("speaker", flat=True)) == {"unknown"}


@pytest.mark.parametrize(
    "pattern, words",
    [("(a", "missing )"), (r"(\w)\1", "back-references"), ("(?=spk)", "lookarounds")],
    ids=["unbalanced", "back-reference", "lookahead"],
)
def test_pattern_re2_cannot_compile_is_a_400(ada, pattern, words):
    files = {"angry/a.wav": wav_bytes(0.6)}
    answer = post_archive(ada, zip_bytes(files), layout="folder", speaker_pattern=pattern)
    assert answer.status_code == 400, answer.content
    detail = answer.json()["detail"]
    assert "speaker pattern is not a valid regular expression" in detail and words in detail
    assert "b'" not in detail  # RE2's reason is decoded, not shown as Python bytes
    assert not Dataset.objects.exists() and not Job.objects.exists()


def test_compile_pattern_refuses_with_corpus_error():
    with pytest.raises(CorpusError, match="missing \\)"):
        compile_pattern("(a")
    assert compile_pattern(None) is None
