"""Image metrics shared by training and evaluation."""

from __future__ import annotations

import torch


def iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of decoded pixels (probability above 0.5) and true pixels.

    Two empty images count as a perfect match.

    Shapes:
        logits, target: (B, H, W) -> (B,)
    """
    predicted = logits > 0
    truth = target.bool()
    intersection = (predicted & truth).flatten(1).sum(1).float()
    union = (predicted | truth).flatten(1).sum(1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))
