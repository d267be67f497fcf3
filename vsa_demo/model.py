"""The feature-slot VAE: an image is encoded as F feature vectors of D dimensions each.

The encoder (4 strided convolutions, 2 linear layers) gives the posterior mean and log-variance of
one D-dimensional vector per factor, in the order shape, scale, orientation, posX, posY. An
object's latent is the sum of its feature vectors, and the decoder (2 linear layers, 4 transposed
convolutions) draws 64x64 logits from any D-dimensional vector. Because the decoder only ever
receives a sum, feature vectors can be exchanged between objects before decoding.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .factors import NUM_FACTORS
from .weights import CONFIG_NAME, WEIGHTS_NAME, WeightsError, load_state_dict, resolve_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VAEConfig:
    """Settings of the feature-slot VAE, saved as ``config.json`` beside the weights.

    Attributes:
        latent_dim: D, the dimension of each feature vector.
        num_features: F, the number of feature slots (one per modelled factor).
        channels: output channels of the 4 encoder convolutions; the decoder mirrors them.
        hidden_dim: width of the hidden linear layer in the encoder and the decoder.
        image_size: side of the square input in pixels; 4 stride-2 layers need a multiple of 16.
        projection_rank: R; above 0, each slot's posterior mean is projected onto an R-dimensional
            affine subspace fitted to the class means of its own factor (see ``fit_slot_projection``).
    """

    latent_dim: int = 1024
    num_features: int = NUM_FACTORS
    channels: tuple[int, ...] = (16, 32, 64, 64)
    hidden_dim: int = 512
    image_size: int = 64
    projection_rank: int = 0

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) != 4:
            raise ValueError(f"channels must list 4 convolution widths; got {list(self.channels)}")
        if not 0 <= self.projection_rank <= self.latent_dim:
            raise ValueError(f"projection_rank must be 0 to latent_dim; got {self.projection_rank}")
        for name in ("latent_dim", "num_features", "hidden_dim", "image_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        if self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16; got {self.image_size}")

    @classmethod
    def from_json(cls, path: Path):
        """Read a config file, ignoring keys this version does not know.

        Raises:
            WeightsError: if the file is not valid JSON or contains invalid settings.
        """
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict):
                raise ValueError("the top level is not an object")
            data = data.get("config", data)
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        except (ValueError, TypeError) as error:
            raise WeightsError(f"invalid {path}: {error}; restore it from the weights release") from error


class Posterior(NamedTuple):
    """Diagonal Gaussian posterior over the feature vectors; both fields have shape (B, F, D)."""

    mean: torch.Tensor
    logvar: torch.Tensor

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one latent per image with the reparameterisation trick; returns (B, F, D)."""
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + noise * torch.exp(0.5 * self.logvar)

    def kl(self) -> torch.Tensor:
        """KL divergence to the standard normal prior, summed over all but the batch dimension; returns (B,)."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar).flatten(1).sum(dim=1)


class Encoder(nn.Module):
    """Image to posterior over F feature vectors. Shapes: (B, 1, H, W) -> Posterior of (B, F, D)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels in config.channels:
            layers += [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1), nn.ReLU()]
            in_channels = out_channels
        self.conv = nn.Sequential(*layers)
        side = config.image_size // 16
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * side * side, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, 2 * config.num_features * config.latent_dim),
        )

    def forward(self, images: torch.Tensor) -> Posterior:
        if images.dim() == 3:
            images = images.unsqueeze(1)  # (B, H, W) -> (B, 1, H, W)
        h = self.fc(self.conv(images.float()))  # (B, 2 * F * D)
        h = h.view(-1, 2, self.config.num_features, self.config.latent_dim)  # (B, 2, F, D)
        return Posterior(h[:, 0], h[:, 1].clamp(-12.0, 8.0))


class Decoder(nn.Module):
    """D-dimensional vector to image logits. Shapes: (B, D) -> (B, H, W)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        widths = list(reversed(config.channels))  # e.g. 64, 64, 32, 16
        side = config.image_size // 16
        self.fc = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, widths[0] * side * side),
            nn.ReLU(),
            nn.Unflatten(1, (widths[0], side, side)),
        )
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip(widths, widths[1:] + [1]):
            layers += [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1), nn.ReLU()]
        self.deconv = nn.Sequential(*layers[:-1])  # no activation after the last layer: logits

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(latent)).squeeze(1)  # (B, 1, H, W) -> (B, H, W)


def exchange_slots(
    latent_a: torch.Tensor, latent_b: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exchange the feature vectors selected by ``mask`` between two sets of latents.

    Args:
        latent_a, latent_b: feature vectors of two batches of objects.
        mask: True for each slot to exchange; (F,) applies the same slots to every pair.

    Shapes:
        latent_a, latent_b: (B, F, D); mask: (B, F) or (F,) bool -> two (B, F, D) tensors

    Returns:
        ``(a_with_b, b_with_a)``: A's latents with the masked slots taken from B, and the reverse.
    """
    if mask.dim() == 1:
        mask = mask.expand(latent_a.shape[0], -1)
    mask = mask.to(torch.bool).unsqueeze(-1)  # (B, F, 1)
    return torch.where(mask, latent_b, latent_a), torch.where(mask, latent_a, latent_b)


class FeatureVAE(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="dsprites-vsa",
    tags=["dsprites", "vector-symbolic-architecture", "vae"],
):
    """The stage-1 model: encoder to F feature vectors, sum, decoder.

    Example:
        >>> model = FeatureVAE(VAEConfig())
        >>> posterior = model.encode(torch.zeros(2, 64, 64))
        >>> model.decode(posterior.mean.sum(1)).shape
        torch.Size([2, 64, 64])
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config if config is not None else self.config_class()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        rank, features, dims = self.config.projection_rank, self.config.num_features, self.config.latent_dim
        if rank:
            # Orthonormal columns (zero where a factor needs fewer) and the centre of each slot's subspace.
            self.register_buffer("slot_basis", torch.zeros(features, dims, rank))
            self.register_buffer("slot_centre", torch.zeros(features, dims))

    def encode(self, images: torch.Tensor) -> Posterior:
        """Encode images in {0, 1}. Shapes: (B, H, W) -> Posterior of (B, F, D)."""
        posterior = self.encoder(images)
        if not self.config.projection_rank:
            return posterior
        return Posterior(self.project(posterior.mean), posterior.logvar)

    def project(self, slots: torch.Tensor) -> torch.Tensor:
        """Project each slot onto its factor's subspace. Shapes: (..., F, D) -> (..., F, D)."""
        offset = slots - self.slot_centre
        coordinates = torch.einsum("...fd,fdr->...fr", offset, self.slot_basis)  # (..., F, R)
        return self.slot_centre + torch.einsum("...fr,fdr->...fd", coordinates, self.slot_basis)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Decode summed latents to logits. Shapes: (B, D) -> (B, H, W)."""
        return self.decoder(latent)

    def decode_slots(self, slots: torch.Tensor) -> torch.Tensor:
        """Sum feature vectors and decode them. Shapes: (B, F, D) -> (B, H, W) logits."""
        return self.decoder(slots.sum(dim=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruct images from the posterior mean. Shapes: (B, H, W) -> (B, H, W) logits."""
        return self.decode_slots(self.encode(images).mean)

    def encode_objects(self, objects: torch.Tensor, present: torch.Tensor) -> Posterior:
        """Encode the present objects of each scene; absent ones get mean 0 and log-variance 0.

        Only present objects go through the encoder, so padding costs nothing.

        Shapes:
            objects: (B, K, H, W); present: (B, K) bool -> Posterior of (B, K, F, D)
        """
        batch, k = present.shape
        posterior = self.encode(objects[present])  # (M, F, D) for the M present objects
        shape = (batch, k, *posterior.mean.shape[1:])
        mean = posterior.mean.new_zeros(shape).index_put((present,), posterior.mean)
        logvar = posterior.logvar.new_zeros(shape).index_put((present,), posterior.logvar)
        return Posterior(mean, logvar)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, config: VAEConfig | dict | None = None, map_location: str = "cpu", **hub_kwargs):
        hub_kwargs = {k: hub_kwargs[k] for k in ("revision", "cache_dir", "force_download", "token", "local_files_only", "subfolder") if k in hub_kwargs and hub_kwargs[k] is not None}
        config_class = cls.config_class
        if isinstance(config, dict):
            config = config_class(**{k: v for k, v in config.items() if k in config_class.__dataclass_fields__})
        if config is None:
            config = config_class.from_json(resolve_file(model_id, CONFIG_NAME, **hub_kwargs))
        model = cls(config)
        path = resolve_file(model_id, WEIGHTS_NAME, **hub_kwargs)
        model.load_state_dict(load_state_dict(path, model.state_dict()))
        logger.info("loaded %s from %s", cls.__name__, path)
        return model.to(map_location).eval()


def config_dict(config) -> dict:
    """Return a dataclass config as a JSON-ready dict."""
    data = asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


@dataclass(frozen=True)
class BoundVAEConfig(VAEConfig):
    """Settings of the stage-3 model: the VAE plus its item memory.

    Attributes:
        max_objects: K, the number of object placeholders, the most objects a scene may hold.
        memory_seed: seed of the placeholder vectors.
    """

    max_objects: int = 5
    memory_seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.max_objects <= 5:
            raise ValueError(f"max_objects must be 1 to 5; got {self.max_objects}")


class BoundSceneVAE(FeatureVAE):
    """The stage-3 model: objects bundle their bound features, scenes bundle their bound objects.

    Each feature vector is bound to its feature placeholder and the results are bundled into an
    object vector. Each object vector is bound to its object placeholder and bundled into the
    scene vector, which the decoder draws. Unbinding an object and a feature from a scene vector
    reads that feature back, up to crosstalk, and cleanup against ``value_codes`` (one learned
    vector per factor value, the codebook of each feature) names its value.
    """

    config_class = BoundVAEConfig

    def __init__(self, config: BoundVAEConfig | None = None):
        super().__init__(config)
        from .factors import FACTOR_SIZES
        from .vsa import ItemMemory

        self.memory = ItemMemory(
            self.config.latent_dim, self.config.num_features, self.config.max_objects, self.config.memory_seed
        )
        # Codebooks for cleanup: value_codes[f] has one D-dimensional vector per class of factor f.
        self.value_codes = nn.ParameterList(
            [nn.Parameter(torch.randn(size, self.config.latent_dim) * 0.01) for size in FACTOR_SIZES[: self.config.num_features]]
        )

    def read_values(self, scene: torch.Tensor, obj: int, feature: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unbind object ``obj`` and feature ``feature`` and clean up against that feature's codebook.

        Shapes:
            scene: (N, D) -> classes (N,) and cosine similarities (N,)
        """
        from .vsa import cleanup

        return cleanup(self.memory.read_feature(scene, obj, feature), self.value_codes[feature])

    def scene_vector(self, slots: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Compose scene vectors. Shapes: slots (B, K, F, D), present (B, K) -> (B, D)."""
        return self.memory.scene_vector(slots, present)

    def decode_scene(self, slots: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the scene vector of objects' feature vectors. Shapes: (B, K, F, D) -> (B, H, W) logits."""
        return self.decoder(self.scene_vector(slots, present))
