"""Training throughput of stage 1: ready tensors, the real data pipeline, and the prototype widths.

Measures images per second of one optimiser step (forward, backward, Adam) of the crosswise swap
objective, in one run:

(a) the shipped model configuration fed a batch that is already in memory,
(b) the same model fed by the real pipeline (SpritesDataset drawing pairs on the fly through a
    DataLoader with the training sampler), and
(c) the original prototype's widths: convolutions of 16, 32, 64, 128 channels, encoder linear
    layers 2048 to 10240 and 10240 to 10240, decoder linear layers 1024 to 1024 to 2048, then
    4 transposed convolutions.

Usage: python benchmarks/train_throughput.py [--steps N] [--batch-size B] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from vsa_demo.model import FeatureVAE, VAEConfig  # noqa: E402
from vsa_train.datasets import SpritesDataset, collate  # noqa: E402
from vsa_train.evaluate import machine_description  # noqa: E402
from vsa_train.objectives import CrosswiseSwap  # noqa: E402
from vsa_train.stages import _stage1_inputs  # noqa: E402
from vsa_train.train import StepSampler, TrainConfig  # noqa: E402


def prototype_model() -> FeatureVAE:
    model = FeatureVAE(VAEConfig(channels=(16, 32, 64, 128), hidden_dim=10240))
    model.decoder.fc = nn.Sequential(
        nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 2048), nn.ReLU(), nn.Unflatten(1, (128, 4, 4))
    )
    return model


def time_steps(model: FeatureVAE, batches, steps: int, warmup: int) -> float:
    """Run warmup + steps optimiser steps; return images per second over the timed steps."""
    objective = CrosswiseSwap(model, kl_weight=0.01)
    optimizer = torch.optim.Adam(objective.parameters(), lr=1e-4)
    images = 0
    iterator = iter(batches)
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
            images = 0
        batch = next(iterator)
        parts = objective(**_stage1_inputs(batch))
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        images += batch["images"].shape[0] * 2
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="timed steps for (a) and (b) (default: 60)")
    parser.add_argument("--prototype-steps", type=int, default=8, help="timed steps for (c) (default: 8)")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size, help="pairs per step (default: the training default)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers for (b) (default: 0)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    warmup = 5

    dataset = SpritesDataset("paired", seed=0, max_changed=5)
    ready = dataset.__getitems__(list(range(args.batch_size)))

    def repeat(batch):
        while True:
            yield batch

    torch.manual_seed(0)
    ready_rate = time_steps(FeatureVAE(VAEConfig()), repeat(ready), args.steps, warmup)

    sampler = StepSampler(len(dataset), args.batch_size, 0, warmup + args.steps, 0, 1, 0, True)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=args.num_workers)
    torch.manual_seed(0)
    pipeline_rate = time_steps(FeatureVAE(VAEConfig()), loader, args.steps, warmup)

    torch.manual_seed(0)
    prototype = prototype_model()
    prototype_rate = time_steps(prototype, repeat(ready), args.prototype_steps, 2)

    result = {
        "machine": machine_description(),
        "batch_pairs": args.batch_size,
        "model_parameters": sum(p.numel() for p in FeatureVAE(VAEConfig()).parameters()),
        "prototype_parameters": sum(p.numel() for p in prototype.parameters()),
        "a_ready_tensors_images_per_second": round(ready_rate, 1),
        "b_real_pipeline_images_per_second": round(pipeline_rate, 1),
        "c_prototype_widths_images_per_second": round(prototype_rate, 1),
        "b_over_a": round(pipeline_rate / ready_rate, 3),
        "a_over_c": round(ready_rate / prototype_rate, 2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
