"""The dSprites factor grid: names, sizes, official values and index arithmetic.

dSprites has six generative factors in its file order: color (one value), shape, scale,
orientation, posX and posY. This project models the five factors after color, always in the
order ``shape, scale, orientation, posX, posY``. A factor's *class* is its index into the
factor's value list, and a sprite's *official index* is its row in the official file, where posY
varies fastest::

    index = classes @ [737280, 245760, 40960, 1024, 32, 1]   # over (color, shape, ..., posY)

Color has a single class, so over the five modelled factors the strides are
``[245760, 40960, 1024, 32, 1]``.
"""

from __future__ import annotations

import numpy as np

FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
NUM_FACTORS = len(FACTOR_NAMES)
NUM_IMAGES = int(np.prod(FACTOR_SIZES))  # 737,280
IMAGE_SIZE = 64

SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
SHAPE_VALUES = np.array([1.0, 2.0, 3.0])  # as stored in the official latents_values
SCALE_VALUES = np.linspace(0.5, 1.0, 6)
# Both ends are included, as in the official file, so classes 0 and 39 render alike.
ORIENTATION_VALUES = np.linspace(0.0, 2.0 * np.pi, 40)
ORIENTATION_STEP = 2.0 * np.pi / 39.0  # radians between neighbouring classes
POSITION_VALUES = np.linspace(0.0, 1.0, 32)
FACTOR_VALUES: tuple[np.ndarray, ...] = (
    SHAPE_VALUES,
    SCALE_VALUES,
    ORIENTATION_VALUES,
    POSITION_VALUES,
    POSITION_VALUES,
)

# Rotational symmetry period in radians per shape: a square repeats every quarter turn,
# an ellipse every half turn, a heart only after a full turn.
SYMMETRY_PERIODS = np.array([np.pi / 2.0, np.pi, 2.0 * np.pi])

STRIDES = np.array([int(np.prod(FACTOR_SIZES[i + 1:])) for i in range(NUM_FACTORS)], dtype=np.int64)
OFFICIAL_FACTOR_NAMES: tuple[str, ...] = ("color",) + FACTOR_NAMES
OFFICIAL_FACTOR_SIZES: tuple[int, ...] = (1,) + FACTOR_SIZES


def factor_index(name: str) -> int:
    """Return the position of factor ``name`` in ``FACTOR_NAMES``.

    Raises:
        ValueError: if ``name`` is not one of the five modelled factors.
    """
    if name not in FACTOR_NAMES:
        raise ValueError(f"unknown factor {name!r}; expected one of {', '.join(FACTOR_NAMES)}")
    return FACTOR_NAMES.index(name)


def check_classes(classes: np.ndarray) -> np.ndarray:
    """Validate factor classes and return them as an int64 array.

    Shapes:
        classes: (..., F) with F = 5, in the order shape, scale, orientation, posX, posY.

    Raises:
        ValueError: if the last dimension is not 5 or a class lies outside its factor's range.
    """
    classes = np.asarray(classes)
    if classes.ndim == 0 or classes.shape[-1] != NUM_FACTORS:
        raise ValueError(
            f"factor classes must have shape (..., {NUM_FACTORS}) in the order "
            f"{', '.join(FACTOR_NAMES)}; got shape {classes.shape}"
        )
    if not np.issubdtype(classes.dtype, np.integer):
        rounded = np.rint(classes)
        if not np.all(rounded == classes):
            raise ValueError("factor classes must be whole numbers; got non-integer values")
        classes = rounded
    classes = classes.astype(np.int64, copy=False)
    sizes = np.array(FACTOR_SIZES)
    bad = (classes < 0) | (classes >= sizes)
    if bad.any():
        where = np.argwhere(bad)[0]
        factor = int(where[-1])
        value = int(classes[tuple(where)])
        raise ValueError(
            f"{FACTOR_NAMES[factor]} class {value} is out of range; "
            f"expected 0 to {FACTOR_SIZES[factor] - 1}"
        )
    return classes


def classes_to_index(classes: np.ndarray) -> np.ndarray:
    """Convert factor classes to official flat indices (posY fastest).

    Shapes:
        classes: (..., 5) -> (...,) int64
    """
    return check_classes(classes) @ STRIDES


def index_to_classes(index: np.ndarray) -> np.ndarray:
    """Convert official flat indices to factor classes, the inverse of ``classes_to_index``.

    Shapes:
        index: (...,) -> (..., 5) int64

    Raises:
        ValueError: if an index lies outside ``[0, 737280)``.
    """
    index = np.asarray(index, dtype=np.int64)
    if np.any((index < 0) | (index >= NUM_IMAGES)):
        bad = int(index[(index < 0) | (index >= NUM_IMAGES)].flat[0])
        raise ValueError(f"image index {bad} is out of range; expected 0 to {NUM_IMAGES - 1}")
    return (index[..., None] // STRIDES) % np.array(FACTOR_SIZES)


def classes_to_values(classes: np.ndarray) -> np.ndarray:
    """Convert factor classes to the official factor values (shape 1 to 3, scale, radians, [0, 1]).

    Shapes:
        classes: (..., 5) -> (..., 5) float64
    """
    classes = check_classes(classes)
    return np.stack([FACTOR_VALUES[i][classes[..., i]] for i in range(NUM_FACTORS)], axis=-1)


def values_to_classes(values: np.ndarray) -> np.ndarray:
    """Snap factor values to the nearest class of each factor, the inverse of ``classes_to_values``.

    Shapes:
        values: (..., 5) float -> (..., 5) int64

    Raises:
        ValueError: if the last dimension is not 5 or a value is not finite.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0 or values.shape[-1] != NUM_FACTORS:
        raise ValueError(f"factor values must have shape (..., {NUM_FACTORS}); got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("factor values must be finite; got NaN or infinity")
    columns = []
    for i, grid in enumerate(FACTOR_VALUES):
        columns.append(np.abs(values[..., i, None] - grid).argmin(axis=-1))
    return np.stack(columns, axis=-1).astype(np.int64)


def sample_classes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` factor combinations uniformly from the grid.

    Shapes:
        returns (n, 5) int64
    """
    return np.stack([rng.integers(0, size, n) for size in FACTOR_SIZES], axis=-1)


def orientation_error(shape: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Return the angle in radians between two orientation classes, modulo the shape's symmetry.

    A square turned a quarter turn, or an ellipse turned half a turn, looks the same, so the
    error is the circular distance modulo ``SYMMETRY_PERIODS[shape]``.

    Shapes:
        shape, predicted, true: (...,) int classes -> (...,) float64
    """
    period = SYMMETRY_PERIODS[np.asarray(shape)]
    delta = np.abs(ORIENTATION_VALUES[np.asarray(predicted)] - ORIENTATION_VALUES[np.asarray(true)])
    delta = np.mod(delta, period)
    return np.minimum(delta, period - delta)


def within_one_bin(factor: int, shape: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Return whether a predicted class counts as correct for ``factor``.

    Shape and scale must match exactly. Orientation and the positions count as correct within one
    class of the truth, and orientation is compared modulo the shape's rotational symmetry.

    Shapes:
        shape, predicted, true: (...,) int classes -> (...,) bool
    """
    predicted = np.asarray(predicted)
    true = np.asarray(true)
    if factor == 2:
        return orientation_error(shape, predicted, true) <= ORIENTATION_STEP * 1.0001
    if factor in (3, 4):
        return np.abs(predicted - true) <= 1
    return predicted == true
