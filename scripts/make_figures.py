"""Draw docs/sprites.png (the factor grid) and docs/datasets.png (examples of each dataset).

Usage: python scripts/make_figures.py [--out docs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from vsa_demo.factors import SCALE_VALUES, SHAPE_NAMES
from vsa_demo.pictures import grid
from vsa_demo.render import render_one
from vsa_demo.official import RendererSource
from vsa_train.datasets import sample


def contact_sheet():
    rows, labels = [], []
    orientations = list(range(0, 40, 4))
    for shape, name in enumerate(SHAPE_NAMES):
        for scale in (0, 2, 5):
            rows.append([render_one(shape, scale, o, 16, 16) for o in orientations])
            labels.append(f"{name} {SCALE_VALUES[scale]:.1f}")
    positions = list(range(0, 32, 31 // 9 + 1))[:10]
    for shape, name in enumerate(SHAPE_NAMES):
        rows.append([render_one(shape, 3, 0, x, 16) for x in positions])
        labels.append(f"{name} posX")
        rows.append([render_one(shape, 3, 0, 16, y) for y in positions])
        labels.append(f"{name} posY")
    columns = [f"or {o}" for o in orientations]
    return grid(rows, labels, columns, upscale=2)


def dataset_sheet(seed: int = 0, count: int = 4):
    source = RendererSource()
    rows, labels = [], []
    paired = sample("paired", seed, np.arange(count * 2), source, 1, 1)
    rows.append([img for pair in paired["images"][:count] for img in pair])
    labels.append("paired A|B")
    scenes = sample("scene", seed, np.arange(8), source, 2, 5)
    rows.append(list(scenes["scene"]))
    labels.append("scene 2-5")
    paired_scene = sample("paired-scene", seed, np.arange(count), source, 2, 2)
    rows.append([img for pair in paired_scene["scenes"] for img in pair])
    labels.append("paired-scene")
    return grid(rows, labels, None, upscale=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    contact_sheet().save(args.out / "sprites.png")
    dataset_sheet().save(args.out / "datasets.png")
    print(f"wrote {args.out / 'sprites.png'} and {args.out / 'datasets.png'}")


if __name__ == "__main__":
    main()
