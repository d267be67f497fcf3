"""A vectorised procedural renderer for the dSprites grid.

Pixel mapping
-------------
Row and column indices are 0-based, rows grow downward, and a pixel's index is the coordinate of
its centre. A sprite is drawn from a *template*, a 32x32 window whose centre is at (15.5, 15.5),
and the window is pasted whole-pixel into the 64x64 frame:

* **Position**: the window's top-left corner sits at ``round(32 * posX)`` columns and
  ``round(32 * posY)`` rows, so the sprite centre is at ``15.5 + round(32 * posX)`` (column) and
  ``15.5 + round(32 * posY)`` (row). posX = 0 is at the left and posY = 0 at the top, and the 32
  positions span 32 pixels. Rounding keeps the sprite's pixels identical under translation; the
  official centre ``15.5 + 32 * pos`` differs from it by at most half a pixel.
* **Square**: side ``20 * scale`` pixels (10 to 20), axis-aligned at orientation 0.
* **Ellipse**: major axis horizontal at orientation 0; semi-axes per scale from a table fitted to
  the official bounding boxes (26 x 14 pixels at scale 1, 12 x 8 at scale 0.5) and areas.
* **Heart**: two disc lobes at the top and a point at the bottom at orientation 0. Bounding box
  ``20 * scale`` by ``17 * scale`` pixels centred on the sprite centre, so its pixel centroid lies
  about two rows above that centre, as in the official sprites.
* **Orientation**: the shape turns about the sprite centre by the orientation angle,
  counter-clockwise as seen on screen.
* A pixel is foreground when at least half of its area, estimated on an 8x8 sub-pixel grid, lies
  inside the shape. Every sprite stays inside its window, so no pixel leaves the frame.

Since the shape depends only on (shape, scale, orientation), the 720 templates are computed once
and rendering a batch is a gather plus a paste, which draws the full 737,280-image grid in seconds.
"""

from __future__ import annotations

import functools

import numpy as np

from .factors import (
    FACTOR_SIZES,
    IMAGE_SIZE,
    ORIENTATION_VALUES,
    SCALE_VALUES,
    check_classes,
)

WINDOW = 32
WINDOW_CENTRE = (WINDOW - 1) / 2.0  # 15.5
SUBSAMPLES = 8

# Ellipse semi-axes (horizontal, vertical) in pixels for the six scales. The horizontal ones are
# half the official bounding-box widths; the vertical ones make pi * a * b match official areas.
ELLIPSE_SEMI_AXES = np.array(
    [[6.0, 4.03], [8.0, 4.14], [9.0, 5.09], [10.0, 5.86], [11.2, 6.45], [13.0, 7.05]]
)

# Heart at scale 1, in pixels relative to the sprite centre with y pointing down: two lobes of
# radius HEART_LOBE_RADIUS whose outer edges give a width of 20, and a point 17 pixels below the
# top of the lobes.
HEART_WIDTH = 20.0
HEART_HEIGHT = 17.0
HEART_LOBE_RADIUS = 5.3


def _inside_square(x: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    half = 10.0 * scale
    return (np.abs(x) <= half) & (np.abs(y) <= half)


def _inside_ellipse(x: np.ndarray, y: np.ndarray, scale_class: int) -> np.ndarray:
    a, b = ELLIPSE_SEMI_AXES[scale_class]
    return (x / a) ** 2 + (y / b) ** 2 <= 1.0


def _inside_heart(x: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    # Work at scale 1 so the geometry is written once.
    x = np.abs(x / scale)  # the heart is mirror-symmetric about its vertical axis
    y = y / scale
    r = HEART_LOBE_RADIUS
    top = -HEART_HEIGHT / 2.0
    lobe_x = HEART_WIDTH / 2.0 - r
    lobe_y = top + r
    tip_y = HEART_HEIGHT / 2.0
    in_lobe = (x - lobe_x) ** 2 + (y - lobe_y) ** 2 <= r * r

    # Below the lobe centres the outline runs along the outer tangent from the tip to each lobe,
    # so keep points on the axis side of the line through the tip and the tangent point.
    centre_x, centre_y = lobe_x, lobe_y - tip_y  # lobe centre relative to the tip
    distance = np.hypot(centre_x, centre_y)
    tangent_length = np.sqrt(distance**2 - r**2)
    turn = np.arcsin(r / distance)
    candidates = []
    for sign in (1.0, -1.0):
        c, s = np.cos(sign * turn), np.sin(sign * turn)
        candidates.append(((c * centre_x - s * centre_y) / distance * tangent_length,
                           (s * centre_x + c * centre_y) / distance * tangent_length))
    point_x, point_y = max(candidates)  # the tangent point farther from the axis
    # The sign of the cross product gives the side of the line, and the axis point (0, lobe_y) is inside.
    side = point_x * (y - tip_y) - point_y * x
    inside_side = point_x * (lobe_y - tip_y) - point_y * 0.0
    beside_lobe = (x <= lobe_x) | (y >= tip_y + point_y)  # the disc covers the rest above P
    below_lobes = (y >= lobe_y) & (y <= tip_y) & (side * inside_side >= 0.0) & beside_lobe
    return in_lobe | below_lobes


@functools.lru_cache(maxsize=1)
def sprite_templates() -> np.ndarray:
    """Return the 32x32 template of every (shape, scale, orientation) combination.

    Shapes:
        returns (3, 6, 40, 32, 32) uint8 in {0, 1}; the sprite centre is at (15.5, 15.5).
    """
    n_shapes, n_scales, n_orientations = FACTOR_SIZES[:3]
    templates = np.zeros((n_shapes, n_scales, n_orientations, WINDOW, WINDOW), dtype=np.uint8)

    # Sub-pixel sample offsets, relative to the window centre, in pixels.
    sub = (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES - 0.5
    coords = np.arange(WINDOW) - WINDOW_CENTRE
    rows = (coords[:, None] + sub[None, :]).reshape(-1)  # (32 * 8,)
    cols = rows
    row_grid, col_grid = np.meshgrid(rows, cols, indexing="ij")  # (256, 256)

    for o, angle in enumerate(ORIENTATION_VALUES):
        # Screen coordinates have y down, so a counter-clockwise turn on screen by `angle` maps a
        # shape point (u, v) to (u cos + v sin, -u sin + v cos). Invert it for each sample.
        cos, sin = np.cos(angle), np.sin(angle)
        u = col_grid * cos - row_grid * sin
        v = col_grid * sin + row_grid * cos
        for s, scale in enumerate(SCALE_VALUES):
            masks = (
                _inside_square(u, v, scale),
                _inside_ellipse(u, v, s),
                _inside_heart(u, v, scale),
            )
            for shape, mask in enumerate(masks):
                coverage = mask.reshape(WINDOW, SUBSAMPLES, WINDOW, SUBSAMPLES).mean(axis=(1, 3))
                templates[shape, s, o] = coverage >= 0.5
    templates.setflags(write=False)
    return templates


def sprite_offsets(pos_classes: np.ndarray) -> np.ndarray:
    """Return the pixel offset of the template window for position classes 0 to 31.

    Shapes:
        pos_classes: (...,) int -> (...,) int64 in 0..32
    """
    return np.rint(32.0 * np.asarray(pos_classes) / 31.0).astype(np.int64)


def sprite_centres(classes: np.ndarray) -> np.ndarray:
    """Return each sprite's centre as (row, column) pixel coordinates.

    Shapes:
        classes: (..., 5) -> (..., 2) float64
    """
    classes = check_classes(classes)
    return np.stack(
        [sprite_offsets(classes[..., 4]) + WINDOW_CENTRE, sprite_offsets(classes[..., 3]) + WINDOW_CENTRE],
        axis=-1,
    )


_WINDOW_FLAT = (np.arange(WINDOW)[:, None] * IMAGE_SIZE + np.arange(WINDOW)[None, :]).reshape(-1)


def render(classes: np.ndarray, out: np.ndarray | None = None, chunk: int = 8192) -> np.ndarray:
    """Draw sprites from their factor classes.

    Args:
        classes: factor classes in the order shape, scale, orientation, posX, posY.
        out: optional array to draw into; it is overwritten.
        chunk: images drawn per vectorised step, which bounds the index memory.

    Shapes:
        classes: (N, 5) int -> (N, 64, 64) uint8 in {0, 1}

    Raises:
        ValueError: if ``classes`` has the wrong shape or a class is out of range.
    """
    classes = check_classes(classes)
    if classes.ndim != 2:
        raise ValueError(f"render expects classes of shape (N, 5); got shape {classes.shape}")
    n = classes.shape[0]
    if out is None:
        out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    else:
        out[...] = 0
    templates = sprite_templates().reshape(-1, WINDOW * WINDOW)  # (720, 1024)
    flat_out = out.reshape(n, IMAGE_SIZE * IMAGE_SIZE)  # a view, since `out` is contiguous

    for start in range(0, n, chunk):
        part = classes[start:start + chunk]
        template_id = (part[:, 0] * FACTOR_SIZES[1] + part[:, 1]) * FACTOR_SIZES[2] + part[:, 2]
        corner = sprite_offsets(part[:, 4]) * IMAGE_SIZE + sprite_offsets(part[:, 3])  # (n,)
        target = corner[:, None] + _WINDOW_FLAT[None, :]  # (n, 1024) flat pixel indices
        rows = np.arange(start, start + len(part))[:, None]
        flat_out[rows, target] = templates[template_id]
    return out


def render_one(shape: int, scale: int, orientation: int, pos_x: int, pos_y: int) -> np.ndarray:
    """Draw a single sprite from its five factor classes; returns (64, 64) uint8 in {0, 1}."""
    return render(np.array([[shape, scale, orientation, pos_x, pos_y]]))[0]


def render_scene(classes: np.ndarray) -> np.ndarray:
    """Draw several objects into one frame as the union of their sprites.

    Rows of ``classes`` with any negative entry are padding and are skipped.

    Shapes:
        classes: (K, 5) -> (64, 64) uint8 in {0, 1}
    """
    classes = np.asarray(classes)
    keep = classes[(classes >= 0).all(axis=-1)]
    if len(keep) == 0:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    return render(keep).max(axis=0)
