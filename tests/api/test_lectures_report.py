"""The report of a lecture at lecture length: the data the page draws, the one-document
JSON export and the PDF, each for the owner (and staff) only."""

import re
import zlib

import pytest

from tests.lecture_factory import make_lecture

pytestmark = pytest.mark.django_db(transaction=True)

ANGRY = (708, 780)  # 11:48 to 13:00


@pytest.fixture
def twenty_minutes(client_for, emotion_model):
    teacher = client_for("teacher")
    lecture = make_lecture(teacher.user, emotion_model, 1205, angry=ANGRY, silent_every=97)
    return teacher, lecture


def test_report_finds_the_angry_stretch_as_top_moment(twenty_minutes):
    teacher, lecture = twenty_minutes
    data = teacher.get(f"/api/lectures/{lecture.pk}/report/?smooth=5").json()
    assert data["window"] == 5 and len(data["start"]) == 1205
    best = data["top_moments"]["anger"][0]
    # (The silent second at 12:55, 96 + 7 × 97, ends the run a little early.)
    assert ANGRY[0] - 3 <= best["start_s"] <= ANGRY[0] + 3, best
    assert best["end_s"] - best["start_s"] >= 30 and best["confidence"] > 0.7
    minutes = {m["minute"]: m for m in data["per_minute"]}
    assert len(minutes) == 21 and minutes[12]["label"] == "anger"
    assert minutes[3]["label"] != "anger"
    # Silent seconds are silence, not an emotion, in every part of the report.
    assert data["raw"][96] == -1 and data["band"][96] == -1
    assert all(r["label"] == "silence" for r in data["runs"] if r["start_s"] == 96.0)
    assert data["lecture"]["title"] == "Waves and optics"
    assert data["model"]["notices"] and data["colours"]["anger"].startswith("#")


def test_smoothing_changes_band_and_curves_alike(twenty_minutes):
    teacher, lecture = twenty_minutes
    raw = teacher.get(f"/api/lectures/{lecture.pk}/report/?smooth=1").json()
    smooth = teacher.get(f"/api/lectures/{lecture.pk}/report/?smooth=60").json()
    assert raw["band"] == raw["raw"] and raw["smoothed"] == raw["probabilities"]
    assert smooth["smoothed"] != smooth["probabilities"]
    # The band is the argmax of the smoothed curves: fewer, longer runs.
    for i in (100, 500, 740):
        row = smooth["smoothed"][i]
        assert smooth["band"][i] == row.index(max(row))
    assert len(smooth["runs"]) < len(raw["runs"]) / 3


def test_unknown_smoothing_is_a_400_with_the_choices(twenty_minutes):
    teacher, lecture = twenty_minutes
    for value in ("7", "abc", "-1", "100000", "5.0"):
        answer = teacher.get(f"/api/lectures/{lecture.pk}/report/?smooth={value}")
        assert answer.status_code == 400, value
        assert "1, 5, 15, 60" in answer.json()["detail"]


def test_no_speech_is_told_apart_from_silence(client_for, emotion_model):
    teacher = client_for("teacher")
    lecture = make_lecture(teacher.user, emotion_model, 120, no_speech=(30, 90))
    data = teacher.get(f"/api/lectures/{lecture.pk}/report/?smooth=15").json()
    assert set(data["raw"][30:90]) == {-2}
    assert data["no_speech_s"] == 60.0 and data["silence_s"] == 0.0
    assert [r["label"] for r in data["runs"] if r["start_s"] == 30.0] == ["no speech"]
    # Smoothing never spreads an emotion over seconds without speech.
    assert set(data["band"][30:90]) == {-2}
    assert "no speech" not in data["shares"]


def test_json_export_is_one_document(twenty_minutes):
    teacher, lecture = twenty_minutes
    answer = teacher.get(f"/lectures/{lecture.pk}/report.json")
    assert answer.status_code == 200 and "attachment" in answer["Content-Disposition"]
    doc = answer.json()
    assert doc["title"] == "Waves and optics" and doc["course"] == "Physics 101"
    assert doc["model"]["name"] == "tiny test model"
    assert doc["summary"]["top_moments"]["anger"][0]["start_s"] == pytest.approx(708, abs=3)
    assert len(doc["segments"]) == 1205 and "next" not in doc
    assert doc["segments"][96]["state"] == "silence"
    assert doc["segments"][740]["label"] == "anger"


def pdf_pages_and_text(data: bytes) -> tuple[int, str]:
    """Page count and the text shown, read from the PDF's own streams (no poppler here):
    matplotlib writes its text as strings in TJ arrays inside BT … ET blocks."""
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    texts = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            body = zlib.decompress(match.group(1))
        except zlib.error:
            continue
        for block in re.findall(rb"BT(.*?)ET", body, re.S):
            parts = re.findall(rb"\(((?:\\.|[^\\)])*)\)", block)
            texts.append(b"".join(re.sub(rb"\\(.)", rb"\1", p) for p in parts).decode("latin-1"))
    return pages, "\n".join(texts)


def test_pdf_report_has_title_model_and_top_moment(twenty_minutes):
    teacher, lecture = twenty_minutes
    answer = teacher.get(f"/lectures/{lecture.pk}/report.pdf")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    data = answer.content
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    pages, text = pdf_pages_and_text(data)
    assert pages == 2  # the summary page and one page of timeline for 20 minutes
    assert "Waves and optics" in text and "Physics 101" in text
    assert "tiny test model" in text and "Trained from scratch" in text
    assert re.search(r"anger:\s*0:11:(4[5-9]|5[01]) to 0:1[23]:", text), text[:2000]
    assert "0:20:05" in text  # the length, h:mm:ss


def test_three_hours_of_pdf_timeline_spread_over_pages(client_for, emotion_model):
    teacher = client_for("teacher")
    lecture = make_lecture(teacher.user, emotion_model, 3 * 3600, audio_seconds=5)
    pages, text = pdf_pages_and_text(teacher.get(f"/lectures/{lecture.pk}/report.pdf").content)
    assert pages == 1 + 3  # 9 rows of 20 minutes, 4 rows a page
    assert "3:00:00" in text


def test_reports_are_for_the_owner_only(twenty_minutes, client_for):
    _, lecture = twenty_minutes
    other = client_for("other-teacher")
    staff = client_for("head", is_staff=True)
    for url in (
        f"/api/lectures/{lecture.pk}/report/",
        f"/lectures/{lecture.pk}/report.json",
        f"/lectures/{lecture.pk}/report.pdf",
    ):
        assert other.get(url).status_code == 404, url
        assert staff.get(url).status_code == 404, url  # class recordings are private


def test_pdf_keeps_dollar_signs_as_text(client_for, emotion_model):
    """User text is never read as matplotlib mathtext: "$\\foo$" once made saving fail."""
    teacher = client_for("teacher")
    lecture = make_lecture(teacher.user, emotion_model, 30)
    lecture.title = r"Costs in $\foo$ and $x^2$"
    lecture.save(update_fields=["title"])
    answer = teacher.get(f"/lectures/{lecture.pk}/report.pdf")
    assert answer.status_code == 200
    _, text = pdf_pages_and_text(answer.content)
    assert r"Costs in $\foo$ and $x^2$" in text
