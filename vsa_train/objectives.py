"""Training objectives, one module per stage, each returning the loss and its parts.

The loss is computed inside ``forward`` so that DistributedDataParallel tracks every parameter use
and averages gradients across processes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vsa_demo.factors import FACTOR_SIZES, SHAPE_NAMES, within_one_bin
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
    The loss is that crosswise reconstruction plus ``kl_weight`` times the KL term, both per image,
    plus ``invariance_weight`` times the invariance ratio.

    The swap alone lets every slot keep information about every factor as long as the decoder
    ignores it there. The invariance ratio removes it: for each slot whose factor both images
    share, the squared distance between their posterior means, divided by twice that slot's
    variance over the batch. It is 0 when a slot depends on its own factor only, about 1 when it
    depends on the other factors as much as on its own, and unchanged by rescaling a slot.
    """

    def __init__(self, model: FeatureVAE, kl_weight: float, invariance_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.kl_weight = kl_weight
        self.invariance_weight = invariance_weight

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
        means = posterior.mean.view(batch, 2, *posterior.mean.shape[1:])  # (B, 2, F, D)
        invariance = invariance_ratio(means, ~mask)
        loss = reconstruction + self.kl_weight * kl + self.invariance_weight * invariance
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl, "invariance": invariance}


def invariance_ratio(means: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """Mean over slots and dimensions of how much a slot moves between images that share its factor.

    Each dimension is normalised by its own variance over the batch, so information about other
    factors is penalised as much in a low-variance dimension as in a high-variance one, which is
    what a linear probe on standardised features would find.

    Shapes:
        means: (B, 2, F, D) posterior means of both images of each pair; shared: (B, F) bool,
        True where both images have the same value of the slot's factor -> scalar
    """
    flat = means.flatten(0, 1)  # (2B, F, D)
    variance = flat.var(0, unbiased=False)  # (F, D)
    distance = (means[:, 0] - means[:, 1]).pow(2)  # (B, F, D)
    weights = shared.float().unsqueeze(-1)  # (B, F, 1)
    per_dimension = (distance * weights).sum(0) / weights.sum(0).clamp(min=1.0)  # (F, D)
    return (per_dimension / (2.0 * variance + 1e-6)).mean()


class SceneSum(nn.Module):
    """Stage 2: encode each object of a scene, sum all their feature vectors, decode the scene."""

    def __init__(self, model: FeatureVAE, kl_weight: float):
        super().__init__()
        self.model = model
        self.kl_weight = kl_weight

    def forward(self, objects: torch.Tensor, n_objects: torch.Tensor, scene: torch.Tensor) -> dict[str, torch.Tensor]:
        """Shapes: objects (B, K, H, W); n_objects (B,); scene (B, H, W) -> dict of scalars."""
        present = torch.arange(objects.shape[1], device=objects.device) < n_objects[:, None]  # (B, K)
        posterior = self.model.encode_objects(objects, present)
        latents = posterior.sample() * present[:, :, None, None]  # absent objects contribute nothing
        logits = self.model.decode(latents.sum(dim=(1, 2)))  # (B, K, F, D) -> (B, D) -> (B, H, W)

        reconstruction = reconstruction_loss(logits, scene)
        kl = posterior.kl().mean()
        return {"loss": reconstruction + self.kl_weight * kl, "reconstruction": reconstruction, "kl": kl}


def accepted_classes() -> torch.Tensor:
    """Build the table of classes that count as a correct readout, by factor, shape and true class.

    ``accepted[f, shape, true, c]`` is whether class ``c`` of factor ``f`` counts as correct for an
    object of that shape whose true class is ``true``.

    Shapes:
        returns (5, 3, C, C) bool, C the largest factor size; entries beyond a factor's size are False
    """
    size = max(FACTOR_SIZES)
    table = np.zeros((len(FACTOR_SIZES), len(SHAPE_NAMES), size, size), dtype=bool)
    for factor, count in enumerate(FACTOR_SIZES):
        for shape in range(len(SHAPE_NAMES)):
            true, predicted = np.meshgrid(np.arange(count), np.arange(count), indexing="ij")
            table[factor, shape, :count, :count] = within_one_bin(factor, np.full_like(true, shape), predicted, true)
    return torch.from_numpy(table)


class BoundSceneSwap(nn.Module):
    """Stage 3: exchange one feature of one object between two scene vectors, decode crosswise.

    Scene vectors bundle each object bound to its object placeholder, and objects bundle each
    feature bound to its feature placeholder. A pair of scenes differs in one factor of one
    object; exchanging that object's feature vector must turn each scene vector into the other.

    Reconstruction alone leaves neighbouring values of a feature too close together to be
    distinguished after unbinding from a crowded scene. So ``readout_weight`` adds a cleanup loss:
    every feature of every object is unbound from its scene vector and classified by cosine similarity
    (times a learned scale that starts at ``READOUT_SCALE``) against the model's value codebooks.
    The loss is the negative log of the probability given to the classes that evaluation counts as
    correct (:func:`vsa_demo.factors.within_one_bin`). A square turned a quarter turn is the same
    image, so the loss does not push the model to tell the two apart.

    ``invariance_weight`` adds the stage-1 invariance ratio for the changed object, whose slots
    other than the changed one should not move between the two scenes.
    """

    READOUT_SCALE = 10.0

    def __init__(self, model, kl_weight: float, readout_weight: float = 0.0, invariance_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.kl_weight = kl_weight
        self.readout_weight = readout_weight
        self.invariance_weight = invariance_weight
        # The cosine scale only sharpens the softmax during training; cleanup takes the argmax.
        self.log_readout_scale = nn.Parameter(torch.tensor(float(self.READOUT_SCALE)).log())
        self.register_buffer("accepted", accepted_classes(), persistent=False)

    def readout_loss(self, latents: torch.Tensor, present: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """Return the cleanup loss of every present (object, feature) read from the scene vector.

        Shapes:
            latents: (N, K, F, D); present: (N, K); factors: (N, K, F) classes -> scalar
        """
        memory = self.model.memory
        k = latents.shape[1]
        scene = memory.scene_vector(latents, present)  # (N, D)
        keys = memory.object_roles[:k, None, :] * memory.feature_roles[None, :, :]  # (K, F, D)
        reads = F.normalize(scene[:, None, None, :] * keys, dim=-1)  # (N, K, F, D)
        factors = factors[present]  # (M, F)
        losses = []
        for feature, codes in enumerate(self.model.value_codes):
            logits = self.log_readout_scale.exp() * reads[:, :, feature][present] @ F.normalize(codes, dim=-1).T  # (M, C)
            accepted = self.accepted[feature, factors[:, 0], factors[:, feature], : codes.shape[0]]  # (M, C)
            log_accepted = torch.logsumexp(logits.masked_fill(~accepted, float("-inf")), dim=-1)
            losses.append((torch.logsumexp(logits, dim=-1) - log_accepted).mean())
        return torch.stack(losses).mean()

    def forward(
        self,
        objects: torch.Tensor,
        n_objects: torch.Tensor,
        changed_object: torch.Tensor,
        changed_factor: torch.Tensor,
        scenes: torch.Tensor,
        factors: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Shapes: objects (B, 2, K, H, W); n_objects, changed_* (B,); scenes (B, 2, H, W);
        factors (B, 2, K, 5) classes, needed when ``readout_weight`` is above 0."""
        batch, _, k, height, width = objects.shape
        present = torch.arange(k, device=objects.device) < n_objects[:, None]  # (B, K)
        both = present.repeat_interleave(2, dim=0)  # (2B, K), scene order b0s0, b0s1, b1s0, ...
        posterior = self.model.encode_objects(objects.reshape(batch * 2, k, height, width), both)
        latents = (posterior.sample() * both[:, :, None, None]).view(batch, 2, k, *posterior.mean.shape[2:])

        # One-hot over (object, feature) of the changed item: (B, K, F, 1).
        features = latents.shape[3]
        item = changed_object * features + changed_factor
        mask = F.one_hot(item, k * features).view(batch, k, features, 1).bool()
        first_with_second = torch.where(mask, latents[:, 1], latents[:, 0])
        second_with_first = torch.where(mask, latents[:, 0], latents[:, 1])
        logits = self.model.decode_scene(torch.cat([first_with_second, second_with_first]), torch.cat([present, present]))
        targets = torch.cat([scenes[:, 1], scenes[:, 0]])

        reconstruction = reconstruction_loss(logits, targets)
        kl = posterior.kl().mean()
        loss = reconstruction + self.kl_weight * kl
        parts = {"reconstruction": reconstruction, "kl": kl}
        if self.readout_weight:
            readout = self.readout_loss(latents.flatten(0, 1), both, factors.flatten(0, 1).clamp(min=0))
            loss = loss + self.readout_weight * readout
            parts["readout"] = readout
        if self.invariance_weight:
            means = posterior.mean.view(batch, 2, k, features, -1)  # (B, 2, K, F, D)
            changed = means[torch.arange(batch), :, changed_object]  # (B, 2, F, D)
            shared = ~F.one_hot(changed_factor, features).bool()
            invariance = invariance_ratio(changed, shared)
            loss = loss + self.invariance_weight * invariance
            parts["invariance"] = invariance
        return {"loss": loss, **parts}
