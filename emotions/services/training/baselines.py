"""The classical baselines of a run, fitted on the very blocks the network trained and was
tested on (emotions.ser.baselines), so their figures compare like for like."""

from __future__ import annotations

import time

from emotions.services.training.context import JobContext, Sets


def fit_baselines(
    ctx: JobContext, sets: Sets, labels: list[str], progress_at: float
) -> dict[str, dict]:
    """kind -> the baseline's record (name, features, classifier, metrics per test set, fit
    time); empty when the run turned baselines off. Cancel is honoured between steps."""
    if not ctx.config.get("baselines", True):
        return {}
    from emotions.ser.baselines import fit_and_evaluate_baselines

    def on_progress(message: str) -> None:
        ctx.reporter.check_cancel()
        ctx.reporter.progress(progress_at, "baselines", f"Baselines: {message}")

    started = time.perf_counter()
    results = fit_and_evaluate_baselines(
        sets.train, sets.train_y, sets.tests, labels, seed=ctx.run.seed, on_progress=on_progress
    )
    ctx.add_time("baselines_s", time.perf_counter() - started)
    return {kind: result.to_dict() for kind, result in results.items()}
