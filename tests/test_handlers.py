import numpy as np
import pytest
import torch

from vsa_demo import handlers
from vsa_demo.handlers import Models, SpriteChoice, compute_prototypes, encode_handler, snap_classes, swap_handler
from vsa_demo.model import BoundSceneVAE, BoundVAEConfig, FeatureVAE, VAEConfig
from vsa_demo.render import render_one


SMALL = {"latent_dim": 32, "channels": (4, 4, 8, 8), "hidden_dim": 32}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    model = FeatureVAE(VAEConfig(**SMALL)).eval()
    prototypes, centres = compute_prototypes(model, samples=300)
    return Models(
        stage1=model,
        prototypes=prototypes,
        prototype_centres=centres,
        stage2=FeatureVAE(VAEConfig(**SMALL)).eval(),
        stage3=BoundSceneVAE(BoundVAEConfig(**SMALL)).eval(),
    )


def test_snap_to_grid():
    assert snap_classes("heart", 1.0, 0.0, 0.0, 1.0) == (2, 5, 0, 0, 31)
    assert snap_classes("square", 0.52, 9.0, 0.5, 0.5) == (0, 0, 1, 15, 15)
    assert snap_classes("ellipse", 0.7, 360.0, 0.99, 0.01)[2] == 0  # a full turn is orientation 0
    assert snap_classes("ellipse", 0.7, 365.0, 2.0, -1.0)[2:] == (1, 31, 0)


def test_snap_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown shape 'circle'"):
        snap_classes("circle", 1.0, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="scale must be a number"):
        snap_classes("heart", float("nan"), 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="posX must be a number"):
        snap_classes("heart", 1.0, 0.0, None, 0.5)


def test_values_round_trip_through_ui():
    for seed in range(20):
        values = handlers.random_values(seed)
        classes = snap_classes(*values)
        assert handlers.class_values(classes) == values


def test_encode_outputs(models):
    sprite, reconstruction, heatmap, rows = encode_handler(models, SpriteChoice(classes=(2, 5, 0, 10, 20)))
    assert sprite.shape == (256, 256)
    assert reconstruction.shape == (256, 256)
    assert np.array_equal(sprite[::4, ::4] // 255, render_one(2, 5, 0, 10, 20))
    assert heatmap.ndim == 3
    assert heatmap.shape[2] == 3
    assert [row[0] for row in rows] == ["shape", "scale", "orientation", "posX", "posY"]
    assert rows[0][3] == "heart"
    assert rows[3][3] == "0.323"
    assert all(-1.0 <= row[2] <= 1.0 for row in rows)


def test_swap_nothing_decodes_a(models):
    a, b = SpriteChoice(classes=(0, 3, 5, 5, 5)), SpriteChoice(classes=(2, 1, 9, 20, 25))
    shown_a, shown_b, result, truth, summary = swap_handler(models, a, b, [])
    plain = encode_handler(models, a)[1]
    assert np.array_equal(result, plain)
    assert np.array_equal(truth, shown_a)
    assert "nothing" in summary
    assert "IoU" in summary


def test_swap_everything_decodes_b(models):
    a, b = SpriteChoice(classes=(0, 3, 5, 5, 5)), SpriteChoice(classes=(2, 1, 9, 20, 25))
    features = ["shape", "scale", "orientation", "posX", "posY"]
    _, shown_b, result, truth, _ = swap_handler(models, a, b, features)
    assert np.array_equal(result, encode_handler(models, b)[1])
    assert np.array_equal(truth, shown_b)


def test_swap_truth_takes_chosen_factors(models):
    a, b = SpriteChoice(classes=(0, 3, 5, 5, 5)), SpriteChoice(classes=(2, 1, 9, 20, 25))
    truth = swap_handler(models, a, b, ["shape", "posY"])[3]
    assert np.array_equal(truth[::4, ::4] // 255, render_one(2, 3, 5, 5, 25))


def test_swap_with_custom_image_has_no_truth(models):
    custom = np.zeros((64, 64), dtype=np.uint8)
    custom[20:40, 20:40] = 1
    a = SpriteChoice.from_ui("image", "heart", 1.0, 0.0, 0.5, 0.5, custom)
    b = SpriteChoice(classes=(2, 1, 9, 20, 25))
    _, _, result, truth, summary = swap_handler(models, a, b, ["shape"])
    assert truth is None
    assert "custom image" in summary
    assert result.shape == (256, 256)


def test_swap_rejects_unknown_feature(models):
    a = SpriteChoice(classes=(0, 3, 5, 5, 5))
    with pytest.raises(ValueError, match="unknown feature 'colour'"):
        swap_handler(models, a, a, ["colour"])


def test_image_source_without_image_explains():
    with pytest.raises(ValueError, match="no image yet"):
        SpriteChoice.from_ui("image", "heart", 1.0, 0.0, 0.5, 0.5, None)


def test_cleanup_finds_prototype_itself(models):
    # A slot equal to a class prototype (plus its centre) is cleaned up to that class.
    slots = torch.stack([models.prototypes[f][min(3, len(models.prototypes[f]) - 1)] + models.prototype_centres[f] for f in range(5)])
    for factor, (cls, similarity) in enumerate(handlers.cleanup(models, slots)):
        assert cls == min(3, len(models.prototypes[factor]) - 1)
        assert similarity == pytest.approx(1.0, abs=1e-5)


def scene_choices(*classes):
    return [SpriteChoice(classes=c) for c in classes]


def test_scene_outputs(models):
    choices = scene_choices((0, 0, 0, 2, 2), (1, 2, 5, 28, 4), (2, 1, 0, 15, 28))
    truth, stage2, stage3, swapped, swapped_truth, readout, summary = handlers.scene_handler(models, choices)
    expected = np.maximum.reduce([render_one(*c.classes) for c in choices])
    assert np.array_equal(truth[::4, ::4] // 255, expected)
    assert stage2.shape == stage3.shape == (256, 256)
    assert swapped is None
    assert swapped_truth is None
    assert [row[0] for row in readout] == ["object 1", "object 2", "object 3"]
    assert all(len(row) == 6 for row in readout)
    assert "/ ellipse " in readout[1][1]
    assert all(cell[-1] in "✓✗" for row in readout for cell in row[1:])
    assert "stage 2" in summary
    assert "overlap" not in summary


def test_scene_exchange_truth(models):
    choices = scene_choices((0, 0, 0, 2, 2), (1, 2, 5, 28, 4))
    outputs = handlers.scene_handler(models, choices, "posY", (0, 1))
    swapped, swapped_truth, summary = outputs[3], outputs[4], outputs[6]
    expected = np.maximum(render_one(0, 0, 0, 2, 4), render_one(1, 2, 5, 28, 2))
    assert np.array_equal(swapped_truth[::4, ::4] // 255, expected)
    assert swapped.shape == (256, 256)
    assert "Exchanging **posY** of objects 1 and 2" in summary


def test_scene_exchange_with_itself_noted(models):
    choices = scene_choices((0, 0, 0, 2, 2), (1, 2, 5, 28, 4))
    outputs = handlers.scene_handler(models, choices, "shape", (1, 1))
    assert "object 2 with itself changes nothing" in outputs[6]
    assert outputs[4] is None


def test_scene_exchange_with_custom_image_explained(models):
    choices = scene_choices((0, 0, 0, 2, 2)) + [SpriteChoice(image=render_one(1, 2, 5, 28, 4))]
    outputs = handlers.scene_handler(models, choices, "shape", (0, 1))
    assert outputs[4] is None
    assert "No rendered exchange: a custom image has no factor values" in outputs[6]
    assert outputs[5][1][1].endswith(")")  # no truth to compare a custom image's readout with


def test_full_turn_described_as_zero():
    assert handlers.describe_value(2, 39) == "0.0°"
    assert handlers.describe_value(2, 0) == "0.0°"


def test_scene_overlap_warned_and_decoded(models):
    choices = scene_choices((0, 5, 0, 15, 15), (2, 5, 0, 16, 16))
    outputs = handlers.scene_handler(models, choices)
    assert "Objects 1 and 2 overlap" in outputs[6]
    assert outputs[2].shape == (256, 256)


def test_scene_rejects_bad_requests(models):
    choices = scene_choices((0, 0, 0, 2, 2), (1, 2, 5, 28, 4))
    with pytest.raises(ValueError, match="not both in a scene of 2"):
        handlers.scene_handler(models, choices, "shape", (0, 3))
    with pytest.raises(ValueError, match="unknown feature"):
        handlers.scene_handler(models, choices, "colour", (0, 1))
    with pytest.raises(ValueError, match="invalid object count"):
        handlers.scene_handler(models, scene_choices(*[(0, 0, 0, 0, 0)] * 6))
    without = Models(stage1=models.stage1, prototypes=models.prototypes, prototype_centres=models.prototype_centres)
    with pytest.raises(ValueError, match="stage-2 and stage-3 weights"):
        handlers.scene_handler(without, choices)


def test_random_scene_never_overlaps():
    for seed in range(10):
        values = handlers.random_scene(5, seed)
        images = [SpriteChoice(classes=snap_classes(*v)).image for v in values]
        assert len(values) == 5
        assert handlers.overlapping_pairs(images) == []


def test_default_scene_does_not_overlap():
    from vsa_demo.ui import SCENE_START

    images = [SpriteChoice(classes=snap_classes(*v)).image for v in SCENE_START]
    assert handlers.overlapping_pairs(images) == []
