"""What differs between the training stages: model, objective, data and validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from vsa_demo.factors import FACTOR_NAMES, NUM_FACTORS, sample_classes
from vsa_demo.model import FeatureVAE
from vsa_demo.render import render

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
    # Independent sprites A and B, and for each factor the rendered truth of A with it from B.
    rng = np.random.default_rng(config.seed + VALIDATION_SEED_OFFSET)
    classes_a, classes_b = sample_classes(rng, config.eval_size), sample_classes(rng, config.eval_size)
    truths = [render(np.where(np.arange(NUM_FACTORS) == f, classes_b, classes_a)) for f in range(NUM_FACTORS)]
    return {
        "images_a": torch.from_numpy(render(classes_a)),
        "images_b": torch.from_numpy(render(classes_b)),
        "truths": torch.from_numpy(np.stack(truths)),  # (F, N, H, W)
    }


@torch.no_grad()
def _validate_stage1(model: FeatureVAE, data: dict[str, torch.Tensor]) -> dict[str, float]:
    device = next(model.parameters()).device
    slots_a = model.encode(data["images_a"].to(device)).mean  # (N, F, D)
    slots_b = model.encode(data["images_b"].to(device)).mean
    reconstruction = iou(model.decode_slots(slots_a), data["images_a"].to(device)).mean().item()
    swap = {}
    for factor, name in enumerate(FACTOR_NAMES):
        mask = torch.arange(NUM_FACTORS, device=device) == factor
        mixed = torch.where(mask[None, :, None], slots_b, slots_a)
        swap[name] = iou(model.decode_slots(mixed), data["truths"][factor].to(device)).mean().item()
    swap["mean"] = float(np.mean(list(swap.values())))
    return {"reconstruction_iou": reconstruction, "swap_iou": swap}


def _stage1_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    mask = batch.get("changed_mask")
    if mask is None:  # pairs read from a file differ in exactly the factor `changed`
        mask = torch.nn.functional.one_hot(batch["changed"], NUM_FACTORS).bool()
    return {"images": batch["images"], "mask": mask}


STAGES: dict[str, Stage] = {
    "stage1": Stage(
        dataset="paired",
        images_per_example=2,
        build_model=lambda config: FeatureVAE(config.model),
        objective=lambda model, config: CrosswiseSwap(model, config.kl_weight),
        inputs=_stage1_inputs,
        validation_set=_paired_validation_set,
        validate=_validate_stage1,
    ),
}
