"""Linear probes from feature slots to factors, and a DCI-style block disentanglement score."""

from __future__ import annotations

import numpy as np
import torch

from vsa_demo.factors import FACTOR_SIZES, NUM_FACTORS, within_one_bin


def fit_linear_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, weight_decay: float = 1e-3, iterations: int = 100) -> torch.nn.Linear:
    """Fit a multinomial logistic regression with full-batch L-BFGS.

    Features are standardised with the training statistics, which the returned layer folds in.

    Shapes:
        features: (N, D) float; labels: (N,) int in [0, classes)
    """
    mean = features.mean(0)
    std = features.std(0).clamp(min=1e-6)
    x = (features - mean) / std
    probe = torch.nn.Linear(x.shape[1], classes)
    torch.nn.init.zeros_(probe.weight)
    torch.nn.init.zeros_(probe.bias)
    optimizer = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe(x), labels) + weight_decay * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    folded = torch.nn.Linear(x.shape[1], classes)
    with torch.no_grad():
        folded.weight.copy_(probe.weight / std)
        folded.bias.copy_(probe.bias - (probe.weight * mean / std).sum(1))
    return folded


def probe_matrix(train_slots: torch.Tensor, train_factors: np.ndarray, test_slots: torch.Tensor, test_factors: np.ndarray) -> np.ndarray:
    """Accuracy of a linear probe from each slot to each factor, on held-out data.

    Orientation and the positions count as correct within one class, orientation modulo the
    shape's rotational symmetry; shape and scale must match exactly.

    Shapes:
        train_slots: (N, F, D); train_factors: (N, 5) classes; test_*: likewise with M rows
        returns (5, F): rows are factors, columns are slots
    """
    accuracy = np.zeros((NUM_FACTORS, train_slots.shape[1]))
    for factor in range(NUM_FACTORS):
        labels = torch.from_numpy(train_factors[:, factor]).long()
        for slot in range(train_slots.shape[1]):
            probe = fit_linear_probe(train_slots[:, slot].float(), labels, FACTOR_SIZES[factor])
            with torch.no_grad():
                predicted = probe(test_slots[:, slot].float()).argmax(1).numpy()
            correct = within_one_bin(factor, test_factors[:, 0], predicted, test_factors[:, factor])
            accuracy[factor, slot] = correct.mean()
    return accuracy


def chance_accuracy(factors: np.ndarray, seed: int = 0) -> np.ndarray:
    """Accuracy of uniformly random guesses per factor under the same scoring as the probes.

    Shapes:
        factors: (N, 5) classes -> (5,)
    """
    rng = np.random.default_rng(seed)
    chance = np.zeros(NUM_FACTORS)
    for factor, size in enumerate(FACTOR_SIZES):
        guesses = rng.integers(0, size, (64, len(factors)))
        chance[factor] = np.mean([within_one_bin(factor, factors[:, 0], g, factors[:, factor]).mean() for g in guesses])
    return chance


def block_disentanglement(accuracy: np.ndarray, chance: np.ndarray) -> float:
    """DCI-style disentanglement with slots as the code units.

    The importance of slot j for factor i is its probe accuracy above chance, rescaled to [0, 1].
    Each slot scores one minus the entropy (base F) of its importance over factors, and slots are
    weighted by their share of the total importance (Eastwood and Williams, 2018). A code where each
    slot predicts exactly one factor scores 1; one where every slot predicts every factor equally,
    or nothing at all, scores 0.

    Shapes:
        accuracy: (F_factors, S_slots); chance: (F_factors,)
    """
    importance = np.clip((accuracy - chance[:, None]) / (1.0 - chance[:, None]), 0.0, None).T  # (S, F)
    total = importance.sum()
    if total <= 0:
        return 0.0
    per_slot = importance.sum(1)
    probabilities = importance / np.maximum(per_slot[:, None], 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0).sum(1) / np.log(importance.shape[1])
    return float(((1.0 - entropy) * per_slot / total).sum())
