"""Training throughput with and without the frozen-feature cache, in one run.

Both runs train the same network (default MobileNetV2 from its packaged ImageNet
weights, the default freezing and training settings) on the same model-ready tensors made
from generated 1 s blocks. The reference is the uncached run measured here; the printed
ratios are cached blocks/s over uncached blocks/s for the epochs after the first (the
cache is built before epoch 1; target at least 5x) and uncached over cached wall time of
the whole run, the cache build included (target at least 3x). On CUDA it also uses mixed
precision and channels-last (see emotions/ser/networks.py).

    .venv/bin/python bench/training.py [--blocks 256] [--epochs 4] [--image-size 128]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotions.ser.constants import TRAIN_DEFAULTS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=TRAIN_DEFAULTS["epochs"])
    parser.add_argument("--batch-size", type=int, default=TRAIN_DEFAULTS["batch_size"])
    parser.add_argument("--image-size", type=int, default=TRAIN_DEFAULTS["image_size"])
    parser.add_argument("--backbone", default="mobilenet_v2")
    args = parser.parse_args()

    import numpy as np
    import torch

    from emotions.ser import networks, spectrogram
    from emotions.ser.device import choose_device
    from emotions.ser.training import TrainConfig, train

    device = choose_device()
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 4, args.blocks))
    t = np.arange(16_000) / 16_000
    blocks = np.stack(
        [np.sin(2 * np.pi * (150 + 60 * int(y)) * t) * 0.3 + 0.01 * rng.standard_normal(t.size)
         for y in labels]
    ).astype(np.float32)  # fmt: skip
    images = spectrogram.blocks_to_model_input(blocks, device="cpu", size=args.image_size)
    size = args.image_size
    print(f"device: {device}; {args.blocks} blocks of {size}x{size}, {args.epochs} epochs, "
          f"{args.backbone}, batch {args.batch_size}")  # fmt: skip
    rates, totals = {}, {}
    for cached in (False, True):
        net = networks.build_network(args.backbone, 4, seed=0)
        config = TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, cache_trunk_features=cached, seed=0
        )
        start = time.perf_counter()
        result = train(net, images, labels, config)
        total = time.perf_counter() - start
        totals[cached] = total
        later = [e["seconds"] for e in result.history[1:]] or [result.history[0]["seconds"]]
        rates[cached] = args.blocks / (sum(later) / len(later))
        first = result.history[0]["seconds"]
        print(f"cache {'on ' if cached else 'off'}: total {total:6.1f} s, epoch 1 {first:6.1f} s, "
              f"later epochs {rates[cached]:8.1f} blocks/s")  # fmt: skip
    print(f"reference (cache off): {rates[False]:.1f} blocks/s")
    print(f"ratio: {rates[True] / rates[False]:.1f} per later epoch (target >= 5)")
    print(f"whole-run ratio: {totals[False] / totals[True]:.1f}, cache build included "
          "(target >= 3)")  # fmt: skip


if __name__ == "__main__":
    main()
