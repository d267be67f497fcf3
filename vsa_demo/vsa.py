"""Vector-symbolic operations in the MAP family (multiply, add, permute) on bipolar placeholders.

Binding is elementwise multiplication, bundling is addition, and similarity is the cosine. Random
bipolar placeholder (role) vectors are their own inverse under binding, so unbinding is binding
again. In high dimensions distinct placeholders are nearly orthogonal, so the items of a bundle
can be read back by unbinding followed by cleanup against a codebook.

Example:
    >>> generator = torch.Generator().manual_seed(0)
    >>> roles = random_bipolar(3, 1024, generator)
    >>> fillers = random_bipolar(3, 1024, generator)
    >>> scene = bundle(bind(roles, fillers))        # (1024,)
    >>> cleanup(unbind(scene, roles[1]), fillers)[0]
    tensor(1)
"""

from __future__ import annotations

import torch
from torch import nn


def random_bipolar(count: int, dimensions: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``count`` random vectors with entries -1 or +1.

    Shapes:
        returns (count, dimensions) float32
    """
    return torch.randint(0, 2, (count, dimensions), generator=generator).float() * 2.0 - 1.0


def bind(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bind by elementwise multiplication. Shapes: broadcastable (..., D) -> (..., D)."""
    return a * b


def unbind(bound: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Unbind a bipolar ``key``: for entries of +-1, multiplying again is the exact inverse.

    Shapes:
        bound, key: broadcastable (..., D) -> (..., D)
    """
    return bound * key


def bundle(vectors: torch.Tensor, dim: int = -2, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Bundle vectors by (optionally weighted) addition along ``dim``.

    Args:
        weights: broadcastable to ``vectors`` without its last dimension, e.g. a 0/1 mask that
            leaves padding out of the bundle.

    Shapes:
        vectors: (..., N, D) with dim=-2 -> (..., D)
    """
    if weights is not None:
        vectors = vectors * weights.unsqueeze(-1)
    return vectors.sum(dim=dim)


def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity along the last dimension. Shapes: (..., D) x (..., D) -> (...)."""
    return nn.functional.cosine_similarity(a, b, dim=-1)


def cleanup(query: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Find the codebook entry most similar to each query.

    Shapes:
        query: (..., D); codebook: (C, D) -> indices (...,) and similarities (...,)
    """
    scores = similarity(query.unsqueeze(-2), codebook)  # (..., C)
    best = scores.max(dim=-1)
    return best.indices, best.values


class ItemMemory(nn.Module):
    """Fixed, seeded bipolar placeholders: one per feature role and one per object slot.

    The placeholders are registered buffers, so they are saved with the model weights and a loaded
    model always uses the same ones.

    Args:
        dimensions: D.
        num_features: F feature roles.
        max_objects: K object roles.
        seed: seed of the placeholders.

    Shapes:
        feature_roles: (F, D); object_roles: (K, D)
    """

    def __init__(self, dimensions: int, num_features: int = 5, max_objects: int = 5, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("feature_roles", random_bipolar(num_features, dimensions, generator))
        self.register_buffer("object_roles", random_bipolar(max_objects, dimensions, generator))

    def object_vector(self, slots: torch.Tensor) -> torch.Tensor:
        """Bundle each feature vector bound to its feature role. Shapes: (..., F, D) -> (..., D)."""
        return bundle(bind(slots, self.feature_roles))

    def scene_vector(self, slots: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Bundle each object's vector bound to its object role; absent objects are left out.

        Shapes:
            slots: (B, K, F, D); present: (B, K) bool or None -> (B, D)
        """
        k = slots.shape[-3]
        objects = self.object_vector(slots)  # (B, K, D)
        bound = bind(objects, self.object_roles[:k])
        return bundle(bound, weights=None if present is None else present.to(bound.dtype))

    def read_feature(self, scene: torch.Tensor, obj: int | torch.Tensor, feature: int | torch.Tensor) -> torch.Tensor:
        """Unbind object ``obj`` and then feature ``feature`` from scene vectors.

        The result is the feature vector plus crosstalk from every other bound item.

        Shapes:
            scene: (..., D) -> (..., D)
        """
        return unbind(unbind(scene, self.object_roles[obj]), self.feature_roles[feature])
