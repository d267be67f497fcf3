"""Small helpers that turn binary sprites and decoded logits into pictures for figures and the app."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

BACKGROUND = 255
GAP = 2


def to_pixels(image: np.ndarray, upscale: int = 1) -> np.ndarray:
    """Convert a {0, 1} sprite or a [0, 1] probability map to a uint8 picture, white ink on black.

    Shapes:
        image: (H, W) -> (H * upscale, W * upscale) uint8
    """
    pixels = np.clip(np.asarray(image, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
    if upscale > 1:
        pixels = pixels.repeat(upscale, axis=0).repeat(upscale, axis=1)
    return pixels


def grid(rows: list[list[np.ndarray]], row_labels: list[str] | None = None, column_labels: list[str] | None = None,
         upscale: int = 2, label_width: int = 90, label_height: int = 16) -> Image.Image:
    """Lay out sprites as a labelled grid on a light background.

    Args:
        rows: a list of rows, each a list of (H, W) images in [0, 1]; rows may differ in length.
        row_labels, column_labels: optional text to the left of each row and above each column.
        upscale: integer magnification of every sprite.
    """
    height, width = rows[0][0].shape
    cell_h, cell_w = height * upscale + GAP, width * upscale + GAP
    columns = max(len(row) for row in rows)
    left = label_width if row_labels else 0
    top = label_height if column_labels else 0
    canvas = Image.new("L", (left + columns * cell_w + GAP, top + len(rows) * cell_h + GAP), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            canvas.paste(Image.fromarray(to_pixels(image, upscale)), (left + GAP + c * cell_w, top + GAP + r * cell_h))
        if row_labels:
            draw.text((4, top + r * cell_h + cell_h // 2 - 6), row_labels[r], fill=0)
    if column_labels:
        for c, text in enumerate(column_labels):
            draw.text((left + GAP + c * cell_w + 2, 2), text, fill=0)
    return canvas
