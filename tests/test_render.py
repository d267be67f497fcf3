import numpy as np
import pytest

from vsa_demo.factors import NUM_IMAGES, index_to_classes
from vsa_demo.render import render, render_one, render_scene, sprite_centres


def centroid(image):
    rows, cols = np.nonzero(image)
    return rows.mean(), cols.mean()


def test_output_is_binary_uint8():
    images = render(np.array([[0, 0, 0, 0, 0], [2, 5, 39, 31, 31]]))
    assert images.shape == (2, 64, 64)
    assert images.dtype == np.uint8
    assert set(np.unique(images)) <= {0, 1}


def test_every_sprite_visible_inside_frame():
    # Every (shape, scale, orientation) at the four corner positions keeps its full area.
    classes = np.array([[s, c, o, x, y] for s in range(3) for c in range(6) for o in range(40) for x in (0, 31) for y in (0, 31)])
    images = render(classes)
    centred = render(np.concatenate([classes[:, :3], np.full((len(classes), 2), 15)], axis=1))
    assert (images.sum(axis=(1, 2)) > 0).all()
    assert np.array_equal(images.sum(axis=(1, 2)), centred.sum(axis=(1, 2)))


def test_centroid_moves_monotonically_with_position():
    for shape in range(3):
        xs = [centroid(render_one(shape, 3, 7, x, 10))[1] for x in range(32)]
        ys = [centroid(render_one(shape, 3, 7, 10, y))[0] for y in range(32)]
        assert np.all(np.diff(xs) > 0), f"shape {shape}: column centroid not increasing"
        assert np.all(np.diff(ys) > 0), f"shape {shape}: row centroid not increasing"


def test_position_zero_is_top_left():
    row, col = centroid(render_one(0, 5, 0, 0, 0))
    assert (row, col) == (15.5, 15.5)
    row, col = centroid(render_one(0, 5, 0, 31, 31))
    assert (row, col) == (47.5, 47.5)
    assert sprite_centres(np.array([0, 0, 0, 31, 0])).tolist() == [15.5, 47.5]


def test_area_grows_with_scale():
    for shape in range(3):
        areas = [int(render_one(shape, scale, 0, 16, 16).sum()) for scale in range(6)]
        assert np.all(np.diff(areas) > 0), f"shape {shape}: areas {areas}"


def test_square_side_matches_official():
    for scale, side in enumerate([10, 12, 14, 16, 18, 20]):
        image = render_one(0, scale, 0, 16, 16)
        rows, cols = np.nonzero(image)
        assert cols.max() - cols.min() + 1 == side
        assert rows.max() - rows.min() + 1 == side
        assert image.sum() == side * side


def test_ellipse_is_wider_than_tall():
    rows, cols = np.nonzero(render_one(1, 5, 0, 16, 16))
    assert (cols.max() - cols.min() + 1, rows.max() - rows.min() + 1) == (26, 14)


def test_heart_points_down_with_centroid_above_centre():
    image = render_one(2, 5, 0, 16, 16)
    rows, cols = np.nonzero(image)
    assert (cols.max() - cols.min() + 1, rows.max() - rows.min() + 1) == (20, 17)
    centre_row = sprite_centres(np.array([2, 5, 0, 16, 16]))[0]
    assert 1.0 < centre_row - rows.mean() < 3.0
    top_width = image[rows.min() + 2].sum()
    bottom_width = image[rows.max() - 1].sum()
    assert top_width > bottom_width


def test_square_quarter_turn_same_pixels_up_to_border():
    # Orientation class 10 is 10 * 2*pi/39, about 2.3 degrees past a quarter turn.
    for scale in range(6):
        upright = render_one(0, scale, 0, 16, 16).astype(bool)
        turned = render_one(0, scale, 10, 16, 16).astype(bool)
        grown = np.zeros_like(upright)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                grown |= np.roll(np.roll(upright, dr, 0), dc, 1)
        shrunk = ~np.zeros_like(upright)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                shrunk &= np.roll(np.roll(upright, dr, 0), dc, 1)
        assert not (turned & ~grown).any()
        assert not (shrunk & ~turned).any()


def test_rotation_is_counter_clockwise_on_screen():
    # Turning a heart a quarter turn counter-clockwise moves its point from the bottom to the right.
    image = render_one(2, 5, 10, 16, 16)
    rows, cols = np.nonzero(image)
    centre_col = sprite_centres(np.array([2, 5, 10, 16, 16]))[1]
    assert cols.mean() < centre_col - 1.0  # the lobes, which hold most pixels, are on the left
    assert image[:, cols.max()].sum() < image[:, cols.min()].sum()


def test_shapes_have_clearly_different_areas():
    for scale in range(6):
        areas = {shape: int(render_one(shape, scale, 0, 16, 16).sum()) for shape in range(3)}
        assert areas[0] > 1.15 * areas[1] or areas[1] > 1.15 * areas[0]
        assert areas[0] > 1.25 * areas[2]
        assert areas[1] != areas[2]


def test_official_areas_within_ten_percent():
    official = {
        0: [100, 144, 196, 256, 324, 400],
        1: [76, 104, 144, 184, 228, 288],
        2: [58, 84, 108, 140, 182, 222],
    }
    for shape, areas in official.items():
        for scale, area in enumerate(areas):
            measured = int(render_one(shape, scale, 0, 16, 16).sum())
            assert measured == pytest.approx(area, rel=0.1), (shape, scale)


def test_render_matches_grid_chunks():
    index = np.random.default_rng(0).integers(0, NUM_IMAGES, 300)
    classes = index_to_classes(index)
    together = render(classes)
    one_by_one = np.stack([render(classes[i:i + 1])[0] for i in range(len(classes))])
    assert np.array_equal(together, one_by_one)
    assert np.array_equal(render(classes, chunk=7), together)


def test_render_scene_skips_padding():
    scene = render_scene(np.array([[0, 0, 0, 0, 0], [1, 0, 0, 31, 31], [-1, -1, -1, -1, -1]]))
    expected = render_one(0, 0, 0, 0, 0) | render_one(1, 0, 0, 31, 31)
    assert np.array_equal(scene, expected)


def test_render_rejects_bad_classes():
    with pytest.raises(ValueError, match="scale class 6"):
        render(np.array([[0, 6, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        render(np.array([0, 0, 0, 0, 0]))
