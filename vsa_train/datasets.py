"""The paired, scene and paired-scene datasets: HDF5 files and torch ``Dataset`` classes.

``write_dataset`` draws N examples with ``vsa_train.sampling`` and writes them to one HDF5 file,
atomically. The ``Dataset`` classes read such a file lazily (each DataLoader worker opens its own
handle) or, without a file, draw fresh examples from the renderer on the fly. Either way
``dataset[i]`` is the same example every time and a batch is fetched in one vectorised call
through ``__getitems__``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from vsa_demo.factors import FACTOR_NAMES, FACTOR_SIZES
from vsa_demo.official import open_source

from . import sampling
from .atomic import atomic_path
from .commands import command_line

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DATASET_NAMES = ("paired", "scene", "paired-scene")
# Arrays per dataset and the dtype each is stored with.
SCHEMA = {
    "paired": {"images": np.uint8, "factors": np.int16, "changed": np.int16},
    "scene": {"scene": np.uint8, "objects": np.uint8, "factors": np.int16, "n_objects": np.int16},
    "paired-scene": {
        "scenes": np.uint8,
        "objects": np.uint8,
        "factors": np.int16,
        "n_objects": np.int16,
        "changed_object": np.int16,
        "changed_factor": np.int16,
    },
}
DEFAULT_OBJECTS = {"paired": (1, 1), "scene": (2, 5), "paired-scene": (2, 2)}


def sample(name: str, seed: int, index: np.ndarray, source, min_objects: int, max_objects: int, max_changed: int = 1) -> dict[str, np.ndarray]:
    """Draw examples ``index`` of dataset ``name`` as numpy arrays, following ``SCHEMA``.

    Pairs drawn with ``max_changed`` above 1 differ in several factors and carry a
    ``changed_mask``; files always hold single-factor pairs.
    """
    if name == "paired":
        return sampling.sample_pairs(seed, index, source, max_changed)
    if name == "scene":
        return sampling.sample_scenes(seed, index, source, min_objects, max_objects)
    if name == "paired-scene":
        return sampling.sample_paired_scenes(seed, index, source, min_objects, max_objects)
    raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")


def check_object_range(name: str, min_objects: int | None, max_objects: int | None) -> tuple[int, int]:
    """Fill in the default object counts of ``name`` and validate them.

    Raises:
        ValueError: if the counts are outside 2..5 or reversed, or given for the paired dataset.
    """
    low, high = DEFAULT_OBJECTS[name]
    if name == "paired":
        if min_objects is not None or max_objects is not None:
            raise ValueError("--min-objects and --max-objects apply to scene and paired-scene, not paired")
        return low, high
    low = low if min_objects is None else min_objects
    high = max(high, low) if max_objects is None else max_objects
    if not 2 <= low <= high <= sampling.MAX_OBJECTS:
        raise ValueError(
            f"invalid object counts {low} to {high}; expected 2 <= --min-objects <= --max-objects <= "
            f"{sampling.MAX_OBJECTS}"
        )
    return low, high


def write_dataset(
    name: str,
    n: int,
    out: str | Path,
    seed: int,
    source_path: str | Path | None = None,
    min_objects: int | None = None,
    max_objects: int | None = None,
    chunk: int = 2048,
    progress: bool = True,
) -> Path:
    """Draw ``n`` examples of dataset ``name`` and write them to the HDF5 file ``out``.

    The file is written under a temporary name in the same folder and renamed when complete, so an
    interrupted run leaves no file at ``out``. Equal arguments give identical arrays.

    Raises:
        ValueError: for an unknown dataset, ``n`` below 1, invalid object counts, or an output
            folder that is missing or not writable.
    """
    if name not in SCHEMA:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    if n < 1:
        raise ValueError(f"--n must be at least 1; got {n}")
    low, high = check_object_range(name, min_objects, max_objects)
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"output folder {folder} is not writable; choose another --out")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name such as {out / (name + '.h5')}")
    source = open_source(source_path)

    first = sample(name, seed, np.arange(1), source, low, high)
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise ValueError(f"output folder {folder} is not writable ({error.strerror}); choose another --out") from error
    with atomic_path(out) as temporary:
        with h5py.File(temporary, "w") as file:
            arrays = {}
            for key, dtype in SCHEMA[name].items():
                shape = (n,) + first[key].shape[1:]
                is_image = first[key].ndim >= 3
                arrays[key] = file.create_dataset(
                    key,
                    shape=shape,
                    dtype=dtype,
                    chunks=(1,) + shape[1:] if is_image else None,
                    compression="gzip" if is_image else None,
                    compression_opts=1 if is_image else None,
                    shuffle=False,
                )
            attrs = {
                "format_version": FORMAT_VERSION,
                "dataset": name,
                "factor_names": list(FACTOR_NAMES),
                "factor_sizes": list(FACTOR_SIZES),
                "seed": seed,
                "source": "procedural" if source_path is None else str(Path(source_path).name),
                "min_objects": low,
                "max_objects": high,
                "command": command_line(),
            }
            file.attrs.update(attrs)
            with tqdm(total=n, desc=f"make-data {name}", unit="ex", disable=not progress) as bar:
                for start in range(0, n, chunk):
                    index = np.arange(start, min(n, start + chunk))
                    batch = sample(name, seed, index, source, low, high)
                    for key, dataset in arrays.items():
                        dataset[start:start + len(index)] = batch[key].astype(SCHEMA[name][key])
                    bar.update(len(index))
    logger.info("wrote %d %s examples to %s", n, name, out)
    return out


class SpritesDataset(Dataset):
    """Examples of one dataset kind, read from an HDF5 file or drawn on the fly.

    Args:
        name: ``paired``, ``scene`` or ``paired-scene``.
        path: an HDF5 file written by ``make-data``; None draws from the renderer instead.
        length: number of examples when drawing on the fly (ignored with a file).
        seed: seed of the on-the-fly examples.
        source: an official dSprites file to draw on-the-fly images from instead of the renderer.
        min_objects, max_objects: object counts of on-the-fly scenes.
        max_changed: on-the-fly pairs differ in 1 to this many factors (paired only).

    Each item is a dict of tensors following ``SCHEMA``; a batch from ``__getitems__`` has a
    leading batch dimension. Use ``collate`` as the DataLoader's ``collate_fn``.

    Raises:
        ValueError: if the file is missing, unreadable, of another dataset kind or format version.
    """

    def __init__(
        self,
        name: str,
        path: str | Path | None = None,
        length: int = 10**9,
        seed: int = 0,
        source: str | Path | None = None,
        min_objects: int | None = None,
        max_objects: int | None = None,
        max_changed: int = 1,
    ):
        if name not in SCHEMA:
            raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
        self.name = name
        self.path = None if path is None else Path(path)
        self.seed = seed
        self.max_changed = max_changed
        self._file = None
        if max_changed != 1 and (name != "paired" or path is not None):
            raise ValueError("max_changed above 1 applies only to paired examples drawn on the fly, not to files")
        if self.path is None:
            self.min_objects, self.max_objects = check_object_range(name, min_objects, max_objects)
            self.length = int(length)
            self._source_path = source
            self._source = None
            return
        self._source_path = None
        attrs, self.length = self._inspect(self.path, name)
        self.min_objects, self.max_objects = int(attrs["min_objects"]), int(attrs["max_objects"])

    @staticmethod
    def _inspect(path: Path, name: str):
        if not path.is_file():
            raise ValueError(f"dataset file {path} not found; create it with `python -m vsa_train make-data {name}`")
        try:
            with h5py.File(path, "r") as file:
                attrs = dict(file.attrs)
                found = attrs.get("dataset")
                if found != name:
                    raise ValueError(f"{path} contains the {found!r} dataset; this stage needs {name!r}")
                if int(attrs.get("format_version", -1)) != FORMAT_VERSION:
                    raise ValueError(
                        f"{path} has format_version {attrs.get('format_version')}; expected {FORMAT_VERSION}, "
                        "so make the file again"
                    )
                missing = [key for key in SCHEMA[name] if key not in file]
                if missing:
                    raise ValueError(f"{path} is missing the array {missing[0]!r}; make the file again")
                length = len(file[next(iter(SCHEMA[name]))])
        except OSError as error:
            raise ValueError(f"cannot read dataset file {path}: {error}") from error
        return attrs, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([index])
        return {key: value[0] for key, value in batch.items()}

    def __getitems__(self, indices) -> dict[str, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        if len(index) and (index.min() < 0 or index.max() >= self.length):
            raise IndexError(f"index out of range for a dataset of {self.length} examples")
        if self.path is None:
            if self._source is None:
                self._source = open_source(self._source_path)
            arrays = sample(self.name, self.seed, index, self._source, self.min_objects, self.max_objects, self.max_changed)
        else:
            if self._file is None:  # opened lazily so that each worker process has its own handle
                self._file = h5py.File(self.path, "r")
            order = np.argsort(index)
            sorted_index = index[order]
            unique, inverse = np.unique(sorted_index, return_inverse=True)
            arrays = {}
            for key in SCHEMA[self.name]:
                rows = self._file[key][unique]  # h5py needs increasing, unique indices
                restore = np.empty_like(order)
                restore[order] = np.arange(len(order))
                arrays[key] = rows[inverse][restore]
        return {key: torch.from_numpy(np.ascontiguousarray(value).astype(_TORCH_DTYPE[key], copy=False)) for key, value in arrays.items()}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles cannot cross process boundaries
        return state


_TORCH_DTYPE = {
    "images": np.uint8,
    "scene": np.uint8,
    "scenes": np.uint8,
    "objects": np.uint8,
    "factors": np.int64,
    "changed": np.int64,
    "changed_mask": np.bool_,
    "n_objects": np.int64,
    "changed_object": np.int64,
    "changed_factor": np.int64,
}


def collate(batch):
    """Collate function for batches already stacked by ``SpritesDataset.__getitems__``."""
    return batch
