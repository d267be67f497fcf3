"""Checked loading of safetensors weight files.

Weights are only ever read through safetensors, never unpickled. Every key the model expects must
be present with the right shape, no extra key may appear, and every value must be finite, so a
damaged or mismatched file fails with a message naming the file and the tensor.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class WeightsError(ValueError):
    """A weights folder, repository or file that cannot be loaded as the model expects."""


def resolve_file(model_id: str | os.PathLike, filename: str, **hub_kwargs) -> Path:
    """Return the local path of ``filename`` in a folder or a Hugging Face Hub repository.

    ``model_id`` is a local folder when one exists at that path, otherwise a Hub repo id. Hub files
    come from the local cache first; with ``HF_HUB_OFFLINE=1`` nothing is downloaded.

    Raises:
        WeightsError: if the file is missing from the folder, the cache or the repository.
    """
    folder = Path(model_id)
    if folder.is_dir():
        path = folder / filename
        if not path.is_file():
            raise WeightsError(
                f"missing {filename} in {folder}; download the weights folder again or train it with "
                "`python -m vsa_train train`"
            )
        return path
    if not REPO_ID.fullmatch(str(model_id)):
        raise WeightsError(
            f"weights folder {model_id} does not exist; pass an existing folder or a Hub repo id "
            "such as 'user/dsprites-vsa'"
        )
    try:
        return Path(hf_hub_download(repo_id=str(model_id), filename=filename, **hub_kwargs))
    except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise WeightsError(
            f"cannot get {filename} from {model_id!r}: it is neither a local folder nor a Hub repository "
            f"with that file in the cache or online ({type(error).__name__}: {error})"
        ) from error


def load_state_dict(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Read a safetensors file and check it against the tensors a model expects.

    Args:
        path: the ``.safetensors`` file.
        expected: the model's own state dict; only names and shapes are compared.

    Raises:
        WeightsError: naming the file and the key for a missing, unexpected, wrongly shaped or
            non-finite tensor, or when the file is not a readable safetensors file.
    """
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"cannot read {path}: not a valid safetensors file ({error})") from error

    missing = sorted(set(expected) - set(state))
    if missing:
        raise WeightsError(
            f"{path} is missing tensor {missing[0]!r}"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            + "; the file belongs to another stage or model version, so load it as the stage it was trained for, "
            "or retrain or download matching weights"
        )
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise WeightsError(
            f"{path} has unexpected tensor {unexpected[0]!r}; the file belongs to another stage or model version, "
            "so load it as the stage it was trained for"
        )
    for key, tensor in expected.items():
        value = state[key]
        if tuple(value.shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{path}: tensor {key!r} has shape {tuple(value.shape)}, but the model built from "
                f"config.json expects {tuple(tensor.shape)}; check that config.json matches the weights"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise WeightsError(f"{path}: tensor {key!r} contains NaN or infinite values; the file is damaged")
    return state
