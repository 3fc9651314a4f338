"""Evaluation metrics and the results table (emotions.ser.metrics)."""

import pytest

from emotions.ser.metrics import RESULTS_COLUMNS, evaluate, results_table, to_csv

LABELS = ["angry", "happy", "sad"]
# Supports 4, 2, 4. Confusion (rows true): angry [2, 1, 1], happy [1, 1, 0], sad [0, 1, 3].
Y_TRUE = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 0, 2, 2, 2, 1]


def test_matches_hand_computed_values():
    m = evaluate(Y_TRUE, Y_PRED, LABELS)

    assert m["n"] == 10
    assert m["confusion_matrix"] == [[2, 1, 1], [1, 1, 0], [0, 1, 3]]
    assert m["accuracy"] == pytest.approx(0.6)
    # Per class: precision 2/3, 1/3, 3/4; recall 1/2, 1/2, 3/4; F1 4/7, 2/5, 3/4.
    assert m["per_class"]["angry"] == pytest.approx(
        {"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7, "support": 4}
    )
    assert m["per_class"]["happy"]["f1"] == pytest.approx(0.4)
    assert m["per_class"]["sad"]["support"] == 4
    # Weighted by support 4, 2, 4.
    assert m["precision"] == pytest.approx((4 * 2 / 3 + 2 * 1 / 3 + 4 * 3 / 4) / 10)
    assert m["recall"] == pytest.approx(0.6)
    assert m["f1"] == pytest.approx((4 * 4 / 7 + 2 * 0.4 + 4 * 0.75) / 10)
    # UAR: the plain mean of the recalls.
    assert m["uar"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert m["labels"] == LABELS


def test_label_names_give_the_same_result_as_indices():
    by_name = evaluate([LABELS[i] for i in Y_TRUE], [LABELS[i] for i in Y_PRED], LABELS)
    assert by_name == evaluate(Y_TRUE, Y_PRED, LABELS)


def test_uar_ignores_classes_absent_from_the_test_set():
    m = evaluate([0, 0, 1, 1], [0, 2, 1, 1], LABELS)

    assert m["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["per_class"]["sad"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"][2] == [0, 0, 0]


def test_rejects_mismatched_or_unknown_labels():
    with pytest.raises(ValueError, match="predictions"):
        evaluate([0, 1], [0], LABELS)
    with pytest.raises(ValueError, match="unknown labels: bored"):
        evaluate(["angry"], ["bored"], LABELS)
    with pytest.raises(ValueError, match="class index"):
        evaluate([0], [3], LABELS)


def test_results_table_and_csv_in_the_methods_format(tmp_path):
    rows = {
        "clean": evaluate(Y_TRUE, Y_PRED, LABELS),
        "SNR 15 dB": evaluate(Y_TRUE, Y_TRUE, LABELS),
    }

    table = results_table(rows)

    assert table == [
        ["clean", "60.0", "63.3", "60.0", "60.9", "58.3"],
        ["SNR 15 dB", "100.0", "100.0", "100.0", "100.0", "100.0"],
    ]
    path = tmp_path / "results.csv"
    text = to_csv(rows, path)
    assert path.read_text() == text
    assert text.splitlines() == [
        ",".join(RESULTS_COLUMNS),
        "clean,60.0,63.3,60.0,60.9,58.3",
        "SNR 15 dB,100.0,100.0,100.0,100.0,100.0",
    ]
