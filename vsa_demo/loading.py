"""Loading the stage models from a weights folder or a Hugging Face Hub repository.

A weights location contains one sub-folder per stage (``stage1``, ``stage2``, ``stage3``), each with
``model.safetensors``, ``config.json`` and a model card. A local location may also be a single
stage folder. A Hub repository is laid out like the local ``weights/`` folder. Its files come from
the local Hub cache first, and with ``HF_HUB_OFFLINE=1`` nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from .model import BoundSceneVAE, FeatureVAE
from .weights import CONFIG_NAME, REPO_ID, WeightsError

STAGE_CLASSES = {"stage1": FeatureVAE, "stage2": FeatureVAE, "stage3": BoundSceneVAE}
HOW_TO_GET_WEIGHTS = (
    "clone the repository with its weights/ folder, pass a Hub repo id, "
    "or train them with `python -m vsa_train train STAGE --out weights/STAGE`"
)


def resolve_weights(weights: str | os.PathLike, stages=tuple(STAGE_CLASSES), **hub_kwargs) -> Path:
    """Return a local folder for ``weights``: the folder itself, or the cached Hub snapshot.

    Raises:
        WeightsError: if ``weights`` is neither an existing folder nor a Hub repository that can be
            read from the cache or the Hub.
    """
    folder = Path(weights)
    if folder.is_dir():
        return folder
    if not REPO_ID.fullmatch(str(weights)):
        raise WeightsError(f"weights folder {weights} does not exist; {HOW_TO_GET_WEIGHTS}")
    try:
        patterns = [f"{stage}/*" for stage in stages] + [CONFIG_NAME, "model.safetensors"]
        return Path(snapshot_download(repo_id=str(weights), allow_patterns=patterns, **hub_kwargs))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as error:
        raise WeightsError(
            f"cannot get weights from Hub repository {weights!r} ({type(error).__name__}); "
            f"check the repo id and the network, or {HOW_TO_GET_WEIGHTS}"
        ) from error


def stage_folder(stage: str, root: Path) -> Path:
    """Return ``root/stage`` when it exists, else ``root`` (a single stage folder)."""
    return root / stage if (root / stage).is_dir() else root


def load_stage_model(stage: str, weights: str | os.PathLike, **hub_kwargs):
    """Load the model of ``stage`` from a weights folder, a stage folder or a Hub repo id.

    Raises:
        ValueError: for an unknown stage.
        WeightsError: naming the folder or file when the weights are missing or damaged.
    """
    if stage not in STAGE_CLASSES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGE_CLASSES)}")
    folder = stage_folder(stage, resolve_weights(weights, (stage,), **hub_kwargs))
    if not (folder / CONFIG_NAME).is_file():
        raise WeightsError(f"missing {CONFIG_NAME} for {stage} in {folder}; {HOW_TO_GET_WEIGHTS}")
    return STAGE_CLASSES[stage].from_pretrained(folder)
