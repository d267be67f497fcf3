import torch

from vsa_demo.vsa import ItemMemory, bind, bundle, cleanup, random_bipolar, similarity, unbind


def test_bipolar_entries():
    vectors = random_bipolar(4, 1024, torch.Generator().manual_seed(0))
    assert vectors.shape == (4, 1024)
    assert set(vectors.unique().tolist()) == {-1.0, 1.0}


def test_unbind_recovers_bound_vector_exactly():
    generator = torch.Generator().manual_seed(1)
    key = random_bipolar(1, 1024, generator)[0]
    value = torch.randn(1024, generator=generator)
    assert torch.equal(unbind(bind(value, key), key), value)


def test_placeholders_nearly_orthogonal():
    roles = random_bipolar(10, 1024, torch.Generator().manual_seed(2))
    scores = similarity(roles.unsqueeze(1), roles.unsqueeze(0))
    off_diagonal = scores[~torch.eye(10, dtype=torch.bool)]
    assert off_diagonal.abs().max() < 0.15


def test_cleanup_of_bundle_recovers_each_item():
    # K role-filler pairs bundled in 1024 dimensions; each filler is read back from a codebook of 40.
    generator = torch.Generator().manual_seed(3)
    codebook = random_bipolar(40, 1024, generator)
    for k in (2, 5, 10, 25):
        roles = random_bipolar(k, 1024, generator)
        chosen = torch.randint(0, 40, (k,), generator=generator)
        scene = bundle(bind(roles, codebook[chosen]))
        found, _ = cleanup(unbind(scene, roles), codebook)
        assert torch.equal(found, chosen), k


def test_bundle_weights_leave_items_out():
    vectors = torch.arange(12.0).view(3, 4)
    assert torch.equal(bundle(vectors, weights=torch.tensor([1.0, 0.0, 1.0])), vectors[0] + vectors[2])


def test_item_memory_reads_features_of_objects():
    memory = ItemMemory(1024, num_features=5, max_objects=5, seed=0)
    generator = torch.Generator().manual_seed(4)
    codebook = random_bipolar(32, 1024, generator)
    chosen = torch.randint(0, 32, (1, 5, 5), generator=generator)  # (B, K, F)
    slots = codebook[chosen]  # (1, 5, 5, D)
    scene = memory.scene_vector(slots)
    for obj in range(5):
        for feature in range(5):
            found, _ = cleanup(memory.read_feature(scene[0], obj, feature), codebook)
            assert found == chosen[0, obj, feature]


def test_item_memory_is_seeded_and_saved():
    first, second = ItemMemory(64, seed=7), ItemMemory(64, seed=7)
    assert torch.equal(first.feature_roles, second.feature_roles)
    assert not torch.equal(first.object_roles, ItemMemory(64, seed=8).object_roles)
    assert {"feature_roles", "object_roles"} <= set(first.state_dict())


def test_absent_objects_left_out():
    memory = ItemMemory(64, seed=0)
    slots = torch.randn(1, 3, 5, 64)
    present = torch.tensor([[True, False, True]])
    objects = memory.object_vector(slots)  # (1, 3, D)
    expected = bind(objects[:, 0], memory.object_roles[0]) + bind(objects[:, 2], memory.object_roles[2])
    assert torch.allclose(memory.scene_vector(slots, present), expected, atol=1e-5)
