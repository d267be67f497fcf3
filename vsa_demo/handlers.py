"""The app's handlers as plain functions over numpy arrays, and the models they use.

Everything the Gradio layout calls lives here, so it can be tested without a server. Sprites are
described either by their factor values (snapped to the dSprites grid) or by a user image.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .factors import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    NUM_FACTORS,
    ORIENTATION_VALUES,
    POSITION_VALUES,
    SCALE_VALUES,
    SHAPE_NAMES,
    sample_classes,
    within_one_bin,
)
from .loading import HOW_TO_GET_WEIGHTS, load_stage_model, resolve_weights, stage_folder
from .model import BoundSceneVAE, FeatureVAE
from .pictures import to_pixels
from .render import render
from .weights import WeightsError

logger = logging.getLogger(__name__)

DISPLAY_SCALE = 4  # pictures are shown 4x enlarged, pixel for pixel
PROTOTYPE_SAMPLES = 4000


@dataclass
class Models:
    """The loaded stage models and what the app derives from them once at start-up.

    Attributes:
        stage1: the feature-slot VAE.
        prototypes: per factor, (size_f, D) mean slot vectors of each class, centred.
        prototype_centres: per factor, the (D,) mean removed from the prototypes.
        cards: model card text per stage.
        folders: local folder per stage.
    """

    stage1: FeatureVAE
    prototypes: list[torch.Tensor]
    prototype_centres: list[torch.Tensor]
    cards: dict[str, str] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    stage2: FeatureVAE | None = None
    stage3: BoundSceneVAE | None = None

    @property
    def has_scenes(self) -> bool:
        return self.stage2 is not None and self.stage3 is not None


@torch.no_grad()
def compute_prototypes(model: FeatureVAE, samples: int = PROTOTYPE_SAMPLES, seed: int = 0):
    """Average each slot's posterior mean over sprites that share a class of its factor.

    Returns:
        ``(prototypes, centres)``: per factor a (size_f, D) tensor of centred class means, and
        the (D,) centre that was removed, so a query is compared after removing the same centre.
    """
    classes = sample_classes(np.random.default_rng(seed), samples)
    means = torch.cat([model.encode(torch.from_numpy(render(classes[i:i + 500]))).mean for i in range(0, samples, 500)])
    prototypes, centres = [], []
    for factor, size in enumerate(FACTOR_SIZES):
        labels = torch.from_numpy(classes[:, factor])
        sums = torch.zeros(size, means.shape[-1]).index_add_(0, labels, means[:, factor])
        counts = torch.bincount(labels, minlength=size).clamp(min=1).unsqueeze(1)
        class_means = sums / counts  # (size_f, D)
        centre = class_means.mean(0)
        prototypes.append(class_means - centre)
        centres.append(centre)
    return prototypes, centres


def read_card(folder: Path) -> str:
    """Return a model card's Markdown without its YAML front matter, or '' when there is none."""
    path = folder / "README.md"
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            text = text[end + 4:]
    return text.strip()


def load_models(weights: str | os.PathLike = "weights") -> Models:
    """Load every stage found at ``weights`` (a folder or Hub repo id) and derive the prototypes.

    Raises:
        WeightsError: naming the folder and how to get weights when stage 1 is missing or broken.
    """
    torch.set_grad_enabled(False)
    root = resolve_weights(weights)
    folder = stage_folder("stage1", root)
    if not (folder / "config.json").is_file():
        raise WeightsError(f"no stage-1 weights in {folder} (expected stage1/config.json and model.safetensors); {HOW_TO_GET_WEIGHTS}")
    stage1 = load_stage_model("stage1", folder)
    prototypes, centres = compute_prototypes(stage1)
    models = Models(stage1=stage1, prototypes=prototypes, prototype_centres=centres)
    models.folders["stage1"] = folder
    models.cards["stage1"] = read_card(folder)
    logger.info("loaded stage 1 from %s", folder)

    # Stages 2 and 3 are optional: without them the app has no Scene tab.
    for stage in ("stage2", "stage3"):
        stage_root = root / stage
        if not (stage_root / "config.json").is_file():
            logger.warning("no %s weights in %s; the Scene tab is hidden", stage, stage_root)
            continue
        setattr(models, stage, load_stage_model(stage, stage_root))
        models.folders[stage] = stage_root
        models.cards[stage] = read_card(stage_root)
    return models


# ----- Sprite descriptions -------------------------------------------------------------------


def snap_classes(shape: str, scale: float, orientation_degrees: float, pos_x: float, pos_y: float) -> tuple[int, ...]:
    """Snap factor values from the UI to the nearest dSprites classes.

    Args:
        shape: ``square``, ``ellipse`` or ``heart``.
        scale: 0.5 to 1.0.
        orientation_degrees: 0 to 360, counter-clockwise.
        pos_x, pos_y: 0 to 1, from the left and from the top.

    Raises:
        ValueError: for an unknown shape or a value that is not a finite number.
    """
    if shape not in SHAPE_NAMES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPE_NAMES)}")
    values = {"scale": scale, "orientation": orientation_degrees, "posX": pos_x, "posY": pos_y}
    for name, value in values.items():
        if value is None or not math.isfinite(float(value)):
            raise ValueError(f"{name} must be a number; got {value!r}")
    radians = math.radians(float(orientation_degrees)) % (2 * math.pi)
    return (
        SHAPE_NAMES.index(shape),
        int(np.abs(SCALE_VALUES - float(scale)).argmin()),
        int(np.abs(ORIENTATION_VALUES - radians).argmin()),
        int(np.abs(POSITION_VALUES - float(np.clip(pos_x, 0, 1))).argmin()),
        int(np.abs(POSITION_VALUES - float(np.clip(pos_y, 0, 1))).argmin()),
    )


def class_values(classes: tuple[int, ...]) -> tuple[str, float, float, float, float]:
    """Return UI values (shape name, scale, degrees, posX, posY) for factor classes."""
    shape, scale, orientation, x, y = classes
    return (
        SHAPE_NAMES[shape],
        round(float(SCALE_VALUES[scale]), 2),
        round(math.degrees(ORIENTATION_VALUES[orientation]), 2),
        round(float(POSITION_VALUES[x]), 4),
        round(float(POSITION_VALUES[y]), 4),
    )


def describe_value(factor: int, cls: int) -> str:
    """Human-readable value of one factor class, e.g. 'heart', '0.7', '92.3°' or '0.516'."""
    if factor == 0:
        return SHAPE_NAMES[cls]
    if factor == 1:
        return f"{SCALE_VALUES[cls]:.1f}"
    if factor == 2:
        return f"{math.degrees(ORIENTATION_VALUES[cls]) % 360.0:.1f}°"  # the last class, 360°, is 0°
    return f"{POSITION_VALUES[cls]:.3f}"


@functools.lru_cache(maxsize=4096)
def _render_cached(classes: tuple[int, ...]) -> np.ndarray:
    image = render(np.array([classes]))[0]
    image.setflags(write=False)
    return image


def sprite_image(classes: tuple[int, ...]) -> np.ndarray:
    """Render one sprite from its classes (cached). Shapes: -> (64, 64) uint8 in {0, 1}."""
    return _render_cached(tuple(int(c) for c in classes))


def display(image: np.ndarray) -> np.ndarray:
    """Enlarge a {0, 1} sprite or probability map for display: (64, 64) -> (256, 256) uint8."""
    return to_pixels(image, DISPLAY_SCALE)


def random_values(seed: int | None = None) -> tuple[str, float, float, float, float]:
    """Draw a random sprite and return its UI values."""
    rng = np.random.default_rng(seed)
    return class_values(tuple(int(c) for c in sample_classes(rng, 1)[0]))


# ----- Model operations ----------------------------------------------------------------------


@torch.no_grad()
def encode_images(models: Models, images: np.ndarray) -> torch.Tensor:
    """Posterior means of the feature vectors. Shapes: (N, 64, 64) in {0, 1} -> (N, F, D)."""
    return models.stage1.encode(torch.from_numpy(np.array(images, dtype=np.uint8))).mean  # a writable copy


@torch.no_grad()
def decode(models: Models, slots: torch.Tensor) -> np.ndarray:
    """Decode feature vectors to probabilities. Shapes: (N, F, D) -> (N, 64, 64) float32."""
    return torch.sigmoid(models.stage1.decode_slots(slots)).numpy()


def cleanup(models: Models, slots: torch.Tensor) -> list[tuple[int, float]]:
    """Find, for each slot, the closest class prototype of its factor by cosine similarity.

    Shapes:
        slots: (F, D) -> F pairs of (class, similarity)
    """
    results = []
    for factor in range(NUM_FACTORS):
        query = slots[factor] - models.prototype_centres[factor]
        similarity = torch.nn.functional.cosine_similarity(query.unsqueeze(0), models.prototypes[factor], dim=1)
        best = int(similarity.argmax())
        results.append((best, float(similarity[best])))
    return results


def iou(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """IoU of decoded pixels (probability above 0.5) and true pixels; 1.0 when both are empty."""
    predicted = probabilities > 0.5
    truth = truth.astype(bool)
    union = np.logical_or(predicted, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, truth).sum() / union)


def slot_heatmap(slots: torch.Tensor) -> np.ndarray:
    """Draw the F feature vectors side by side, each folded into a square, blue below 0, red above.

    Shapes:
        slots: (F, D) -> (side, F * (side + gap)) x 3 uint8 RGB, enlarged 4x
    """
    f, d = slots.shape
    side = int(math.ceil(math.sqrt(d)))
    values = torch.zeros(f, side * side)
    values[:, :d] = slots
    values = values.view(f, side, side).numpy()  # (F, side, side)
    limit = max(float(np.abs(values).max()), 1e-6)
    scaled = np.clip(values / limit, -1, 1)
    red = np.where(scaled > 0, 1.0, 1.0 + scaled)
    blue = np.where(scaled < 0, 1.0, 1.0 - scaled)
    green = 1.0 - np.abs(scaled)
    rgb = (np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)  # (F, side, side, 3)
    gap = 2
    canvas = np.full((side, f * (side + gap) - gap, 3), 255, dtype=np.uint8)
    for i in range(f):
        canvas[:, i * (side + gap):i * (side + gap) + side] = rgb[i]
    return canvas.repeat(4, axis=0).repeat(4, axis=1)


# ----- Handlers ------------------------------------------------------------------------------


class SpriteChoice:
    """A sprite the user picked: factor classes from the grid, or a custom image."""

    def __init__(self, classes: tuple[int, ...] | None = None, image: np.ndarray | None = None):
        if (classes is None) == (image is None):
            raise ValueError("give either factor classes or an image")
        self.classes = classes
        self.image = sprite_image(classes) if image is None else image

    @classmethod
    def from_ui(cls, source: str, shape, scale, orientation, pos_x, pos_y, custom: np.ndarray | None) -> "SpriteChoice":
        """Build a choice from a sprite picker: ``source`` is 'factors' or 'image'.

        Raises:
            ValueError: when the picker is set to an image but none was given.
        """
        if source == "image":
            if custom is None:
                raise ValueError("no image yet: draw or upload one in the Sketch & upload tab and send it here")
            return cls(image=np.asarray(custom, dtype=np.uint8))
        return cls(classes=snap_classes(shape, scale, orientation, pos_x, pos_y))


def encode_handler(models: Models, choice: SpriteChoice):
    """Encode one sprite.

    Returns:
        ``(sprite, reconstruction, heatmap, readout)``: display images and a table with one row per
        slot: feature, cleaned-up value, similarity and, for grid sprites, the true value.
    """
    slots = encode_images(models, choice.image[None])[0]  # (F, D)
    reconstruction = decode(models, slots[None])[0]
    rows = []
    for factor, (cls, similarity) in enumerate(cleanup(models, slots)):
        truth = describe_value(factor, choice.classes[factor]) if choice.classes else "-"
        rows.append([FACTOR_NAMES[factor], describe_value(factor, cls), round(similarity, 3), truth])
    return display(choice.image), display(reconstruction), slot_heatmap(slots), rows


def swap_handler(models: Models, a: SpriteChoice, b: SpriteChoice, features: list[str]):
    """Decode A's feature vectors with the chosen features taken from B.

    Returns:
        ``(a, b, result, truth, summary)``: display images, the rendered truth (None unless both
        sprites come from the grid) and a Markdown line with the IoU.

    Raises:
        ValueError: for a feature name that is not one of the five factors.
    """
    unknown = [name for name in features if name not in FACTOR_NAMES]
    if unknown:
        raise ValueError(f"unknown feature {unknown[0]!r}; expected some of {', '.join(FACTOR_NAMES)}")
    mask = torch.tensor([name in features for name in FACTOR_NAMES])
    slots = encode_images(models, np.stack([a.image, b.image]))  # (2, F, D)
    mixed = torch.where(mask[:, None], slots[1], slots[0])
    result = decode(models, mixed[None])[0]

    truth_image = None
    chosen = ", ".join(features) if features else "nothing"
    if a.classes is not None and b.classes is not None:
        truth = tuple(b.classes[i] if mask[i] else a.classes[i] for i in range(NUM_FACTORS))
        truth_pixels = sprite_image(truth)
        truth_image = display(truth_pixels)
        summary = f"Took **{chosen}** from B. IoU with the rendered truth: **{iou(result, truth_pixels):.3f}**"
    else:
        summary = f"Took **{chosen}** from B. No rendered truth: one sprite is a custom image."
    return display(a.image), display(b.image), display(result), truth_image, summary


# ----- Scenes ----------------------------------------------------------------------------------

MAX_SCENE_OBJECTS = 5


def random_scene(count: int, seed: int | None = None, tries: int = 500) -> list[tuple[str, float, float, float, float]]:
    """Draw UI values of ``count`` sprites that share no pixel, by rejection.

    Raises:
        ValueError: if ``count`` is outside 1..5 or no placement is found.
    """
    if not 1 <= count <= MAX_SCENE_OBJECTS:
        raise ValueError(f"invalid object count: a scene has 1 to {MAX_SCENE_OBJECTS} objects, got {count}")
    rng = np.random.default_rng(seed)
    for _ in range(20):
        union = np.zeros((64, 64), dtype=bool)
        chosen = []
        for _ in range(tries):
            classes = tuple(int(c) for c in sample_classes(rng, 1)[0])
            image = sprite_image(classes).astype(bool)
            if not (image & union).any():
                union |= image
                chosen.append(class_values(classes))
                if len(chosen) == count:
                    return chosen
    raise ValueError(f"could not place {count} objects without overlap; try fewer objects")


def overlapping_pairs(images: list[np.ndarray]) -> list[tuple[int, int]]:
    """Pairs of object indices whose sprites share a foreground pixel."""
    pairs = []
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            if np.logical_and(images[i], images[j]).any():
                pairs.append((i, j))
    return pairs


@torch.no_grad()
def scene_handler(models: Models, choices: list[SpriteChoice], feature: str | None = None, swap: tuple[int, int] | None = None):
    """Compose a scene from its objects with stage 2 (plain sum) and stage 3 (bound bundle).

    Args:
        choices: the objects, 1 to 5.
        feature, swap: exchange ``feature`` between objects ``swap[0]`` and ``swap[1]`` inside the
            stage-3 scene vector; None leaves the scene as it is.

    Returns:
        ``(truth, stage2, stage3, swapped, swapped_truth, readout, summary)``: display images (the
        swapped pair is None without a swap), the unbinding readout rows and a Markdown summary.

    Raises:
        ValueError: without stage-2 and stage-3 models, or for a bad object count, feature or index.
    """
    if not models.has_scenes:
        raise ValueError("the Scene tab needs stage-2 and stage-3 weights in the weights folder")
    if not 1 <= len(choices) <= MAX_SCENE_OBJECTS:
        raise ValueError(f"invalid object count: a scene has 1 to {MAX_SCENE_OBJECTS} objects, got {len(choices)}")
    images = np.stack([c.image for c in choices])  # (K, 64, 64)
    truth = images.max(axis=0)

    # Encode each object once per model; the scene is then a sum (stage 2) or a bound bundle (stage 3).
    tensor = torch.from_numpy(np.array(images, dtype=np.uint8))
    slots2 = models.stage2.encode(tensor).mean  # (K, F, D)
    slots3 = models.stage3.encode(tensor).mean
    decoded2 = torch.sigmoid(models.stage2.decode(slots2.sum(dim=(0, 1))[None]))[0].numpy()
    scene3 = models.stage3.scene_vector(slots3[None])  # (1, D)
    decoded3 = torch.sigmoid(models.stage3.decoder(scene3))[0].numpy()

    # Unbind every object and feature from the scene vector and clean it up.
    readout = []
    for k, choice in enumerate(choices):
        row = [f"object {k + 1}"]
        for f in range(NUM_FACTORS):
            best, score = models.stage3.read_values(scene3, k, f)
            predicted = int(best[0])
            cell = f"{describe_value(f, predicted)} ({float(score[0]):.2f})"
            if choice.classes is not None:
                correct = bool(within_one_bin(f, choice.classes[0], predicted, choice.classes[f]))
                cell += f" / {describe_value(f, choice.classes[f])} {'✓' if correct else '✗'}"
            row.append(cell)
        readout.append(row)

    lines = []
    grid_only = all(c.classes is not None for c in choices)
    lines.append(f"IoU with the rendered scene: stage 2 **{iou(decoded2, truth):.3f}**, stage 3 **{iou(decoded3, truth):.3f}**.")
    overlaps = overlapping_pairs([c.image for c in choices])
    if overlaps:
        names = ", ".join(f"{i + 1} and {j + 1}" for i, j in overlaps)
        lines.append(f"⚠️ Objects {names} overlap. The models were trained on scenes without overlap, so expect errors there.")

    swapped = swapped_truth = None
    if feature is not None and swap is not None:
        if feature not in FACTOR_NAMES:
            raise ValueError(f"unknown feature {feature!r}; expected one of {', '.join(FACTOR_NAMES)}")
        i, j = swap
        if not (0 <= i < len(choices) and 0 <= j < len(choices)):
            raise ValueError(f"objects {i + 1} and {j + 1} are not both in a scene of {len(choices)} objects")
        f = FACTOR_NAMES.index(feature)
        exchanged = slots3.clone()
        exchanged[i, f], exchanged[j, f] = slots3[j, f], slots3[i, f]
        swapped = torch.sigmoid(models.stage3.decoder(models.stage3.scene_vector(exchanged[None])))[0].numpy()
        if i == j:
            lines.append(f"Exchanging **{feature}** of object {i + 1} with itself changes nothing; pick two different objects.")
        elif grid_only:
            classes = [list(c.classes) for c in choices]
            classes[i][f], classes[j][f] = choices[j].classes[f], choices[i].classes[f]
            swapped_pixels = np.stack([sprite_image(tuple(c)) for c in classes]).max(axis=0)
            swapped_truth = display(swapped_pixels)
            lines.append(f"Exchanging **{feature}** of objects {i + 1} and {j + 1}: IoU **{iou(swapped, swapped_pixels):.3f}**.")
        else:
            lines.append(f"Exchanging **{feature}** of objects {i + 1} and {j + 1}. No rendered exchange: a custom image has no factor values.")
        swapped = display(swapped)
    readout_note = (
        "Readout cells: cleaned-up value (cosine similarity with that value's code) / true value, ✓ where the "
        "evaluation counts it as correct: orientation modulo the shape's symmetry (a square repeats every quarter "
        "turn), orientation and positions within one class. Crosstalk from the other bound items keeps the "
        "similarity well below 1; the highest one names the value."
    )
    lines.append(readout_note)
    return display(truth), display(decoded2), display(decoded3), swapped, swapped_truth, readout, "\n\n".join(lines)
