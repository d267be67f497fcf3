"""Reader for the official dSprites file and its HDF5 twin.

The official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` contains ``imgs`` (737280, 64, 64)
uint8 in {0, 1}, ``latents_values`` (737280, 6) float64, ``latents_classes`` (737280, 6) int64 and
``metadata``, over the factors (color, shape, scale, orientation, posX, posY). The HDF5 twin contains
the same arrays under the same names. A file with fewer rows is accepted when its rows form a full
sub-grid (every combination of the classes it contains), which is how small exports and test files
are laid out; sampling then draws only from the classes present.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from .factors import FACTOR_NAMES, FACTOR_SIZES, IMAGE_SIZE, NUM_IMAGES, OFFICIAL_FACTOR_SIZES, STRIDES

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("imgs", "latents_classes")
OFFICIAL_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"


class OfficialFileError(ValueError):
    """An official dSprites file that is missing, damaged or not in the documented layout."""


class OfficialDSprites:
    """Images of the official dSprites file, looked up by factor classes.

    Args:
        path: an ``.npz`` in the official layout, or an ``.h5``/``.hdf5`` with the same arrays.

    Attributes:
        available: for each of the five modelled factors, the sorted classes present in the file.

    Raises:
        OfficialFileError: naming the file and the problem for a missing or unreadable file, a
            missing key, a wrong shape or dtype, values outside {0, 1}, or rows that do not form a
            grid of factor combinations.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise OfficialFileError(f"official dSprites file {self.path} not found")
        if self.path.suffix.lower() in (".h5", ".hdf5"):
            images, classes = self._read_hdf5()
        else:
            images, classes = self._read_npz()
        self._images = images
        self._check(images, classes)

        # Map each modelled-factor combination to its row in the file.
        five = classes[:, 1:].astype(np.int64)
        self.available = tuple(np.unique(five[:, i]) for i in range(len(FACTOR_NAMES)))
        expected_rows = int(np.prod([len(a) for a in self.available]))
        keys = five @ STRIDES
        if len(np.unique(keys)) != len(keys) or expected_rows != len(keys):
            raise OfficialFileError(
                f"{self.path}: latents_classes do not form a full grid of factor combinations "
                f"({len(keys)} rows, {len(np.unique(keys))} distinct, {expected_rows} expected); "
                f"use the unmodified {OFFICIAL_NAME}"
            )
        self._row_of = np.full(NUM_IMAGES, -1, dtype=np.int64)
        self._row_of[keys] = np.arange(len(keys))
        logger.info("read %d official images from %s", len(keys), self.path)

    def __len__(self) -> int:
        return len(self._images)

    def _read_npz(self):
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                missing = [k for k in REQUIRED_KEYS if k not in archive.files]
                if missing:
                    raise OfficialFileError(
                        f"{self.path}: missing key {missing[0]!r}; an official dSprites .npz has "
                        f"imgs, latents_values, latents_classes and metadata"
                    )
                return archive["imgs"], archive["latents_classes"]
        except OfficialFileError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
            raise OfficialFileError(
                f"{self.path}: cannot read the file, it is truncated or not an .npz archive ({error}); "
                "download it again"
            ) from error

    def _read_hdf5(self):
        import h5py

        try:
            with h5py.File(self.path, "r") as handle:
                missing = [k for k in REQUIRED_KEYS if k not in handle]
                if missing:
                    raise OfficialFileError(
                        f"{self.path}: missing dataset {missing[0]!r}; the HDF5 twin of dSprites has "
                        "imgs, latents_values and latents_classes"
                    )
                return handle["imgs"][()], handle["latents_classes"][()]
        except OfficialFileError:
            raise
        except (OSError, ValueError, KeyError) as error:
            raise OfficialFileError(
                f"{self.path}: cannot read the file, it is truncated or not HDF5 ({error}); download it again"
            ) from error

    def _check(self, images: np.ndarray, classes: np.ndarray) -> None:
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise OfficialFileError(
                f"{self.path}: imgs has shape {images.shape}; expected (N, {IMAGE_SIZE}, {IMAGE_SIZE})"
            )
        if images.dtype != np.uint8:
            raise OfficialFileError(f"{self.path}: imgs has dtype {images.dtype}; expected uint8 in {{0, 1}}")
        if classes.shape != (len(images), len(OFFICIAL_FACTOR_SIZES)):
            raise OfficialFileError(
                f"{self.path}: latents_classes has shape {classes.shape}; expected ({len(images)}, 6)"
            )
        if not np.issubdtype(classes.dtype, np.integer):
            raise OfficialFileError(f"{self.path}: latents_classes has dtype {classes.dtype}; expected int64")
        if len(images) > NUM_IMAGES:
            raise OfficialFileError(f"{self.path}: {len(images)} rows; dSprites has at most {NUM_IMAGES}")
        sizes = np.array(OFFICIAL_FACTOR_SIZES)
        if (classes < 0).any() or (classes >= sizes).any():
            raise OfficialFileError(
                f"{self.path}: latents_classes out of range; expected classes below {list(OFFICIAL_FACTOR_SIZES)}"
            )
        # A sample keeps the check cheap on the full 3 GB array.
        sample = images[:: max(1, len(images) // 4096)]
        if sample.max(initial=0) > 1:
            raise OfficialFileError(f"{self.path}: imgs contains values above 1; expected binary images in {{0, 1}}")

    def images(self, classes: np.ndarray) -> np.ndarray:
        """Look up images by their five factor classes.

        Shapes:
            classes: (N, 5) -> (N, 64, 64) uint8

        Raises:
            ValueError: if a combination is not in the file.
        """
        rows = self._row_of[np.asarray(classes, dtype=np.int64) @ STRIDES]
        if (rows < 0).any():
            bad = np.asarray(classes)[rows < 0][0]
            raise ValueError(
                f"factor classes {bad.tolist()} are not in {self.path}; it contains only a sub-grid of dSprites"
            )
        return np.asarray(self._images[rows])


class RendererSource:
    """The procedural renderer behind the same interface as ``OfficialDSprites``."""

    available = tuple(np.arange(size) for size in FACTOR_SIZES)
    path = None

    def images(self, classes: np.ndarray) -> np.ndarray:
        """Draw sprites. Shapes: (N, 5) -> (N, 64, 64) uint8."""
        from .render import render

        return render(classes)


def open_source(path: str | Path | None):
    """Return the image source: the renderer when ``path`` is None, else the official file."""
    return RendererSource() if path is None else OfficialDSprites(path)
