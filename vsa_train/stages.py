"""What differs between the training stages: model, objective, data and validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from vsa_demo.factors import FACTOR_NAMES
from vsa_demo.model import FeatureVAE, exchange_slots
from vsa_demo.official import open_source

from . import sampling
from .metrics import iou
from .objectives import CrosswiseSwap

VALIDATION_SEED_OFFSET = 1_000_003  # validation examples use a seed the training never uses


@dataclass(frozen=True)
class Stage:
    """The parts of one training stage."""

    dataset: str
    images_per_example: int
    build_model: Callable
    objective: Callable
    inputs: Callable
    validation_set: Callable
    validate: Callable


def _paired_validation_set(config) -> dict[str, torch.Tensor]:
    source = open_source(config.source)
    arrays = sampling.sample_pairs(config.seed + VALIDATION_SEED_OFFSET, np.arange(config.eval_size), source)
    return {key: torch.from_numpy(value) for key, value in arrays.items()}


@torch.no_grad()
def _validate_stage1(model: FeatureVAE, data: dict[str, torch.Tensor]) -> dict[str, float]:
    device = next(model.parameters()).device
    images = data["images"].to(device)  # (N, 2, H, W)
    changed = data["changed"].to(device)
    n = images.shape[0]
    mean = model.encode(images.flatten(0, 1)).mean.view(n, 2, *model.encode(images[:1, 0]).mean.shape[1:])
    reconstruction = iou(model.decode_slots(mean[:, 0]), images[:, 0]).mean().item()
    mask = torch.nn.functional.one_hot(changed, mean.shape[2]).bool()
    a_with_b, _ = exchange_slots(mean[:, 0], mean[:, 1], mask)
    swap = iou(model.decode_slots(a_with_b), images[:, 1])  # (N,)
    per_factor = {name: swap[changed == f].mean().item() for f, name in enumerate(FACTOR_NAMES)}
    per_factor["mean"] = float(np.mean(list(per_factor.values())))
    return {"reconstruction_iou": reconstruction, "swap_iou": per_factor}


STAGES: dict[str, Stage] = {
    "stage1": Stage(
        dataset="paired",
        images_per_example=2,
        build_model=lambda config: FeatureVAE(config.model),
        objective=lambda model, config: CrosswiseSwap(model, config.kl_weight),
        inputs=lambda batch: {"images": batch["images"], "changed": batch["changed"]},
        validation_set=_paired_validation_set,
        validate=_validate_stage1,
    ),
}
