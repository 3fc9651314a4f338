"""Training runs: checking and queueing a run (web side) and the job that trains it (worker).

The package along its seams:

- ``config``: a run's settings, checked against emotions.ser.constants.TRAIN_SETTINGS;
- ``runs``: creating (noise split, dataset checks, duplicate refusal) and deleting runs;
- ``backbones``: which backbones have ImageNet weights, without importing torch;
- ``job``: the job's steps, using ``data`` (blocks, split, sets), ``fitting`` (train,
  evaluate), ``baselines`` (the classical references on the same blocks) and ``records``
  (model, run record, per-block predictions);
- ``exports``: results as the method's table, CSV and JSON, the network beside its
  baselines, the per-item predictions as CSV;
- ``trained_models``: activating and deleting a trained model.

Nothing here imports torch at module level: the web process validates and queues runs
without loading the ML stack. The names below are the package's public interface.
"""

from emotions.services.errors import Forbidden
from emotions.services.training.backbones import SCRATCH_NOTICE, backbone_choices, weights_available
from emotions.services.training.config import (
    CONFIG_DEFAULTS,
    DEFAULT_KFOLD,
    MAX_SNRS,
    clean_config,
    clean_snrs,
)
from emotions.services.training.context import CLEAN_SET
from emotions.services.training.data import pick_noise, test_set_name
from emotions.services.training.exports import (
    baseline_comparison,
    baseline_rows,
    predictions_csv,
    results_csv,
    results_json,
    results_rows,
    test_set_order,
)
from emotions.services.training.job import run_training
from emotions.services.training.records import default_model_name, kfold_summary
from emotions.services.training.runs import (
    LEAK_WARNING,
    create_training_run,
    delete_run,
    run_warnings,
    split_noises,
)
from emotions.services.training.trained_models import activate_model, delete_model

__all__ = [
    "CLEAN_SET",
    "CONFIG_DEFAULTS",
    "DEFAULT_KFOLD",
    "LEAK_WARNING",
    "MAX_SNRS",
    "SCRATCH_NOTICE",
    "Forbidden",
    "activate_model",
    "backbone_choices",
    "baseline_comparison",
    "baseline_rows",
    "clean_config",
    "clean_snrs",
    "create_training_run",
    "default_model_name",
    "delete_model",
    "delete_run",
    "kfold_summary",
    "pick_noise",
    "predictions_csv",
    "results_csv",
    "results_json",
    "results_rows",
    "run_training",
    "run_warnings",
    "split_noises",
    "test_set_name",
    "test_set_order",
    "weights_available",
]
