"""``python -m vsa_train evaluate``: measure a stage's weights on fresh, seeded samples.

All samples come from the procedural renderer with a seed the training never uses, and the
metrics are written as JSON beside the figures.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vsa_demo.factors import FACTOR_NAMES, NUM_FACTORS, sample_classes
from vsa_demo.model import FeatureVAE
from vsa_demo.pictures import grid
from vsa_demo.render import render

from .atomic import atomic_path
from .metrics import iou
from .probes import block_disentanglement, chance_accuracy, probe_matrix

logger = logging.getLogger(__name__)

BATCH = 256


def machine_description() -> str:
    """Describe this machine for model cards and benchmark records."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


@torch.no_grad()
def encode_means(model: FeatureVAE, images: np.ndarray) -> torch.Tensor:
    """Posterior means of the feature vectors. Shapes: (N, H, W) uint8 -> (N, F, D)."""
    parts = [model.encode(torch.from_numpy(images[i:i + BATCH])).mean for i in range(0, len(images), BATCH)]
    return torch.cat(parts)


@torch.no_grad()
def decode_slots(model: FeatureVAE, slots: torch.Tensor) -> torch.Tensor:
    """Decoded logits of summed feature vectors. Shapes: (N, F, D) -> (N, H, W)."""
    return torch.cat([model.decode_slots(slots[i:i + BATCH]) for i in range(0, len(slots), BATCH)])


def swap_truth(classes_a: np.ndarray, classes_b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Factor classes of A with the masked factors taken from B. Shapes: (N, 5) x2, (5,) -> (N, 5)."""
    return np.where(mask[None, :], classes_b, classes_a)


def evaluate_stage1(model: FeatureVAE, n: int, seed: int, progress: bool = True) -> tuple[dict, dict]:
    """Measure reconstruction, single and multiple swaps, and slot probes of a stage-1 model.

    Returns:
        ``(metrics, figures)``: the JSON-ready metrics and the arrays the figures are drawn from.
    """
    rng = np.random.default_rng(seed)
    classes_a, classes_b = sample_classes(rng, n), sample_classes(rng, n)
    images_a, images_b = render(classes_a), render(classes_b)
    steps = tqdm(total=6, desc="evaluate stage1", disable=not progress)

    slots_a, slots_b = encode_means(model, images_a), encode_means(model, images_b)
    reconstruction = iou(decode_slots(model, slots_a), torch.from_numpy(images_a)).mean().item()
    steps.update()

    swap, examples = {}, {}
    for factor, name in enumerate(FACTOR_NAMES):
        mask = np.arange(NUM_FACTORS) == factor
        mixed = torch.where(torch.from_numpy(mask)[None, :, None], slots_b, slots_a)
        logits = decode_slots(model, mixed)
        truth = render(swap_truth(classes_a, classes_b, mask))
        swap[name] = iou(logits, torch.from_numpy(truth)).mean().item()
        examples[name] = (images_a[:4], images_b[:4], torch.sigmoid(logits[:4]).numpy(), truth[:4])
    swap["mean"] = float(np.mean([swap[name] for name in FACTOR_NAMES]))
    steps.update()

    multi = {}
    for size in (2, 3):
        scores = []
        for subset in combinations(range(NUM_FACTORS), size):
            mask = np.isin(np.arange(NUM_FACTORS), subset)
            mixed = torch.where(torch.from_numpy(mask)[None, :, None], slots_b, slots_a)
            truth = render(swap_truth(classes_a, classes_b, mask))
            scores.append(iou(decode_slots(model, mixed), torch.from_numpy(truth)).mean().item())
        multi[f"{size}_factors"] = float(np.mean(scores))
    steps.update()

    # Probes train on their own held-out samples and are scored on the evaluation samples.
    probe_train = sample_classes(rng, max(2000, 2 * n))
    train_slots = encode_means(model, render(probe_train))
    steps.update()
    accuracy = probe_matrix(train_slots, probe_train, slots_a, classes_a)
    chance = chance_accuracy(classes_a, seed)
    steps.update()
    steps.close()

    diagonal = np.diag(accuracy)
    off_diagonal = np.where(np.eye(NUM_FACTORS, dtype=bool), -np.inf, accuracy).max(1)
    metrics = {
        "stage": "stage1",
        "samples": n,
        "seed": seed,
        "reconstruction_iou": reconstruction,
        "swap_iou": swap,
        "multi_swap_iou": multi,
        "probe_accuracy": {
            "rows": list(FACTOR_NAMES),
            "columns": [f"slot_{name}" for name in FACTOR_NAMES],
            "matrix": accuracy.round(4).tolist(),
            "chance": chance.round(4).tolist(),
            "own_slot_margin": dict(zip(FACTOR_NAMES, (diagonal - off_diagonal).round(4).tolist())),
        },
        "block_disentanglement": block_disentanglement(accuracy, chance),
    }
    return metrics, {"swap_examples": examples, "probe_accuracy": accuracy}


def save_swap_grid(examples: dict, path: Path) -> None:
    """Rows of A, B, decoded swap and rendered truth, for each factor."""
    rows, labels = [], []
    for name, (a, b, decoded, truth) in examples.items():
        for label, images in (("A", a), ("B", b), ("swap", decoded), ("truth", truth)):
            rows.append(list(images))
            labels.append(f"{name}: {label}")
    grid(rows, labels, None, upscale=2).save(path)


def save_probe_matrix(accuracy: np.ndarray, path: Path) -> None:
    """Heatmap of probe accuracy, factors as rows and slots as columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.6, 4))
    image = axis.imshow(accuracy, vmin=0, vmax=1, cmap="viridis")
    axis.set_xticks(range(NUM_FACTORS), [f"slot {n}" for n in FACTOR_NAMES], rotation=45, ha="right")
    axis.set_yticks(range(NUM_FACTORS), FACTOR_NAMES)
    for i in range(accuracy.shape[0]):
        for j in range(accuracy.shape[1]):
            axis.text(j, i, f"{accuracy[i, j]:.2f}", ha="center", va="center", color="white" if accuracy[i, j] < 0.6 else "black", fontsize=8)
    axis.set_ylabel("factor")
    axis.set_title("linear probe accuracy")
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _write_json(data: dict, path: Path) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2) + "\n")


def load_stage(stage: str, weights: str):
    """Load the model of ``stage`` from a folder or Hub repo id, or the ``stageN`` folder inside it."""
    from vsa_demo.loading import load_stage_model

    return load_stage_model(stage, weights)


def evaluate(stage: str, weights: str, n: int, json_path: str | Path, figures: str | Path | None = None, seed: int = 12345, progress: bool = True) -> dict:
    """Evaluate ``stage`` weights on ``n`` fresh samples; write the JSON and the figures.

    Raises:
        ValueError: for an unknown stage or an output folder that does not exist.
        WeightsError: when the weights cannot be loaded.
    """
    json_path = Path(json_path)
    if not json_path.parent.is_dir():
        raise ValueError(f"folder {json_path.parent} for --json does not exist; create it first")
    figures = Path(figures) if figures is not None else json_path.parent
    figures.mkdir(parents=True, exist_ok=True)
    model = load_stage(stage, weights)
    start = time.perf_counter()
    if stage == "stage1":
        metrics, data = evaluate_stage1(model, n, seed, progress)
        save_swap_grid(data["swap_examples"], figures / "swap_grid.png")
        save_probe_matrix(data["probe_accuracy"], figures / "probe_matrix.png")
    else:
        from .evaluate_scenes import evaluate_scene_stage

        metrics = evaluate_scene_stage(stage, model, n, seed, figures, progress)
    metrics["weights"] = str(weights)
    metrics["machine"] = machine_description()
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    _write_json(metrics, json_path)
    logger.info("wrote %s", json_path)
    return metrics
