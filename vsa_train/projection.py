"""Fitting the slot projection: each slot is kept only along the class means of its own factor.

Crosswise swaps and the invariance term leave small traces of other factors in every slot, and a
linear probe on standardised features finds even tiny ones in directions where the slot's own
factor does not vary. Projecting slot j onto the affine span of its per-class means (at most
``size_j - 1`` dimensions) removes every direction in which factor j does not vary.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from vsa_demo.factors import FACTOR_SIZES, sample_classes
from vsa_demo.model import FeatureVAE
from vsa_demo.render import render

logger = logging.getLogger(__name__)


@torch.no_grad()
def fit_slot_projection(model: FeatureVAE, samples: int = 20_000, seed: int = 0) -> FeatureVAE:
    """Return a copy of ``model`` whose slots are projected onto their factors' class-mean spans.

    The rank is the largest factor's number of classes minus one (39, or D if smaller); smaller factors leave the
    remaining basis columns at zero.
    """
    rank = min(max(FACTOR_SIZES) - 1, model.config.latent_dim)
    classes = sample_classes(np.random.default_rng(seed), samples)
    means = torch.cat([model.encoder(torch.from_numpy(render(classes[i:i + 1000]))).mean for i in range(0, samples, 1000)])
    fields = {k: getattr(model.config, k) for k in model.config.__dataclass_fields__}
    fields["projection_rank"] = rank
    projected = type(model)(type(model.config)(**fields))
    state = {k: v for k, v in model.state_dict().items() if k not in ("slot_basis", "slot_centre")}
    projected.load_state_dict(state, strict=False)
    for factor, size in enumerate(FACTOR_SIZES):
        labels = torch.from_numpy(classes[:, factor])
        class_means = torch.stack([means[labels == c, factor].mean(0) for c in range(size)])  # (size, D)
        centre = class_means.mean(0)
        _, singular, right = torch.linalg.svd(class_means - centre, full_matrices=False)
        keep = min(size - 1, rank)
        projected.slot_basis[factor, :, :keep] = right[:keep].T  # (D, keep)
        projected.slot_centre[factor] = centre
        logger.info("slot %d: kept %d directions, singular values %s", factor, keep, singular[:keep].round(decimals=2).tolist())
    return projected.eval()


