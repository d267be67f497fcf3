import os

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vsa_demo.factors import OFFICIAL_FACTOR_SIZES, classes_to_values  # noqa: E402
from vsa_demo.render import render  # noqa: E402

# A sub-grid of dSprites small enough to write in a test: every shape and orientation class 0 and
# 10, two scales and four positions along each axis.
SUBGRID = ([0], [0, 1, 2], [0, 5], [0, 10], [0, 10, 20, 31], [0, 10, 20, 31])


def official_arrays(subgrid=SUBGRID):
    """Arrays in the official layout for a sub-grid, in official order (posY fastest)."""
    mesh = np.meshgrid(*[np.array(v) for v in subgrid], indexing="ij")
    classes = np.stack([m.reshape(-1) for m in mesh], axis=1).astype(np.int64)  # (N, 6)
    values = np.concatenate([np.ones((len(classes), 1)), classes_to_values(classes[:, 1:])], axis=1)
    images = render(classes[:, 1:])
    metadata = np.array({"description": "test sub-grid"}, dtype=object)
    return {"imgs": images, "latents_values": values, "latents_classes": classes, "metadata": metadata}


@pytest.fixture
def official_npz(tmp_path):
    path = tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    arrays = official_arrays()
    np.savez_compressed(path, **arrays)
    assert len(OFFICIAL_FACTOR_SIZES) == arrays["latents_classes"].shape[1]
    return path
