"""A run's results in the method's format: the table as rows, CSV and JSON.

Shaping only: the API, the pages and ``manage.py train`` call these to present what the
job stored.
"""

from __future__ import annotations

import csv
import io

from emotions.models import TrainingRun
from emotions.services.errors import Conflict
from emotions.services.training.records import CLEAN_SET, RESULT_KEYS


def test_set_order(metrics: dict) -> list[str]:
    """Test-set names: clean first, then by SNR from noisiest to cleanest."""
    names = [n for n in metrics if n != "kfold"]

    def key(name: str) -> tuple:
        if name == CLEAN_SET:
            return (0, 0.0)
        try:
            return (1, float(name.removesuffix("dB")))
        except ValueError:
            return (2, 0.0)

    return sorted(names, key=key)


def results_rows(run_metrics: dict) -> list[list[str]]:
    """The method's table (test set × accuracy/precision/recall/F1/UAR, %) as strings."""
    from emotions.ser.metrics import results_table

    ordered = {name: run_metrics[name] for name in test_set_order(run_metrics)}
    return results_table(ordered)


def results_csv(run: TrainingRun) -> str:
    """The results table as CSV; with k-fold, mean and std rows follow."""
    from emotions.ser.metrics import RESULTS_COLUMNS

    if not run.metrics:
        raise Conflict("This run has no results yet.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULTS_COLUMNS)
    writer.writerows(results_rows(run.metrics))
    kfold = run.metrics.get("kfold")
    if kfold:
        for stat in ("mean", "std"):
            for name in test_set_order(kfold["summary"]):
                values = kfold["summary"][name]
                row = [f"{name} ({kfold['k']}-fold {stat})"]
                row += [f"{100 * values[k][stat]:.1f}" for k in RESULT_KEYS]
                writer.writerow(row)
    return out.getvalue()


def results_json(run: TrainingRun) -> dict:
    """Everything needed to report the run: table, metrics, matrices, split, curves."""
    from emotions.ser.metrics import RESULTS_COLUMNS

    if not run.metrics:
        raise Conflict("This run has no results yet.")
    return {
        "run": run.pk,
        "model": run.model_id,
        "columns": list(RESULTS_COLUMNS),
        "table": results_rows(run.metrics),
        "metrics": run.metrics,
        "split": run.split,
        "history": run.history,
        "snrs": run.snrs,
        "preset": run.preset,
        "protocol": run.protocol,
        "seed": run.seed,
        "config": run.config,
    }
