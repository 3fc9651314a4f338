"""Corpus importers on small generated trees with the real file-name and label layouts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emotions.ser import corpora
from emotions.ser.corpora import (
    LAYOUTS,
    CorpusError,
    CorpusItem,
    apply_label_map,
    cremad,
    detect,
    emodb,
    folder,
    iemocap,
    manifest,
    ravdess,
    savee,
    tess,
)

SR = 16_000


def write_audio(path: Path, seconds: float = 0.02) -> Path:
    """A short quiet tone: real, decodable audio, but cheap to write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, 0.1 * np.sin(2 * np.pi * 440 * t), SR)
    return path


def rel(items: list[CorpusItem], root: Path) -> list[str]:
    return [item.path.relative_to(root.resolve()).as_posix() for item in items]


# ---------------------------------------------------------------- IEMOCAP


IEMOCAP_LABELS = {
    "Session1": {
        "Ses01F_impro01": [
            ("Ses01F_impro01_F000", "neu"),
            ("Ses01F_impro01_M000", "ang"),
            ("Ses01F_impro01_F001", "xxx"),
            ("Ses01F_impro01_M001", "fru"),
        ],
        "Ses01F_script01_1": [
            ("Ses01F_script01_1_F000", "exc"),
            ("Ses01F_script01_1_M000", "hap"),
        ],
    },
    "Session2": {
        "Ses02M_impro03": [
            ("Ses02M_impro03_M000", "sad"),
            ("Ses02M_impro03_F000", "exc"),
            ("Ses02M_impro03_F001", "hap"),
        ],
    },
}


def build_iemocap(root: Path, missing_audio: tuple[str, ...] = ()) -> Path:
    for session, dialogs in IEMOCAP_LABELS.items():
        evaluation = root / session / "dialog" / "EmoEvaluation"
        evaluation.mkdir(parents=True)
        (evaluation / "Categorical").mkdir()  # real releases have sub-folders to ignore
        for dialog, utterances in dialogs.items():
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for i, (utt, cat) in enumerate(utterances):
                lines.append(
                    f"[{i + 6.2901:.4f} - {i + 8.2357:.4f}]\t{utt}\t{cat}\t[2.5000, 3.0000, 3.5000]"
                )
                lines.append("C-E1:\tNeutral state;\t()")  # annotator detail lines
                lines.append("")
                if utt not in missing_audio:
                    write_audio(root / session / "sentences" / "wav" / dialog / f"{utt}.wav")
            (evaluation / f"{dialog}.txt").write_text("\n".join(lines), encoding="utf-8")
    return root


def test_iemocap_reads_labels_speakers_and_sessions(tmp_path):
    root = build_iemocap(tmp_path / "IEMOCAP_full_release")
    skipped: list = []
    items = iemocap.scan(root, skipped=skipped)

    by_utt = {item.meta["utterance"]: item for item in items}
    assert set(by_utt) == {
        "Ses01F_impro01_F000",
        "Ses01F_impro01_M000",
        "Ses01F_impro01_M001",
        "Ses01F_script01_1_F000",
        "Ses01F_script01_1_M000",
        "Ses02M_impro03_M000",
        "Ses02M_impro03_F000",
        "Ses02M_impro03_F001",
    }
    first = by_utt["Ses01F_impro01_F000"]
    assert (first.label, first.speaker, first.group, first.gender) == (
        "neutral",
        "Ses01_F",
        "Ses01",
        "female",
    )
    assert by_utt["Ses01F_impro01_M000"].speaker == "Ses01_M"
    assert by_utt["Ses01F_impro01_M000"].label == "anger"
    assert by_utt["Ses01F_impro01_M001"].label == "frustration"
    assert by_utt["Ses02M_impro03_F000"].speaker == "Ses02_F"
    assert by_utt["Ses02M_impro03_F000"].group == "Ses02"
    assert first.meta["start"] == pytest.approx(6.2901)
    assert first.meta["activation"] == pytest.approx(3.0)
    assert first.path.name == "Ses01F_impro01_F000.wav"
    # The no-majority utterance is reported, not imported.
    assert [s.path.name for s in skipped] == ["Ses01F_impro01_F001.wav"]
    assert "no majority" in skipped[0].reason
    assert rel(items, root) == sorted(rel(items, root))


def test_iemocap_subset_filter(tmp_path):
    root = build_iemocap(tmp_path / "iemocap")
    improvised = iemocap.scan(root, subset="improvised")
    scripted = iemocap.scan(root, subset="scripted")
    assert {i.meta["subset"] for i in improvised} == {"improvised"}
    assert {i.meta["utterance"] for i in scripted} == {
        "Ses01F_script01_1_F000",
        "Ses01F_script01_1_M000",
    }
    assert len(improvised) + len(scripted) == len(iemocap.scan(root, subset="all"))
    with pytest.raises(CorpusError, match="subset"):
        iemocap.scan(root, subset="acted")


def test_iemocap_presets(tmp_path):
    root = build_iemocap(tmp_path / "iemocap")
    labels = {p: sorted(i.label for i in iemocap.scan(root, preset=p)) for p in iemocap.PRESETS}
    assert labels["ang-hap-sad-neu"] == ["anger", "happy", "happy", "neutral", "sad"]
    assert labels["ang-exc-sad-neu"] == ["anger", "excited", "excited", "neutral", "sad"]
    assert labels["ang-hap+exc-sad-neu"] == ["anger"] + ["happy"] * 4 + ["neutral", "sad"]
    merged = iemocap.scan(root, preset="ang-hap+exc-sad-neu")
    from_excited = [i for i in merged if i.meta["raw_label"] == "exc"]
    assert {i.label for i in from_excited} == {"happy"}
    with pytest.raises(CorpusError, match="preset"):
        iemocap.scan(root, preset="ang-hap")


def test_iemocap_sessions_filter_and_missing_audio(tmp_path):
    root = build_iemocap(tmp_path / "iemocap", missing_audio=("Ses02M_impro03_M000",))
    skipped: list = []
    items = iemocap.scan(root, sessions=(2,), skipped=skipped)
    assert {i.group for i in items} == {"Ses02"}
    assert len(items) == 2
    assert any("missing" in s.reason and s.path.name == "Ses02M_impro03_M000.wav" for s in skipped)


def test_iemocap_without_sessions_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no IEMOCAP session"):
        iemocap.scan(tmp_path / "empty")


# ---------------------------------------------------------------- RAVDESS


def build_ravdess(root: Path) -> Path:
    names = [
        ("Actor_01", "03-01-01-01-01-01-01.wav"),  # neutral, male
        ("Actor_01", "03-01-05-02-01-02-01.wav"),  # angry, strong
        ("Actor_02", "03-01-08-01-02-01-02.wav"),  # surprised, female
        ("Actor_02", "03-02-03-01-01-01-02.wav"),  # song
        ("Actor_02", "01-01-04-01-01-01-02.wav"),  # audio-video modality
    ]
    for actor, name in names:
        write_audio(root / actor / name)
    write_audio(root / "Actor_02" / "notes.wav")  # stray file
    return root


def test_ravdess_defaults_keep_audio_only_speech(tmp_path):
    root = build_ravdess(tmp_path / "ravdess")
    skipped: list = []
    items = ravdess.scan(root, skipped=skipped)
    assert [(i.label, i.speaker, i.gender) for i in items] == [
        ("neutral", "Actor_01", "male"),
        ("anger", "Actor_01", "male"),
        ("surprise", "Actor_02", "female"),
    ]
    assert items[1].meta["intensity"] == "strong"
    assert items[0].group == "Actor_01"
    assert [s.path.name for s in skipped] == ["notes.wav"]


def test_ravdess_channel_and_modality_options(tmp_path):
    root = build_ravdess(tmp_path / "ravdess")
    assert [i.label for i in ravdess.scan(root, channel="song")] == ["happy"]
    assert len(ravdess.scan(root, channel="all")) == 4
    assert len(ravdess.scan(root, modalities=("01", "03"))) == 4
    with pytest.raises(CorpusError):
        ravdess.scan(root, channel="opera")


# ---------------------------------------------------------------- CREMA-D


def build_cremad(root: Path, demographics: bool = True) -> Path:
    for name in ["1001_DFA_ANG_XX.wav", "1001_IEO_HAP_HI.wav", "1002_TIE_SAD_LO.wav"]:
        write_audio(root / "AudioWAV" / name)
    # CREMA-D really ships a header-only file; it must not reach training.
    (root / "AudioWAV" / "1076_MTI_SAD_XX.wav").write_bytes(b"RIFF" + bytes(40))
    if demographics:
        (root / "VideoDemographics.csv").write_text(
            "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
            "1002,21,Female,Caucasian,Not Hispanic\n",
            encoding="utf-8",
        )
    return root


def test_cremad_labels_speakers_and_genders(tmp_path):
    root = build_cremad(tmp_path / "crema")
    skipped: list = []
    items = cremad.scan(root, skipped=skipped)
    assert [(i.label, i.speaker, i.gender) for i in items] == [
        ("anger", "1001", "male"),
        ("happy", "1001", "male"),
        ("sad", "1002", "female"),
    ]
    assert items[1].meta == {"raw_label": "HAP", "sentence": "IEO", "intensity": "high"}
    assert [(s.path.name, s.reason) for s in skipped] == [
        ("1076_MTI_SAD_XX.wav", "file too small to hold audio")
    ]


def test_cremad_without_demographics_has_no_gender(tmp_path):
    items = cremad.scan(build_cremad(tmp_path / "crema", demographics=False))
    assert len(items) == 3
    assert {i.gender for i in items} == {None}


# ---------------------------------------------------------------- EmoDB


def test_emodb_speaker_and_emotion_letter(tmp_path):
    root = tmp_path / "emodb"
    for name in ["03a01Fa.wav", "08b02Wb.wav", "16a05Lc.wav", "11b09Ta.wav", "09a01Ea.wav"]:
        write_audio(root / "wav" / name)
    items = emodb.scan(root)
    assert [(i.path.name, i.label, i.speaker, i.gender) for i in items] == [
        ("03a01Fa.wav", "happy", "03", "male"),
        ("08b02Wb.wav", "anger", "08", "female"),
        ("09a01Ea.wav", "disgust", "09", "female"),
        ("11b09Ta.wav", "sad", "11", "male"),
        ("16a05Lc.wav", "boredom", "16", "female"),
    ]
    assert items[0].meta["text"] == "a01"


# ---------------------------------------------------------------- TESS


def test_tess_speakers_and_labels_including_pleasant_surprise(tmp_path):
    root = tmp_path / "tess"
    for folder_name, name in [
        ("OAF_angry", "OAF_back_angry.wav"),
        ("OAF_Pleasant_surprise", "OAF_back_ps.wav"),
        ("YAF_pleasant_surprised", "YAF_bar_pleasant_surprised.wav"),
        ("YAF_sad", "YAF_bar_sad.wav"),
        ("YAF_Fear", "YAF_dog_fear.wav"),
    ]:
        write_audio(root / folder_name / name)
    items = tess.scan(root)
    # Sorted by relative path, byte order: "OAF_Pleasant..." before "OAF_angry".
    assert [(i.label, i.speaker, i.meta["word"], i.meta["raw_label"]) for i in items] == [
        ("surprise", "OAF", "back", "ps"),
        ("anger", "OAF", "back", "angry"),
        ("fear", "YAF", "dog", "fear"),
        ("surprise", "YAF", "bar", "pleasant_surprised"),
        ("sad", "YAF", "bar", "sad"),
    ]
    assert {i.gender for i in items} == {"female"}


# ---------------------------------------------------------------- SAVEE


def test_savee_prefixes_and_speakers(tmp_path):
    root = tmp_path / "savee"
    for speaker, name in [
        ("DC", "a01.wav"),
        ("DC", "sa02.wav"),
        ("JE", "su15.wav"),
        ("JK", "n30.wav"),
        ("KL", "h03.wav"),
        ("KL", "d07.wav"),
        ("KL", "f11.wav"),
    ]:
        write_audio(root / "AudioData" / speaker / name)
    items = savee.scan(root)
    got = {(i.speaker, i.path.name): i.label for i in items}
    assert got == {
        ("DC", "a01.wav"): "anger",
        ("DC", "sa02.wav"): "sad",
        ("JE", "su15.wav"): "surprise",
        ("JK", "n30.wav"): "neutral",
        ("KL", "h03.wav"): "happy",
        ("KL", "d07.wav"): "disgust",
        ("KL", "f11.wav"): "fear",
    }
    assert {i.gender for i in items} == {"male"}


def test_savee_flat_copy(tmp_path):
    root = tmp_path / "savee_flat"
    write_audio(root / "ALL" / "JE_sa05.wav")
    write_audio(root / "ALL" / "DC_a01.wav")
    assert [(i.speaker, i.label) for i in savee.scan(root)] == [("DC", "anger"), ("JE", "sad")]


# ---------------------------------------------------------------- generic folder


def test_folder_labels_extensions_and_speaker_pattern(tmp_path):
    root = tmp_path / "mine"
    write_audio(root / "calm" / "spk1_take1.wav")
    write_audio(root / "calm" / "deeper" / "spk2_take1.flac")
    write_audio(root / "tense" / "spk1_take2.ogg")
    (root / "tense" / "readme.txt").write_text("not audio")
    write_audio(root / "loose.wav")
    skipped: list = []

    items = folder.scan(root, speaker_pattern=r"(?P<speaker>spk\d+)_", skipped=skipped)
    assert [(i.label, i.speaker, i.path.suffix) for i in items] == [
        ("calm", "spk2", ".flac"),
        ("calm", "spk1", ".wav"),
        ("tense", "spk1", ".ogg"),
    ]
    assert [(s.path.name, s.reason) for s in skipped] == [
        ("loose.wav", "not inside a label folder")
    ]
    assert {i.speaker for i in folder.scan(root)} == {"unknown"}


def test_folder_with_no_label_folders_is_an_error(tmp_path):
    write_audio(tmp_path / "flat" / "a.wav")
    with pytest.raises(CorpusError, match="no labelled files"):
        folder.scan(tmp_path / "flat")


# ---------------------------------------------------------------- manifest


def write_manifest(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "manifest.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_reads_rows_relative_to_the_csv(tmp_path):
    root = tmp_path / "set"
    write_audio(root / "audio" / "a.wav")
    write_audio(root / "audio" / "b.flac")
    csv_path = write_manifest(
        root,
        "path,label,speaker,gender,room\naudio/b.flac,sad,s2,F,lab\n\naudio/a.wav,angry,,,\n",
    )
    for source in (csv_path, root):
        items = manifest.scan(source)
        assert [(i.path.name, i.label, i.speaker, i.group, i.gender) for i in items] == [
            ("a.wav", "angry", "unknown", "unknown", None),
            ("b.flac", "sad", "s2", "s2", "female"),
        ]
    assert items[1].meta == {"columns": {"room": "lab"}}


def test_manifest_missing_column_names_line_one(tmp_path):
    csv_path = write_manifest(tmp_path / "set", "file,label\nx.wav,sad\n")
    with pytest.raises(CorpusError, match=r"line 1: missing column\(s\) path"):
        manifest.scan(csv_path)


def test_manifest_reports_every_bad_row_with_its_line(tmp_path):
    root = tmp_path / "set"
    write_audio(root / "ok.wav")
    write_audio(tmp_path / "outside.wav")
    csv_path = write_manifest(
        root,
        "path,label\n"
        "ok.wav,happy\n"  # line 2
        "gone.wav,sad\n"  # line 3: missing file
        "ok.wav,\n"  # line 4: empty label
        "../outside.wav,sad\n"  # line 5: leaves the folder
        ",sad\n"  # line 6: empty path
        "ok.wav,happy\n",  # line 7: duplicate
    )
    with pytest.raises(CorpusError) as caught:
        manifest.scan(csv_path)
    problems = caught.value.problems
    assert len(problems) == 5
    assert problems[0].startswith("line 3: gone.wav: file not found")
    assert problems[1].startswith("line 4: empty label")
    assert problems[2].startswith("line 5: path ../outside.wav must be relative")
    assert problems[3] == "line 6: empty path"
    assert problems[4] == "line 7: ok.wav already listed on line 2"
    assert "5 problem(s)" in str(caught.value)


# ---------------------------------------------------------------- paths stay inside the root


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this system")
def test_symlinks_leaving_the_corpus_are_skipped_with_a_reason(tmp_path):
    outside = tmp_path / "outside"
    write_audio(outside / "03-01-03-01-01-01-03.wav")
    root = build_ravdess(tmp_path / "ravdess")
    (root / "Actor_03").mkdir()
    (root / "Actor_03" / "03-01-03-01-01-01-03.wav").symlink_to(
        outside / "03-01-03-01-01-01-03.wav"
    )
    (root / "Actor_04").symlink_to(outside, target_is_directory=True)
    inside_target = root / "Actor_01" / "03-01-01-01-01-01-01.wav"
    (root / "Actor_01" / "03-01-02-01-01-01-01.wav").symlink_to(inside_target)

    skipped: list = []
    items = ravdess.scan(root, skipped=skipped)
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons["03-01-03-01-01-01-03.wav"] == "symlink points outside the corpus folder"
    assert reasons["Actor_04"] == "symlink points outside the corpus folder"
    assert all(i.path.resolve().is_relative_to(root.resolve()) for i in items)
    assert "calm" in {i.label for i in items}  # a link inside the corpus is fine


def test_manifest_refuses_absolute_paths_and_links_out(tmp_path):
    root = tmp_path / "set"
    outside = write_audio(tmp_path / "elsewhere" / "x.wav")
    root.mkdir()
    (root / "link.wav").symlink_to(outside)
    csv_path = write_manifest(root, f"path,label\n{outside},sad\nlink.wav,sad\n")
    with pytest.raises(CorpusError) as caught:
        manifest.scan(csv_path)
    assert caught.value.problems[0].startswith("line 2: path ")
    assert caught.value.problems[1] == "line 3: link.wav: symlink points outside the corpus folder"


def test_iemocap_audio_folder_linked_outside_is_refused(tmp_path):
    root = build_iemocap(tmp_path / "iemocap")
    dialog_dir = root / "Session2" / "sentences" / "wav" / "Ses02M_impro03"
    moved = tmp_path / "moved"
    dialog_dir.rename(moved)
    dialog_dir.symlink_to(moved, target_is_directory=True)
    skipped: list = []
    items = iemocap.scan(root, skipped=skipped)
    assert {i.group for i in items} == {"Ses01"}
    assert sum("outside the corpus" in s.reason for s in skipped) == 3


# ---------------------------------------------------------------- label maps, detect, registry


def test_apply_label_map_merges_renames_and_drops():
    def item(label: str) -> CorpusItem:
        return CorpusItem(Path(f"{label}.wav"), label, "s", "s")

    items = [item("excited"), item("happy"), item("frustration"), item("sad"), item("calm")]
    mapped = apply_label_map(items, {"excited": "happy", "frustration": None, "sad": "sadness"})
    assert [i.label for i in mapped] == ["happy", "happy", "sadness", "calm"]
    assert mapped[0].meta["label_before_map"] == "excited"
    assert items[0].label == "excited"  # the input is left alone


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda r: build_iemocap(r), "iemocap"),
        (lambda r: build_ravdess(r), "ravdess"),
        (lambda r: build_cremad(r), "cremad"),
        (lambda r: write_audio(r / "wav" / "03a01Fa.wav"), "emodb"),
        (lambda r: write_audio(r / "OAF_angry" / "OAF_back_angry.wav"), "tess"),
        (lambda r: write_audio(r / "AudioData" / "DC" / "a01.wav"), "savee"),
        (lambda r: write_audio(r / "happy" / "clip.mp3"), "folder"),
        (lambda r: write_manifest(r, "path,label\n"), "manifest"),
        (lambda r: r.mkdir(), None),
    ],
)
def test_detect_recognises_each_layout(tmp_path, build, expected):
    root = tmp_path / "corpus"
    build(root)
    assert detect(root) == expected


def test_scan_with_detected_layout_and_registry(tmp_path):
    root = build_cremad(tmp_path / "crema")
    assert len(corpora.scan(root)) == 3
    assert set(LAYOUTS) == {
        "iemocap",
        "ravdess",
        "cremad",
        "emodb",
        "tess",
        "savee",
        "folder",
        "manifest",
    }
    assert all(callable(module.scan) and callable(module.matches) for module in LAYOUTS.values())
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="could not recognise"):
        corpora.scan(tmp_path / "empty")


def test_scanning_is_deterministic(tmp_path):
    root = build_ravdess(tmp_path / "ravdess")
    assert ravdess.scan(root) == ravdess.scan(root)
    assert rel(ravdess.scan(root, channel="all"), root) == sorted(
        rel(ravdess.scan(root, channel="all"), root)
    )
