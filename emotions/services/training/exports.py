"""A run's results in the method's format: the table as rows, CSV and JSON.

Shaping only: the API, the pages and ``manage.py train`` call these to present what the
job stored.
"""

from __future__ import annotations

import io

from emotions.models import TrainingRun
from emotions.ser import csv_safe
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


def baseline_rows(run: TrainingRun) -> list[list[str]]:
    """The baselines' rows of the method's table: "<test set> (<baseline>)" per test set."""
    from emotions.ser.metrics import results_table

    rows = []
    for baseline in (run.baselines or {}).values():
        metrics = baseline["metrics"]
        ordered = {f"{n} ({baseline['name']})": metrics[n] for n in test_set_order(metrics)}
        rows += results_table(ordered)
    return rows


def baseline_comparison(run: TrainingRun) -> dict:
    """The network beside each baseline on every test set (weighted F1), with a plain
    sentence for every test set where the network does not beat a baseline.

    ``sets``: [{"test_set", "network", "baselines": [{"kind", "name", "f1", "beaten"}]}];
    ``shortfalls``: sentences; ``summary``: one sentence for the whole run.
    """
    baselines = run.baselines or {}
    metrics = {k: v for k, v in (run.metrics or {}).items() if k != "kfold"}
    if not baselines or not metrics:
        return {"sets": [], "shortfalls": [], "summary": ""}
    sets, shortfalls = [], []
    for name in test_set_order(metrics):
        network = metrics[name]["f1"]
        entries = []
        for kind, baseline in baselines.items():
            theirs = baseline["metrics"].get(name)
            if theirs is None:
                continue
            beaten = network > theirs["f1"]
            entries.append(
                {"kind": kind, "name": baseline["name"], "f1": theirs["f1"], "beaten": beaten}
            )
            if not beaten:
                shortfalls.append(
                    f"On the {name} test set the network (weighted F1 {100 * network:.1f}%) "
                    f"does not beat {baseline['name']} ({100 * theirs['f1']:.1f}%)."
                )
        sets.append({"test_set": name, "network": network, "baselines": entries})
    if shortfalls:
        summary = (
            f"The network does not beat every classical baseline: {len(shortfalls)} of "
            f"{sum(len(s['baselines']) for s in sets)} comparisons (weighted F1) go to a "
            "baseline."
        )
    else:
        summary = "The network beats every classical baseline on every test set (weighted F1)."
    return {"sets": sets, "shortfalls": shortfalls, "summary": summary}


def results_csv(run: TrainingRun) -> str:
    """The results table as CSV; with k-fold, mean and std rows follow, then the rows of the
    classical baselines fitted on the same split ("<test set> (<baseline>)")."""
    from emotions.ser.metrics import RESULTS_COLUMNS

    if not run.metrics:
        raise Conflict("This run has no results yet.")
    out = io.StringIO()
    writer = csv_safe.writer(out, lineterminator="\n")  # user labels: no formulas
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
    writer.writerows(baseline_rows(run))
    return out.getvalue()


def predictions_csv(run: TrainingRun) -> str:
    """The network's prediction for every test block: test set, SNR, utterance, item,
    speaker, block, noise, true and predicted label, then one probability per class."""
    record = run.predictions or {}
    if not record.get("rows"):
        raise Conflict(
            "This run has no per-item predictions (none yet, or made before they were kept)."
        )
    out = io.StringIO()
    writer = csv_safe.writer(out, lineterminator="\n")  # user labels: no formulas
    writer.writerow([*record["columns"], *(f"p_{label}" for label in record["labels"])])
    writer.writerows(record["rows"])
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
        "baselines": run.baselines,
        "baseline_comparison": baseline_comparison(run),
        "split": run.split,
        "history": run.history,
        "snrs": run.snrs,
        "preset": run.preset,
        "protocol": run.protocol,
        "seed": run.seed,
        "config": run.config,
    }
