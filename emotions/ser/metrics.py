"""Evaluation metrics: a thin layer over scikit-learn.

Reported together, as the field notes ask: accuracy (WA), class-size weighted precision,
recall and F1 (the method's table), and UAR, the unweighted average recall that does not
reward predicting the majority class.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from emotions.ser import csv_safe

RESULTS_COLUMNS: tuple[str, ...] = (
    "Test set",
    "Accuracy (%)",
    "Precision (%)",
    "Recall (%)",
    "F1 (%)",
    "UAR (%)",
)
_RESULTS_KEYS = ("accuracy", "precision", "recall", "f1", "uar")


def evaluate(
    y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray, labels: list[str]
) -> dict[str, Any]:
    """Metrics of predictions against truth; classes are indices into ``labels`` or names.

    Returns ``n``, ``accuracy``, ``precision``/``recall``/``f1`` (weighted by class
    support, zero_division=0), ``uar`` (mean recall over the classes present in
    ``y_true``, i.e. balanced accuracy), ``per_class`` {label: {precision, recall, f1,
    support}}, ``confusion_matrix`` (rows = true class, columns = predicted, in ``labels``
    order) and ``labels``. Values are fractions in [0, 1].
    """
    t, p = _as_indices(y_true, labels), _as_indices(y_pred, labels)
    if len(t) != len(p):
        raise ValueError(f"{len(t)} true labels but {len(p)} predictions")
    classes = list(range(len(labels)))
    cm = confusion_matrix(t, p, labels=classes) if len(t) else np.zeros((len(labels),) * 2, int)
    per_p, per_r, per_f, support = precision_recall_fscore_support(
        t, p, labels=classes, zero_division=0
    )
    w_p, w_r, w_f, _ = precision_recall_fscore_support(
        t, p, labels=classes, average="weighted", zero_division=0
    )
    return {
        "n": int(len(t)),
        "accuracy": float(accuracy_score(t, p)) if len(t) else 0.0,
        "precision": float(w_p),
        "recall": float(w_r),
        "f1": float(w_f),
        "uar": _uar(cm),
        "per_class": {
            label: {
                "precision": float(per_p[i]),
                "recall": float(per_r[i]),
                "f1": float(per_f[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.astype(int).tolist(),
        "labels": list(labels),
    }


def _uar(cm: np.ndarray) -> float:
    # Classes absent from the test set have no recall; counting them as 0 would punish a
    # model for data it never saw (scikit-learn's balanced_accuracy_score does the same).
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return 0.0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def _as_indices(values: Sequence[Any] | np.ndarray, labels: list[str]) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= len(labels)):
            raise ValueError(f"class index outside 0..{len(labels) - 1}")
        return arr.astype(int).reshape(-1)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({str(v) for v in arr.reshape(-1)} - set(index))
    if unknown:
        raise ValueError(f"unknown labels: {', '.join(unknown[:5])}")
    return np.array([index[str(v)] for v in arr.reshape(-1)], dtype=int)


def results_table(rows: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """The method's results table: one row per test set, columns as RESULTS_COLUMNS.

    Percentages with one decimal, e.g. ``["clean", "87.3", "87.5", "87.3", "87.2", "85.0"]``;
    the header is RESULTS_COLUMNS.
    """
    return [
        [name, *(f"{100.0 * float(metrics[key]):.1f}" for key in _RESULTS_KEYS)]
        for name, metrics in rows.items()
    ]


def to_csv(
    rows: Mapping[str, Mapping[str, Any]], path: str | os.PathLike[str] | None = None
) -> str:
    """The results table as CSV text with a header row; also written to ``path`` if given."""
    buffer = io.StringIO()
    writer = csv_safe.writer(buffer, lineterminator="\n")
    writer.writerow(RESULTS_COLUMNS)
    writer.writerows(results_table(rows))
    text = buffer.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
