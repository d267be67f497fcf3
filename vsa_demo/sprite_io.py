"""Turning user images (uploads and sketches) into 64x64 binary sprites.

How an image becomes a sprite:

1. It is read with Pillow, turned upright by its EXIF orientation, and only the first frame of an
   animation is used.
2. It becomes one grey level per pixel; transparent pixels count as background.
3. Ink is whatever contrasts with the image border: dark on a light background, light on a dark
   one (dSprites itself is white on black).
4. The picture is padded to a square with background, shrunk to 64x64 with area averaging, and a
   pixel is foreground when at least half of it is ink.

Anything that cannot become a sprite raises ``SpriteInputError`` with a message for the user.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .factors import IMAGE_SIZE

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 2**20
MAX_PIXELS = 25_000_000  # larger images are rejected before decoding, which stops decompression bombs
HOW_IT_WORKS = (
    "The image is padded to a square, shrunk to 64x64 pixels by area averaging, and a pixel becomes "
    "foreground when at least half of it is ink. Ink is whatever contrasts with the image border "
    "(dark on light or light on dark); transparent pixels are background. Animations use their first frame."
)


class SpriteInputError(ValueError):
    """An image that cannot be turned into a sprite; the message is meant for the user."""


def open_image(source: str | Path | bytes) -> Image.Image:
    """Open an uploaded file (path or bytes) as an upright, single-frame Pillow image.

    Raises:
        SpriteInputError: for a file that is too large, empty, not an image, truncated or corrupt.
    """
    name = "the upload" if isinstance(source, bytes) else Path(source).name
    data = source if isinstance(source, bytes) else None
    size = len(data) if data is not None else Path(source).stat().st_size
    if size == 0:
        raise SpriteInputError(f"{name} is empty; choose an image file (PNG, JPEG, GIF, BMP, TIFF or WebP)")
    if size > MAX_UPLOAD_BYTES:
        raise SpriteInputError(f"{name} is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data) if data is not None else source)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise SpriteInputError(
                    f"{name} is {width}x{height} pixels; images above {MAX_PIXELS // 1_000_000} megapixels are rejected"
                )
            image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image)
    except SpriteInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise SpriteInputError(f"{name} is too large to decode safely ({error})") from error
    except UnidentifiedImageError as error:
        raise SpriteInputError(f"{name} is not an image Pillow can read; choose a PNG, JPEG, GIF, BMP, TIFF or WebP file") from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise SpriteInputError(f"{name} could not be decoded, it is truncated or corrupt ({error})") from error
    return image


def grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Return grey levels in [0, 1] and opacity in [0, 1] for any Pillow mode.

    Shapes:
        returns two (H, W) float32 arrays
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        # 16-bit files use the full 0..65535 range, but Pillow also stores 8-bit levels in these modes.
        high = 65535.0 if values.max(initial=0) > 255 else 255.0
        return np.clip(values / high, 0, 1), np.ones(values.shape, dtype=np.float32)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa")
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0 if has_alpha else None
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    if alpha is None:
        alpha = np.ones_like(grey)
    return grey, alpha


def ink_map(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Return how much each pixel is ink, in [0, 1], judged against the border's tone.

    Shapes:
        grey, alpha: (H, W) -> (H, W)
    """
    opaque = alpha >= 0.5
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    border_opaque = np.concatenate([opaque[0], opaque[-1], opaque[:, 0], opaque[:, -1]])
    if border_opaque.any():
        background_is_light = np.median(border[border_opaque]) >= 0.5
    else:
        # A fully transparent border: the opaque pixels are the drawing, whatever their tone.
        return alpha
    ink = 1.0 - grey if background_is_light else grey
    return ink * alpha


def to_sprite(image: Image.Image | np.ndarray) -> np.ndarray:
    """Convert a picture to a 64x64 sprite in {0, 1}.

    Raises:
        SpriteInputError: if the picture has no ink, or is ink everywhere.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    grey, alpha = grey_and_alpha(image)
    ink = ink_map(grey, alpha)

    # Pad to a square with background so the aspect ratio is kept.
    height, width = ink.shape
    side = max(height, width)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = ink

    small = Image.fromarray(square, mode="F").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
    sprite = (np.asarray(small) >= 0.5).astype(np.uint8)
    if not sprite.any():
        raise SpriteInputError("no foreground found: draw or upload a shape that contrasts with its background")
    if sprite.all():
        raise SpriteInputError("the whole image is foreground: use a shape on a plain background")
    return sprite


def sprite_from_file(path: str | Path) -> np.ndarray:
    """Read an uploaded image file and convert it to a sprite; see ``to_sprite``."""
    return to_sprite(open_image(path))


def sprite_from_sketch(value) -> np.ndarray:
    """Convert the value of a Gradio Sketchpad (a dict with a ``composite`` image) to a sprite.

    Raises:
        SpriteInputError: asking the user to draw something when the sketch is empty.
    """
    composite = value.get("composite") if isinstance(value, dict) else value
    if composite is None:
        raise SpriteInputError("the sketch is empty: draw a shape first")
    composite = np.asarray(composite)
    if composite.ndim == 3 and composite.shape[2] == 4 and not composite[..., 3].any():
        raise SpriteInputError("the sketch is empty: draw a shape first")
    try:
        return to_sprite(composite)
    except SpriteInputError as error:
        if "no foreground" in str(error):
            raise SpriteInputError("the sketch is empty: draw a shape first") from None
        raise
