import numpy as np
import pytest

from vsa_demo import factors
from vsa_demo.factors import (
    FACTOR_SIZES,
    NUM_IMAGES,
    classes_to_index,
    classes_to_values,
    index_to_classes,
    values_to_classes,
    within_one_bin,
)


def test_grid_matches_official_sizes():
    assert FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert NUM_IMAGES == 737_280
    assert factors.ORIENTATION_VALUES[0] == 0.0
    assert factors.ORIENTATION_VALUES[-1] == pytest.approx(2 * np.pi)
    assert factors.SCALE_VALUES.tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


def test_index_follows_ordering_formula():
    rng = np.random.default_rng(0)
    classes = factors.sample_classes(rng, 1000)
    official = np.concatenate([np.zeros((1000, 1), dtype=np.int64), classes], axis=1)
    expected = official @ np.array([737280, 245760, 40960, 1024, 32, 1])
    assert np.array_equal(classes_to_index(classes), expected)


def test_posy_varies_fastest():
    assert classes_to_index([0, 0, 0, 0, 1]) == 1
    assert classes_to_index([0, 0, 0, 1, 0]) == 32
    assert classes_to_index([0, 0, 1, 0, 0]) == 1024
    assert classes_to_index([0, 1, 0, 0, 0]) == 40960
    assert classes_to_index([1, 0, 0, 0, 0]) == 245760
    assert classes_to_index([2, 5, 39, 31, 31]) == NUM_IMAGES - 1


def test_index_round_trip_whole_grid():
    index = np.arange(NUM_IMAGES)
    classes = index_to_classes(index)
    assert classes.shape == (NUM_IMAGES, 5)
    assert np.array_equal(classes_to_index(classes), index)


def test_values_round_trip():
    classes = factors.sample_classes(np.random.default_rng(1), 500)
    values = classes_to_values(classes)
    assert set(np.unique(values[:, 0])) <= {1.0, 2.0, 3.0}
    assert np.array_equal(values_to_classes(values), classes)


def test_out_of_range_class_names_factor():
    with pytest.raises(ValueError, match="orientation class 40"):
        classes_to_index([0, 0, 40, 0, 0])
    with pytest.raises(ValueError, match="shape"):
        check = factors.check_classes
        check(np.zeros((2, 4), dtype=int))
    with pytest.raises(ValueError, match="out of range"):
        index_to_classes([NUM_IMAGES])


def test_orientation_counts_symmetry():
    square, ellipse, heart = 0, 1, 2
    quarter_turn = 10  # 10 steps of 2*pi/39 is within one step of a quarter turn
    assert within_one_bin(2, np.array([square]), np.array([quarter_turn]), np.array([0]))[0]
    assert not within_one_bin(2, np.array([heart]), np.array([quarter_turn]), np.array([0]))[0]
    assert within_one_bin(2, np.array([ellipse]), np.array([20]), np.array([0]))[0]
    assert within_one_bin(2, np.array([heart]), np.array([39]), np.array([0]))[0]  # both ends render alike
    assert within_one_bin(3, np.array([heart]), np.array([5]), np.array([6]))[0]
    assert not within_one_bin(3, np.array([heart]), np.array([4]), np.array([6]))[0]
    assert not within_one_bin(1, np.array([heart]), np.array([4]), np.array([5]))[0]
