"""Stage definitions: the model, objective, data and validation that differ between stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from vsa_demo.factors import FACTOR_NAMES, NUM_FACTORS, sample_classes
from vsa_demo.model import FeatureVAE
from vsa_demo.render import render

from vsa_demo.model import BoundSceneVAE, BoundVAEConfig
from vsa_demo.official import open_source

from . import sampling
from .metrics import iou
from .objectives import BoundSceneSwap, CrosswiseSwap, SceneSum, invariance_ratio

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
    default_max_objects: int | None = None  # maximum objects per on-the-fly example


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

    # Invariance: A and "A with factor f from B" share every factor but f.
    ratios = []
    for factor in range(NUM_FACTORS):
        slots_t = model.encode(data["truths"][factor].to(device)).mean
        shared = (torch.arange(NUM_FACTORS, device=device) != factor).expand(slots_a.shape[0], -1)
        ratios.append(invariance_ratio(torch.stack([slots_a, slots_t], dim=1), shared).item())
    return {"reconstruction_iou": reconstruction, "swap_iou": swap, "invariance_ratio": float(np.mean(ratios))}


def _stage1_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    mask = batch.get("changed_mask")
    if mask is None:  # pairs read from a file differ in exactly the factor `changed`
        mask = torch.nn.functional.one_hot(batch["changed"], NUM_FACTORS).bool()
    return {"images": batch["images"], "mask": mask}


def _scene_validation_set(config) -> dict[str, torch.Tensor]:
    source = open_source(config.source)
    seed = config.seed + VALIDATION_SEED_OFFSET
    low, high = config.min_objects or 2, config.max_objects or 5
    arrays = sampling.sample_scenes(seed, np.arange(config.eval_size), source, low, high)
    data = {key: torch.from_numpy(value) for key, value in arrays.items()}
    if config.stage == "stage3":
        pairs = sampling.sample_paired_scenes(seed, np.arange(config.eval_size), source, low, high)
        data["pairs"] = {key: torch.from_numpy(value) for key, value in pairs.items()}
    return data


@torch.no_grad()
def _validate_scenes(model, data: dict) -> dict:
    device = next(model.parameters()).device
    objects = data["objects"].to(device)
    present = torch.arange(objects.shape[1], device=device) < data["n_objects"].to(device)[:, None]
    slots = model.encode_objects(objects, present).mean  # (N, K, F, D)
    if isinstance(model, BoundSceneVAE):
        logits = model.decode_scene(slots, present)
    else:
        logits = model.decode((slots * present[:, :, None, None]).sum(dim=(1, 2)))
    scores = iou(logits, data["scene"].to(device))
    counts = data["n_objects"].to(device)
    result = {"scene_iou": {str(n): scores[counts == n].mean().item() for n in counts.unique().tolist()}}
    result["scene_iou"]["mean"] = scores.mean().item()
    if "pairs" in data:
        from .evaluate_scenes import in_scene_swap_iou, unbind_accuracy

        result["scene_swap_iou"] = in_scene_swap_iou(model, data["pairs"])
        result["unbind_accuracy"] = unbind_accuracy(model, slots.cpu(), present.cpu(), data["factors"].numpy())
    return result


def _build_stage3(config):
    fields = {name: getattr(config.model, name) for name in ("latent_dim", "num_features", "channels", "hidden_dim", "image_size", "projection_rank")}
    return BoundSceneVAE(BoundVAEConfig(**fields, max_objects=5, memory_seed=config.seed))


STAGES: dict[str, Stage] = {
    "stage1": Stage(
        dataset="paired",
        images_per_example=2,
        build_model=lambda config: FeatureVAE(config.model),
        objective=lambda model, config: CrosswiseSwap(model, config.kl_weight, config.invariance_weight),
        inputs=_stage1_inputs,
        validation_set=_paired_validation_set,
        validate=_validate_stage1,
    ),
    "stage2": Stage(
        dataset="scene",
        images_per_example=1,
        build_model=lambda config: FeatureVAE(config.model),
        objective=lambda model, config: SceneSum(model, config.kl_weight),
        inputs=lambda batch: {"objects": batch["objects"], "n_objects": batch["n_objects"], "scene": batch["scene"]},
        validation_set=_scene_validation_set,
        validate=_validate_scenes,
        default_max_objects=5,
    ),
    "stage3": Stage(
        dataset="paired-scene",
        images_per_example=2,
        build_model=_build_stage3,
        objective=lambda model, config: BoundSceneSwap(model, config.kl_weight, config.readout_weight, config.invariance_weight),
        inputs=lambda batch: {
            "objects": batch["objects"],
            "n_objects": batch["n_objects"],
            "changed_object": batch["changed_object"],
            "changed_factor": batch["changed_factor"],
            "scenes": batch["scenes"],
            "factors": batch["factors"],
        },
        validation_set=_scene_validation_set,
        validate=_validate_scenes,
        default_max_objects=5,
    ),
}
