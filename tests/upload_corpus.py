"""Image files of every kind a user may pick, written on demand for the upload tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def drawing(size=(120, 90), mode="RGB", ink="black", paper="white") -> Image.Image:
    image = Image.new("RGB", size, paper)
    ImageDraw.Draw(image).ellipse((size[0] * 0.3, size[1] * 0.3, size[0] * 0.7, size[1] * 0.7), fill=ink)
    return image.convert(mode)


def sixteen_bit() -> Image.Image:
    values = np.zeros((80, 80), dtype=np.uint16)
    values[20:60, 20:60] = 60000  # light square on a dark background, in 16-bit levels
    return Image.fromarray(values)


def transparent_rgba() -> Image.Image:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((16, 16, 40, 40), fill=(255, 0, 0, 255))
    return image


def patch_png_size(data: bytes, width: int, height: int) -> bytes:
    # IHDR is the first chunk: 8-byte signature, 4-byte length, b"IHDR", 13 bytes of data that
    # start with width and height, then the CRC of type and data.
    header = bytearray(data)
    body = struct.pack(">II", width, height) + bytes(header[24:29])
    header[16:29] = body
    header[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + body) & 0xFFFFFFFF)
    return bytes(header)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    # A mark at the top of the stored pixels; EXIF orientation 6 means "rotate 90 degrees clockwise
    # to display", which puts the mark on the right.
    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).rectangle((30, 5, 70, 30), fill=0)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    return buffer.getvalue()


def animated_gif() -> bytes:
    frames = [drawing((64, 64), "P"), drawing((64, 64), "P", ink="white", paper="black")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def corpus() -> dict[str, bytes]:
    """Name -> file bytes. Names ending in '.bad' must be rejected with a message."""
    files = {}
    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK"):
        image = drawing(mode=mode)
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        files[f"mode_{mode}.{fmt.lower()}"] = buffer.getvalue()
    files["mode_I16.png"] = png_bytes(sixteen_bit())
    files["transparent.png"] = png_bytes(transparent_rgba())
    files["light_on_dark.png"] = png_bytes(drawing(ink="white", paper="black"))
    files["tiny_3x2.png"] = png_bytes(Image.fromarray(np.array([[0, 255, 0], [0, 0, 0]], dtype=np.uint8)))
    files["large_3000x2000.png"] = png_bytes(drawing((3000, 2000), "L"))
    files["animated.gif"] = animated_gif()
    files["exif_rotated.jpg"] = exif_rotated_jpeg()
    files["webp.webp"] = (lambda b: (drawing().save(b, format="WEBP"), b.getvalue())[1])(io.BytesIO())
    files["blank.png.bad"] = png_bytes(Image.new("L", (50, 50), 255))
    files["one_pixel.png.bad"] = png_bytes(Image.new("L", (1, 1), 0))
    files["truncated.png.bad"] = png_bytes(drawing((200, 200)))[:300]
    files["not_an_image.png.bad"] = b"name,value\nshape,heart\n" * 20
    files["empty.png.bad"] = b""
    files["bomb.png.bad"] = patch_png_size(png_bytes(drawing((16, 16), "L")), 40000, 40000)
    return files


def write_corpus(folder: Path) -> dict[str, Path]:
    paths = {}
    for name, data in corpus().items():
        path = folder / name.removesuffix(".bad")
        path.write_bytes(data)
        paths[name] = path
    return paths
