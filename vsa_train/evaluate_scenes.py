"""Evaluation of the scene stages: scene IoU per object count, in-scene swaps and unbinding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vsa_demo.factors import FACTOR_NAMES, within_one_bin
from vsa_demo.model import BoundSceneVAE
from vsa_demo.official import RendererSource
from vsa_demo.pictures import grid

from . import sampling
from .metrics import iou

BATCH = 128
OBJECT_COUNTS = (2, 3, 4, 5)


@torch.no_grad()
def encode_scenes(model, objects: torch.Tensor, n_objects: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means of every present object. Shapes: (N, K, H, W), (N,) -> (N, K, F, D), (N, K)."""
    present = torch.arange(objects.shape[1]) < n_objects[:, None]
    parts = [model.encode_objects(objects[i:i + BATCH], present[i:i + BATCH]).mean for i in range(0, len(objects), BATCH)]
    return torch.cat(parts), present


@torch.no_grad()
def decode_scenes(model, slots: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Decoded scene logits: a bound bundle for stage 3, a plain sum for stage 2. Shapes: -> (N, H, W)."""
    parts = []
    for i in range(0, len(slots), BATCH):
        chunk, mask = slots[i:i + BATCH], present[i:i + BATCH]
        if isinstance(model, BoundSceneVAE):
            parts.append(model.decode_scene(chunk, mask))
        else:
            parts.append(model.decode((chunk * mask[:, :, None, None]).sum(dim=(1, 2))))
    return torch.cat(parts)


@torch.no_grad()
def in_scene_swap_iou(model: BoundSceneVAE, pairs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Exchange the changed feature of the changed object between paired scene vectors.

    Scene 1 with that one feature vector taken from scene 2 is decoded and compared with the
    rendered scene 2, per changed factor.
    """
    objects, n_objects = pairs["objects"], pairs["n_objects"]
    n, _, k = objects.shape[:3]
    first, present = encode_scenes(model, objects[:, 0], n_objects)
    second, _ = encode_scenes(model, objects[:, 1], n_objects)
    rows = torch.arange(n)
    mixed = first.clone()
    mixed[rows, pairs["changed_object"], pairs["changed_factor"]] = second[rows, pairs["changed_object"], pairs["changed_factor"]]
    scores = iou(decode_scenes(model, mixed, present), pairs["scenes"][:, 1])
    factor = pairs["changed_factor"]
    result = {name: scores[factor == f].mean().item() for f, name in enumerate(FACTOR_NAMES) if (factor == f).any()}
    result["mean"] = float(np.mean(list(result.values())))
    return result


@torch.no_grad()
def unbind_accuracy(model: BoundSceneVAE, slots: torch.Tensor, present: torch.Tensor, factors: np.ndarray) -> dict[str, float]:
    """Read every feature of every object back from the scene vector and clean it up.

    For object k and feature f, the scene vector is unbound with object placeholder k and feature
    placeholder f, and the result is compared by cosine with the model's codebook of factor f.
    Shape and scale must match; orientation and positions count within one class, orientation
    modulo the shape's symmetry.

    Shapes:
        slots: (N, K, F, D); present: (N, K); factors: (N, K, 5) classes
    """
    scene = torch.cat([model.scene_vector(slots[i:i + BATCH], present[i:i + BATCH]) for i in range(0, len(slots), BATCH)])
    result = {}
    for f, name in enumerate(FACTOR_NAMES):
        correct = []
        for k in range(slots.shape[1]):
            rows = present[:, k]
            if not rows.any():
                continue
            predicted, _ = model.read_values(scene[rows], k, f)
            truth = factors[rows.numpy(), k]
            correct.append(within_one_bin(f, truth[:, 0], predicted.numpy(), truth[:, f]))
        result[name] = float(np.concatenate(correct).mean())
    result["mean"] = float(np.mean([result[name] for name in FACTOR_NAMES]))
    return result


def save_scene_figure(scenes: np.ndarray, decoded: np.ndarray, path: Path, labels=("truth", "decoded")) -> None:
    """Two rows per block: rendered scenes and their decoding."""
    grid([list(scenes), list(decoded)], list(labels), None, upscale=2).save(path)


def evaluate_scene_stage(stage: str, model, n: int, seed: int, figures: Path, progress: bool = True, figures_enabled: bool = True) -> dict:
    """Measure a stage-2 or stage-3 model on ``n`` fresh scenes of 2 to 5 objects.

    Writes ``scenes.png`` (rendered scenes above their decoding) into ``figures`` unless
    ``figures_enabled`` is False.
    """
    source = RendererSource()
    steps = tqdm(total=3 if stage == "stage3" else 1, desc=f"evaluate {stage}", disable=not progress)
    scenes = sampling.sample_scenes(seed, np.arange(n), source, 2, 5)
    objects = torch.from_numpy(scenes["objects"])
    n_objects = torch.from_numpy(scenes["n_objects"])
    slots, present = encode_scenes(model, objects, n_objects)
    logits = decode_scenes(model, slots, present)
    scores = iou(logits, torch.from_numpy(scenes["scene"]))
    scene_iou = {str(count): scores[n_objects == count].mean().item() for count in OBJECT_COUNTS}
    scene_iou["mean"] = scores.mean().item()
    steps.update()
    order = np.argsort(scenes["n_objects"], kind="stable")
    if figures_enabled:
        show = np.concatenate([order[scenes["n_objects"][order] == count][:2] for count in OBJECT_COUNTS])
        save_scene_figure(scenes["scene"][show], torch.sigmoid(logits[show]).numpy(), figures / "scenes.png")
    metrics = {"stage": stage, "samples": n, "seed": seed, "scene_iou": scene_iou}

    if stage == "stage3":
        pairs = sampling.sample_paired_scenes(seed + 1, np.arange(n), source, 2, 5)
        metrics["scene_swap_iou"] = in_scene_swap_iou(model, {key: torch.from_numpy(value) for key, value in pairs.items()})
        steps.update()
        metrics["unbind_accuracy"] = unbind_accuracy(model, slots, present, scenes["factors"])
        steps.update()
    steps.close()
    return metrics
