"""Training throughput (images/s) of every registered model on this machine, seed-cnn = 1.0.

Times forward + backward + optimiser steps on random inputs at the size and batch of each model's
own recipe (`covidxray recipes`); decoding is excluded (the training cache makes it a one-off). Run:
    .venv/bin/python benchmarks/train_throughput.py [--seconds 10] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from covidxray.imaging.preprocess_torch import Screener
from covidxray.models.registry import create_model, input_arguments, list_models
from covidxray.training.recipes import recipe


def images_per_second(name: str, seconds: float, batch_size: int | None) -> tuple[float, int, int]:
    """(images/s, input side, batch) for training steps of model name, measured for about `seconds`.

    Args:
        name: a registered model, trained at the size and batch of its own recipe (named after it).
        seconds: how long to measure.
        batch_size: overrides the recipe's batch.

    Returns:
        (images per second, input side, batch).
    """
    own = recipe(name)
    preprocessing = own.preprocessing()
    size, batch = preprocessing.size, batch_size or own.batch_size
    network = create_model(name, 1, **input_arguments(name, preprocessing))
    screener = Screener(network, preprocessing).train()
    optimizer = torch.optim.AdamW(screener.parameters(), lr=1e-4)
    criterion = torch.nn.BCEWithLogitsLoss()
    images, targets = torch.rand(batch, 1, size, size), torch.randint(0, 2, (batch,)).float()

    def step() -> None:
        optimizer.zero_grad()
        criterion(screener(images).reshape(-1), targets).backward()
        optimizer.step()

    step()  # warm-up: allocations, kernels
    steps, began = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - began < seconds:
        step()
        steps += 1
    return steps * batch / (time.perf_counter() - began), size, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time spent measuring each model")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=None, help="default: each model's recipe batch")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {arguments.threads} thread(s), {os.cpu_count()} CPU core(s)")
    results = {name: images_per_second(name, arguments.seconds, arguments.batch_size) for name in list_models()}
    baseline = results["seed-cnn"][0]
    print(f"{'model':<18}{'input':>9}{'batch':>7}{'images/s':>11}{'vs seed-cnn':>13}")
    for name, (rate, size, batch) in results.items():
        print(f"{name:<18}{f'{size}x{size}':>9}{batch:>7}{rate:>11.1f}{rate / baseline:>12.2f}x")


if __name__ == "__main__":
    main()
