"""The weights in weights/ meet their quality floors on fresh samples."""

import functools
from pathlib import Path

import pytest

from vsa_demo.loading import load_stage_model

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
SAMPLES = 256
SEED = 2024  # differs from the model cards' evaluation seed, so the floors hold beyond one sample
CLEAR_MARGIN = 0.2  # a factor's own slot must beat every other slot's probe by this much accuracy

pytestmark = pytest.mark.slow


def stage(name):
    if not (WEIGHTS / name / "model.safetensors").is_file():
        pytest.fail(f"{WEIGHTS / name} has no model.safetensors")
    return load_stage_model(name, WEIGHTS)


def test_stage1_floors():
    from vsa_train.evaluate import evaluate_stage1

    metrics, _ = evaluate_stage1(stage("stage1"), SAMPLES, SEED, progress=False)
    assert metrics["reconstruction_iou"] >= 0.80
    assert metrics["swap_iou"]["mean"] >= 0.70
    for name in ("shape", "scale", "orientation", "posX", "posY"):
        assert metrics["swap_iou"][name] >= 0.55, name
        assert metrics["probe_accuracy"]["own_slot_margin"][name] >= CLEAR_MARGIN, name


def test_stage1_card_matches_weights():
    card = (WEIGHTS / "stage1" / "README.md").read_text()
    assert "reconstruction_iou" in card
    assert "swap_iou" in card
    for figure in ("swap_grid.png", "probe_matrix.png", "training_curve.png"):
        assert (WEIGHTS / "stage1" / figure).is_file(), figure
        assert figure in card


@functools.lru_cache(maxsize=None)  # the scene and unbinding floors of stage 3 share one evaluation
def scene_metrics(name):
    from vsa_train.evaluate_scenes import evaluate_scene_stage

    return evaluate_scene_stage(name, stage(name), SAMPLES, SEED, Path("/nonexistent"), progress=False, figures_enabled=False)


def test_stage2_floors():
    metrics = scene_metrics("stage2")
    assert metrics["scene_iou"]["2"] >= 0.75
    assert metrics["scene_iou"]["5"] >= 0.60


def test_stage3_scene_floors():
    metrics = scene_metrics("stage3")
    assert metrics["scene_iou"]["2"] >= 0.75
    assert metrics["scene_iou"]["5"] >= 0.60
    assert metrics["scene_swap_iou"]["mean"] >= 0.60


def test_stage3_unbind_floor():
    assert scene_metrics("stage3")["unbind_accuracy"]["mean"] >= 0.90


@pytest.mark.parametrize("name", ["stage2", "stage3"])
def test_scene_cards_match_weights(name):
    card = (WEIGHTS / name / "README.md").read_text()
    assert "scene_iou" in card
    for figure in ("scenes.png", "training_curve.png"):
        assert (WEIGHTS / name / figure).is_file(), figure
