"""The training job (worker side), step by step.

1. the dataset's utterances (excluded ones skipped) → clean 1 s blocks, cached per
   utterance (emotions.services.blocks);
2. a train/test split by the run's protocol, at the utterance level (``random_blocks`` is
   the method's 80/20 over blocks and is recorded as leaking speakers), or k folds;
3. the training set: clean train blocks, plus for the mix-up preset one noisy copy per SNR
   mixed with the *training* noises; the test sets: the held-out blocks clean and mixed with
   the *test* noises at each SNR (15, 20, 40 dB by default). Test noises are never training
   noises;
4. spectrogram images (emotions.ser.spectrogram) → an ImageNet backbone, its frozen trunk
   computed once, the head trained (emotions.ser.training);
5. the method's evaluation table per test set (emotions.ser.metrics);
6. the classical baselines fitted and evaluated on the same blocks (emotions.ser.baselines);
7. an EmotionModel (weights in storage) and the run's split, curves, metrics, baselines and
   per-block test predictions.
"""

from __future__ import annotations

import time

from emotions.models import Job, TrainingRun
from emotions.services import jobs
from emotions.services.blocks import BlockCache
from emotions.services.errors import ServiceError
from emotions.services.training.baselines import fit_baselines
from emotions.services.training.config import CONFIG_DEFAULTS
from emotions.services.training.context import FoldResult, JobContext
from emotions.services.training.data import assemble_sets, prepare_corpus, split_corpus
from emotions.services.training.fitting import evaluate, fit_network
from emotions.services.training.records import job_result, save_results

# Share of the job's progress bar before the folds (blocks) and after them (saving).
FOLDS_START, FOLDS_SHARE = 0.25, 0.7


def run_training(job: Job, reporter: jobs.Reporter) -> dict:
    """The training job's body (``jobs.run`` handles state, cancel and failure)."""
    run = TrainingRun.objects.select_related("dataset", "owner").get(pk=job.params["run"])
    if run.model_id is not None:
        # A redelivered task after the model was saved: the work is done, report it again.
        return job_result(run, {})
    ctx = JobContext(
        run=run,
        reporter=reporter,
        config={**CONFIG_DEFAULTS, **run.config},
        cache=BlockCache(),
        train_noises=list(run.train_noises.order_by("pk")),
        test_noises=list(run.test_noises.order_by("pk")),
    )
    if run.preset == TrainingRun.Preset.MIXUP and not ctx.train_noises:
        raise ServiceError("The training noises of this run were deleted; start a new run.")
    started = time.perf_counter()
    corpus = prepare_corpus(ctx)
    splits = split_corpus(ctx, corpus)
    k = len(splits)
    folds: list[FoldResult] = []
    for i, split in enumerate(splits):
        span = (FOLDS_START + FOLDS_SHARE * i / k, FOLDS_START + FOLDS_SHARE * (i + 1) / k)
        sets = assemble_sets(ctx, corpus, split, span[0])
        net = fit_network(ctx, corpus, sets, i + 1, k, span)
        result = evaluate(ctx, net, sets, corpus.labels, span)
        if i == 0:
            # The first split's network is the one saved, its predictions exported and its
            # baselines fitted; later folds only add their scores.
            baselines = fit_baselines(ctx, sets, corpus.labels, span[1])
            folds.append(
                FoldResult(split, result.metrics, sets, net, result.probabilities, baselines)
            )
        else:
            folds.append(FoldResult(split, result.metrics))
    reporter.progress(0.96, "saving", "Saving the model…")
    reporter.check_cancel()
    ctx.timing["total_s"] = round(time.perf_counter() - started, 3)
    return save_results(ctx, corpus, folds)
