import numpy as np
import pytest
import torch

from vsa_demo.factors import FACTOR_SIZES, sample_classes
from vsa_train.probes import block_disentanglement, chance_accuracy, probe_matrix


def one_hot_code(factors, slots_for_factor):
    # Slot j contains a one-hot code of the factor slots_for_factor[j] (or zeros for None).
    n = len(factors)
    slots = torch.zeros(n, 5, 40)
    for slot, factor in enumerate(slots_for_factor):
        if factor is not None:
            slots[torch.arange(n), slot, torch.from_numpy(factors[:, factor])] = 1.0
    return slots


def test_perfect_code_scores_one():
    chance = np.array([1 / 3, 1 / 6, 0.1, 3 / 32, 3 / 32])
    assert block_disentanglement(np.diag(np.ones(5)) * (1 - chance) + chance[:, None], chance) == pytest.approx(1.0)


def test_constant_code_scores_zero():
    chance = np.array([1 / 3, 1 / 6, 0.1, 3 / 32, 3 / 32])
    assert block_disentanglement(np.tile(chance[:, None], (1, 5)), chance) == 0.0


def test_entangled_code_scores_zero():
    chance = np.full(5, 0.2)
    assert block_disentanglement(np.full((5, 5), 0.9), chance) == pytest.approx(0.0, abs=1e-9)


def test_probes_find_the_slot_of_each_factor():
    rng = np.random.default_rng(0)
    train, test = sample_classes(rng, 3000), sample_classes(rng, 500)
    order = [2, 0, 4, 1, 3]  # slot j codes factor order[j]
    accuracy = probe_matrix(one_hot_code(train, order), train, one_hot_code(test, order), test)
    chance = chance_accuracy(test)
    for slot, factor in enumerate(order):
        assert accuracy[factor, slot] > 0.95
        others = np.delete(accuracy[factor], slot)
        assert (others < chance[factor] + 0.1).all(), (factor, accuracy[factor])
    assert accuracy.shape == (5, 5)
    assert block_disentanglement(accuracy, chance) > 0.9


def test_chance_counts_neighbouring_bins():
    factors = sample_classes(np.random.default_rng(1), 4000)
    chance = chance_accuracy(factors)
    assert chance[0] == pytest.approx(1 / 3, abs=0.02)
    assert chance[1] == pytest.approx(1 / 6, abs=0.02)
    assert chance[3] == pytest.approx(3 / 32, abs=0.02)
    assert FACTOR_SIZES[2] == 40
    assert 0.05 < chance[2] < 0.3
