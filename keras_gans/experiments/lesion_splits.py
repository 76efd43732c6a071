"""The lesion harness's splits: a balanced held-out test set, a stratified validation split, and
the GAN training pool, with no lesion and no duplicate picture on two sides.

ISIC holds several photos of one lesion and pixel-identical copies under other ids;
:func:`leakage_groups` ties them together and :func:`split_indices` moves whole groups.
:func:`export_training_pool` writes everything outside the test set for GAN training, so a GAN
cannot leak test images into the ``real+synthetic`` arm.
"""

import hashlib
import logging
import os

import numpy as np

from data_loaders.images import save_image, to_uint8
from keras_gans import reports

log = logging.getLogger(__name__)

TEST_PER_CLASS = 500
VAL_FRACTION = 0.2
SPLIT_SEED = 42


def leakage_groups(images_u8, lesion_ids=None):
    """A group id per image: images sharing a lesion id or identical pixels share a group.

    Splits move whole groups, so no lesion and no duplicate picture sits on both sides.
    """
    n = len(images_u8)
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = {}
    for i in range(n):
        keys = [("pixels", hashlib.sha1(np.ascontiguousarray(images_u8[i]).tobytes()).digest())]
        if lesion_ids is not None and lesion_ids[i]:
            keys.append(("lesion", lesion_ids[i]))
        for key in keys:
            if key in first:
                parent[find(i)] = find(first[key])
            else:
                first[key] = i
    return np.array([find(i) for i in range(n)])


def _take_groups(candidates, groups, n, rng):
    """Indices of whole groups from ``candidates``, in random group order, up to ``n`` images."""
    members = {}
    for i in candidates:
        members.setdefault(groups[i], []).append(i)
    keys = list(members)
    taken = []
    for k in rng.permutation(len(keys)):
        group = members[keys[k]]
        if len(taken) + len(group) <= n:
            taken += group
        if len(taken) == n:
            break
    return np.array(sorted(taken), dtype=np.int64)


def split_indices(
    labels,
    groups=None,
    test_per_class=TEST_PER_CLASS,
    val_fraction=VAL_FRACTION,
    split_seed=SPLIT_SEED,
    seed=0,
):
    """``{"train", "val", "test"}`` index arrays: a balanced test set, then a stratified val split.

    The test set depends only on ``split_seed`` (the same for every seed and arm); it takes
    ``test_per_class`` images of each class, capped with a warning at half of the rarest class.
    ``val_fraction`` of each class's remainder goes to validation, drawn with ``seed``. Groups
    (:func:`leakage_groups`) never straddle two splits.
    """
    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    classes = np.unique(labels)
    owner = {}  # a group belongs to the class of its first image
    for i in range(len(labels)):
        owner.setdefault(groups[i], labels[i])
    by_class = {c: [i for i in range(len(labels)) if owner[groups[i]] == c] for c in classes}
    cap = min(len(v) for v in by_class.values()) // 2
    n_test = min(test_per_class, cap)
    if n_test < test_per_class:
        log.warning(
            "test set capped at %d per class (asked for %d): the rarest class has %d images and "
            "at least half of each class stays for training",
            n_test,
            test_per_class,
            2 * cap,
        )
    test_rng, val_rng = np.random.default_rng(split_seed), np.random.default_rng([split_seed, seed])
    test, val = [], []
    for c in classes:
        chosen = _take_groups(by_class[c], groups, n_test, test_rng)
        test.append(chosen)
        rest = sorted(set(by_class[c]) - set(chosen.tolist()))
        val.append(_take_groups(rest, groups, int(round(val_fraction * len(rest))), val_rng))
    test, val = np.concatenate(test), np.concatenate(val)
    train = np.setdiff1d(np.arange(len(labels)), np.concatenate([test, val]))
    return {"train": train, "val": np.sort(val), "test": np.sort(test)}


def export_training_pool(data, output, test_per_class=TEST_PER_CLASS, split_seed=SPLIT_SEED):
    """Write every image outside the test set to ``output/<class>/<id>.png`` for GAN training.

    A GAN trained on test images would leak them into the ``real+synthetic`` arm; train it on this
    folder instead (same ``--img-size``, ``--test-per-class`` and ``--split-seed`` as the
    evaluation). The test ids go to ``output/test_ids.txt``. Returns ``{class: images written}``.
    """
    images = to_uint8(data.images, (0.0, 1.0))
    labels = np.asarray(data.labels)
    groups = leakage_groups(images, data.lesion_ids)
    split = split_indices(labels, groups, test_per_class, 0.0, split_seed)
    for i in split["train"]:
        name = os.path.basename(str(data.ids[i]))
        save_image(images[i], os.path.join(output, data.class_names[labels[i]], f"{name}.png"))
    test_ids = "\n".join(str(data.ids[i]) for i in split["test"]) + "\n"
    reports.write_text(os.path.join(output, "test_ids.txt"), test_ids)
    return {c: int(np.sum(labels[split["train"]] == i)) for i, c in enumerate(data.class_names)}
