"""Training objectives, one module per stage, each returning the loss and its parts.

The loss is computed inside ``forward`` so that DistributedDataParallel sees every parameter use
and averages gradients across processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsa_demo.model import FeatureVAE, exchange_slots


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood in nats, summed over pixels and averaged over images.

    Shapes:
        logits, target: (B, H, W) -> scalar
    """
    return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="sum") / logits.shape[0]


class CrosswiseSwap(nn.Module):
    """Stage 1: exchange the changed factors' feature vectors within each pair, decode crosswise.

    For a pair (A, B) that differs only in the factors of ``mask``, A's latent with those slots
    taken from B must decode to B, and B's latent with those slots taken from A must decode to A.
    The loss is that crosswise reconstruction plus ``kl_weight`` times the KL term, both per image.
    """

    def __init__(self, model: FeatureVAE, kl_weight: float):
        super().__init__()
        self.model = model
        self.kl_weight = kl_weight

    def forward(self, images: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Shapes: images (B, 2, H, W) in {0, 1}; mask (B, F) bool, the changed factors -> dict of scalars."""
        batch, _, height, width = images.shape
        posterior = self.model.encode(images.reshape(batch * 2, height, width))
        latents = posterior.sample().view(batch, 2, *posterior.mean.shape[1:])  # (B, 2, F, D)

        a_with_b, b_with_a = exchange_slots(latents[:, 0], latents[:, 1], mask)
        logits = self.model.decode_slots(torch.cat([a_with_b, b_with_a]))  # (2B, H, W)
        targets = torch.cat([images[:, 1], images[:, 0]])  # A with B's slot should draw B

        reconstruction = reconstruction_loss(logits, targets)
        kl = posterior.kl().mean()
        return {"loss": reconstruction + self.kl_weight * kl, "reconstruction": reconstruction, "kl": kl}
