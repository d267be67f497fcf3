"""Rendering speed against reading the same images from a compressed file in the official layout.

Renders N images (by default the whole 737,280-image grid) with the procedural renderer. Then
writes them to a compressed ``.npz`` in the official layout (imgs, latents_values,
latents_classes) and times reading the images back, which is what a cache of rendered images
would cost.

Usage: python benchmarks/render.py [--n N] [--repeats R] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from vsa_demo.factors import NUM_IMAGES, classes_to_values, index_to_classes  # noqa: E402
from vsa_demo.render import render, sprite_templates  # noqa: E402


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=NUM_IMAGES, help=f"images to render (default: {NUM_IMAGES}, the whole grid)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is reported (default: 3)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    start = time.perf_counter()
    sprite_templates()
    template_seconds = time.perf_counter() - start

    classes = index_to_classes(np.arange(args.n) % NUM_IMAGES)
    out = np.empty((args.n, 64, 64), dtype=np.uint8)
    render_seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        render(classes, out=out)
        render_seconds.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
        official = np.concatenate([np.zeros((args.n, 1), dtype=np.int64), classes], axis=1)
        values = np.concatenate([np.ones((args.n, 1)), classes_to_values(classes)], axis=1)
        start = time.perf_counter()
        np.savez_compressed(path, imgs=out, latents_classes=official, latents_values=values)
        write_seconds = time.perf_counter() - start
        size = path.stat().st_size
        read_seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with np.load(path) as archive:
                back = archive["imgs"]
            read_seconds.append(time.perf_counter() - start)
        assert np.array_equal(back, out), "the file did not round-trip"

    result = {
        "machine": machine(),
        "images": args.n,
        "template_seconds": round(template_seconds, 3),
        "render_seconds": round(min(render_seconds), 3),
        "render_images_per_second": round(args.n / min(render_seconds)),
        "npz_write_seconds": round(write_seconds, 2),
        "npz_megabytes": round(size / 2**20, 1),
        "npz_read_seconds": round(min(read_seconds), 3),
        "npz_read_images_per_second": round(args.n / min(read_seconds)),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
