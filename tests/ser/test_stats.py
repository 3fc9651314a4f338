"""Per-class dataset tables (emotions.ser.stats)."""

from __future__ import annotations

import pytest

from emotions.ser.audio import count_blocks
from emotions.ser.constants import SAMPLE_RATE
from emotions.ser.stats import ClassCounts, class_table, format_table

UTTERANCES = [("angry", 3), ("sad", 2), ("angry", 4), ("neutral", 0), ("sad", 5), ("angry", 1)]


def test_counts_per_class_with_the_default_three_snrs():
    table = class_table(UTTERANCES)
    assert [r.label for r in table.rows] == ["angry", "neutral", "sad"]
    angry, neutral, sad = table.rows
    assert angry == ClassCounts("angry", 3, 8, 32)  # 8 originals + 3 SNR copies each
    assert neutral == ClassCounts("neutral", 1, 0, 0)  # too short for a block, still counted
    assert sad == ClassCounts("sad", 2, 7, 28)
    assert table.total == ClassCounts("Total", 6, 15, 60)
    assert table.snrs_db == (15.0, 20.0, 40.0)


def test_generated_blocks_follow_the_number_of_snrs():
    for snrs in ([], [10.0], [0.0, 5.0, 15.0, 20.0, 40.0]):
        table = class_table(UTTERANCES, snrs_db=snrs)
        assert table.total.generated_blocks == 15 * (1 + len(snrs))


def test_label_order_and_empty_classes():
    table = class_table(UTTERANCES, labels=["neutral", "happy", "sad", "angry"])
    assert [r.label for r in table.rows] == ["neutral", "happy", "sad", "angry"]
    assert table.rows[1] == ClassCounts("happy", 0, 0, 0)
    with pytest.raises(ValueError, match="angry"):
        class_table(UTTERANCES, labels=["sad", "neutral"])
    with pytest.raises(ValueError):
        class_table([("sad", -1)])


def test_blocks_counted_with_the_splitting_policy():
    seconds = {"a.wav": 2.4, "b.wav": 0.3, "c.wav": 1.7}
    labels = {"a.wav": "happy", "b.wav": "happy", "c.wav": "sad"}
    table = class_table(
        (labels[name], count_blocks(round(s * SAMPLE_RATE))) for name, s in seconds.items()
    )
    assert table.rows[0] == ClassCounts("happy", 2, 2, 8)  # 2.4 s -> 2 blocks, 0.3 s -> 0
    assert table.rows[1] == ClassCounts("sad", 1, 2, 8)  # 1.7 s -> 1 + a padded tail


def test_text_and_dict_forms():
    table = class_table(UTTERANCES)
    text = format_table(table)
    lines = text.splitlines()
    assert "Generated blocks (SNRs 15, 20, 40 dB)" in lines[0]
    assert lines[-1].split() == ["Total", "6", "15", "60"]
    assert lines[2].split() == ["angry", "3", "8", "32"]
    assert len({len(line) for line in lines}) == 1  # aligned columns
    dicts = table.as_dicts()
    assert dicts[-1] == {
        "label": "Total",
        "utterances": 6,
        "original_blocks": 15,
        "generated_blocks": 60,
    }
    assert len(dicts) == len(table.rows) + 1
