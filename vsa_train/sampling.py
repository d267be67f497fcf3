"""Seeded, per-example sampling of pairs, scenes and paired scenes.

Every example is a pure function of ``(seed, index)``: each random draw hashes the seed, the
example index and a stream number with SplitMix64. So any example can be regenerated alone, in
any order, in any process, and a batch is drawn with a few vectorised numpy operations.
"""

from __future__ import annotations

import numpy as np

from vsa_demo.factors import FACTOR_SIZES, IMAGE_SIZE, NUM_FACTORS

MAX_OBJECTS = 5
PLACEMENT_TRIES = 50
SCENE_RESTARTS = 40
PAIR_TRIES = 50

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # SplitMix64 finaliser (Steele, Lea and Flood, 2014): a bijection on 64-bit words that mixes
    # every input bit into every output bit.
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def draw(seed: int, index: np.ndarray, stream: int, size) -> np.ndarray:
    """Draw integers in ``[0, size)`` as a function of (seed, index, stream).

    ``size`` may be an int or an array broadcast against ``index``. The modulo bias is below
    ``size / 2**64`` and so negligible.

    Shapes:
        index: (N,) -> (N,) int64
    """
    index = np.asarray(index, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed % 2**64) * np.uint64(0xD1B54A32D192ED03) + np.uint64(stream))
        words = _splitmix64(index * np.uint64(0xA24BAED4963EE407) ^ key)
    return (words % np.asarray(size, dtype=np.uint64)).astype(np.int64)


def draw_classes(seed: int, index: np.ndarray, stream: int, available) -> np.ndarray:
    """Draw factor combinations uniformly from the classes a source has.

    Args:
        available: for each factor, the array of classes to draw from.

    Shapes:
        index: (N,) -> (N, 5) int64
    """
    columns = []
    for f, classes in enumerate(available):
        columns.append(classes[draw(seed, index, stream * 16 + f, len(classes))])
    return np.stack(columns, axis=-1)


def change_one_factor(seed: int, index: np.ndarray, stream: int, classes: np.ndarray, factor: np.ndarray, available) -> np.ndarray:
    """Return ``classes`` with ``factor`` moved to a different available class, per row.

    Shapes:
        classes: (N, 5); factor: (N,) -> (N, 5) int64
    """
    changed = classes.copy()
    for f, values in enumerate(available):
        rows = np.nonzero(factor == f)[0]
        if len(rows) == 0:
            continue
        if len(values) < 2:
            raise ValueError(
                f"cannot change factor {f}: the image source has only one class of it; "
                "use a source with at least two"
            )
        position = np.searchsorted(values, classes[rows, f])
        step = 1 + draw(seed, index[rows], stream, len(values) - 1)
        changed[rows, f] = values[(position + step) % len(values)]
    return changed


def sample_pairs(seed: int, index: np.ndarray, source, max_changed: int = 1) -> dict[str, np.ndarray]:
    """Draw image pairs that differ in a few factors, by default exactly one.

    Each pair differs in 1 to ``max_changed`` factors, the count drawn uniformly. With
    ``max_changed=1`` these are the paired-dSprites pairs; larger values also give pairs that share
    only some factors, whose swaps mix slots from different contexts.

    Shapes:
        index: (N,) -> images (N, 2, 64, 64) uint8, factors (N, 2, 5) int64,
        changed (N,) int64 (the first changed factor), changed_mask (N, 5) bool
    """
    if not 1 <= max_changed <= NUM_FACTORS:
        raise ValueError(f"max_changed must be 1 to {NUM_FACTORS}; got {max_changed}")
    index = np.asarray(index, dtype=np.int64)
    first = draw_classes(seed, index, 0, source.available)
    if max_changed == 1:
        changed = draw(seed, index, 1, NUM_FACTORS)
        mask = np.eye(NUM_FACTORS, dtype=bool)[changed]
    else:
        # A random order of the factors per row (from hashed keys); the first `count` change.
        keys = np.stack([draw(seed, index, 100 + f, 2**62) for f in range(NUM_FACTORS)], axis=1)
        order = np.argsort(keys, axis=1)
        count = 1 + draw(seed, index, 1, max_changed)
        rank = np.argsort(order, axis=1)  # position of each factor in the row's order
        mask = rank < count[:, None]
        changed = order[:, 0]
    second = first.copy()
    for f in range(NUM_FACTORS):
        rows = np.nonzero(mask[:, f])[0]
        if len(rows):
            second[rows] = change_one_factor(
                seed, index[rows], 2 + 10 * f, second[rows], np.full(len(rows), f), source.available
            )
    factors = np.stack([first, second], axis=1)  # (N, 2, 5)
    images = source.images(factors.reshape(-1, NUM_FACTORS)).reshape(len(index), 2, IMAGE_SIZE, IMAGE_SIZE)
    return {"images": images, "factors": factors, "changed": changed, "changed_mask": mask}


def _place_objects(seed, index, source, n_objects, stream_base):
    """Place up to 5 objects per scene by rejection so that no two share a pixel.

    Object j of a scene is redrawn, with a fresh stream per try, until it touches none of the
    objects already placed. A scene whose object finds no room after ``PLACEMENT_TRIES`` tries is
    started again from its first object, up to ``SCENE_RESTARTS`` times. Crowded scenes therefore
    favour smaller sprites.
    """
    n = len(index)
    factors = np.full((n, MAX_OBJECTS, NUM_FACTORS), -1, dtype=np.int64)
    objects = np.zeros((n, MAX_OBJECTS, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    union = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    todo = np.arange(n)
    for restart in range(SCENE_RESTARTS):
        failed = np.zeros(n, dtype=bool)
        for j in range(MAX_OBJECTS):
            pending = todo[(n_objects[todo] > j) & ~failed[todo]]
            for attempt in range(PLACEMENT_TRIES):
                if len(pending) == 0:
                    break
                stream = stream_base + ((restart * MAX_OBJECTS + j) * PLACEMENT_TRIES + attempt)
                candidate = draw_classes(seed, index[pending], stream, source.available)
                images = source.images(candidate)
                clear = ~(images & union[pending]).reshape(len(pending), -1).any(axis=1)
                placed = pending[clear]
                factors[placed, j] = candidate[clear]
                objects[placed, j] = images[clear]
                union[placed] |= images[clear]
                pending = pending[~clear]
            failed[pending] = True
        todo = np.nonzero(failed)[0]
        if len(todo) == 0:
            return factors, objects, union
        factors[todo] = -1
        objects[todo] = 0
        union[todo] = 0
    raise RuntimeError(
        f"could not place {int(n_objects[todo[0]])} objects in scene {int(index[todo[0]])} without overlap "
        f"after {SCENE_RESTARTS} restarts of {PLACEMENT_TRIES} tries each; use fewer objects per scene"
    )


def sample_scenes(seed: int, index: np.ndarray, source, min_objects: int = 2, max_objects: int = 5) -> dict[str, np.ndarray]:
    """Draw scenes of ``min_objects`` to ``max_objects`` non-overlapping sprites.

    Shapes:
        index: (N,) -> scene (N, 64, 64), objects (N, 5, 64, 64) zero-padded,
        factors (N, 5, 5) padded with -1, n_objects (N,)
    """
    index = np.asarray(index, dtype=np.int64)
    n_objects = min_objects + draw(seed, index, 0, max_objects - min_objects + 1)
    factors, objects, scene = _place_objects(seed, index, source, n_objects, stream_base=1)
    return {"scene": scene, "objects": objects, "factors": factors, "n_objects": n_objects}


def sample_paired_scenes(seed: int, index: np.ndarray, source, min_objects: int = 2, max_objects: int = 2) -> dict[str, np.ndarray]:
    """Draw pairs of scenes where one factor of one object differs.

    Both scenes stay free of overlap: the new value is redrawn, and failing that the whole first
    scene, until the changed object touches no other object.

    Shapes:
        index: (N,) -> scenes (N, 2, 64, 64), objects (N, 2, K, 64, 64), factors (N, 2, K, 5)
        padded with -1, n_objects (N,), changed_object (N,), changed_factor (N,), with K = max_objects
    """
    index = np.asarray(index, dtype=np.int64)
    n = len(index)
    k = max_objects
    out = {
        "scenes": np.zeros((n, 2, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
        "objects": np.zeros((n, 2, k, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
        "factors": np.full((n, 2, k, NUM_FACTORS), -1, dtype=np.int64),
        "n_objects": np.zeros(n, dtype=np.int64),
        "changed_object": np.zeros(n, dtype=np.int64),
        "changed_factor": np.zeros(n, dtype=np.int64),
    }
    pending = np.arange(n)
    for attempt in range(PAIR_TRIES):
        if len(pending) == 0:
            break
        base = 1_000_000 * (attempt + 1)
        idx = index[pending]
        n_objects = min_objects + draw(seed, idx, base, max_objects - min_objects + 1)
        factors, objects, scene = _place_objects(seed, idx, source, n_objects, stream_base=base + 1)
        target = draw(seed, idx, base + 2, n_objects)
        factor = draw(seed, idx, base + 3, NUM_FACTORS)
        rows = np.arange(len(idx))
        new_classes = change_one_factor(seed, idx, base + 4, factors[rows, target], factor, source.available)
        new_image = source.images(new_classes)
        others = scene & ~objects[rows, target].astype(bool)  # the scene without the changed object
        clear = ~(new_image & others).reshape(len(idx), -1).any(axis=1)

        done = pending[clear]
        ok = np.nonzero(clear)[0]
        second_factors = factors[ok].copy()
        second_factors[np.arange(len(ok)), target[ok]] = new_classes[ok]
        second_objects = objects[ok].copy()
        second_objects[np.arange(len(ok)), target[ok]] = new_image[ok]
        out["factors"][done, 0] = factors[ok, :k]
        out["factors"][done, 1] = second_factors[:, :k]
        out["objects"][done, 0] = objects[ok, :k]
        out["objects"][done, 1] = second_objects[:, :k]
        out["scenes"][done, 0] = scene[ok]
        out["scenes"][done, 1] = second_objects.max(axis=1)
        out["n_objects"][done] = n_objects[ok]
        out["changed_object"][done] = target[ok]
        out["changed_factor"][done] = factor[ok]
        pending = pending[~clear]
    if len(pending):
        raise RuntimeError(
            f"could not draw paired scene {int(index[pending[0]])} without overlap after "
            f"{PAIR_TRIES} tries; use fewer objects per scene"
        )
    return out
