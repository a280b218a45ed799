"""Segmentation scenes: reproducible from a seed, masks derived from each item's own ink."""

from __future__ import annotations

import numpy as np
import pytest

from convlens import scenes


def test_masks_follow_the_ink():
    ink = np.zeros((2, 4, 4), np.uint8)
    ink[0, :2, :2] = 200  # item of class 3: top-left square
    ink[0, 3, 3] = scenes.INK - 1  # faint: below the threshold, so background
    ink[1, 1:3, 1:3] = 100  # item of class 7: the centre
    images, masks = scenes.make_scenes(ink, np.array([3, 7]), count=1, seed=0, size=4, per_scene=(1, 1))
    pick = 0 if images[0, 0, 0] else 1
    assert masks[0].max() == 1 + [3, 7][pick]
    assert set(np.unique(masks[0][images[0] < scenes.INK])) == {0}
    assert (masks[0] > 0).sum() == 4  # the faint pixel is background


def test_the_item_pasted_last_lies_on_top():
    items = np.full((2, 4, 4), 255, np.uint8)  # two full squares: the second covers the first
    for seed in range(5):
        _, masks = scenes.make_scenes(items, np.array([1, 2]), count=1, seed=seed, size=4, per_scene=(2, 2))
        rng = np.random.default_rng(seed)  # replay the draws: count, then (item, top, left) per item
        rng.integers(2, 3)
        picks = [(rng.integers(2), rng.integers(0, 1), rng.integers(0, 1))[0] for _ in range(2)]
        assert (masks[0] == 1 + [1, 2][picks[-1]]).all()


def test_scenes_are_reproducible_and_splits_differ():
    a = scenes.digit_scenes("train", count=20, seed=3)
    b = scenes.digit_scenes("train", count=20, seed=3)
    c = scenes.digit_scenes("test", count=20, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (20, 64, 64) and a.masks.max() <= 10
    assert a.classes == ("background", *(str(d) for d in range(10)))
    # every labelled pixel has ink, and every bright pixel is labelled
    assert (a.images[a.masks > 0] >= scenes.INK).all()
    assert (a.masks[a.images >= scenes.INK] > 0).all()


def test_scene_loader_flattens_the_masks():
    s = scenes.digit_scenes("train", count=10, seed=0)
    images, masks = next(iter(scenes.SceneLoader(s, batch_size=4)))
    assert images.shape == (4, 1, 64, 64) and images.dtype == np.float32 and images.max() <= 1
    np.testing.assert_array_equal(masks, s.masks[:4].reshape(-1))


def test_intersection_over_union_by_hand():
    confusion = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    iou = scenes.intersection_over_union(confusion)
    np.testing.assert_allclose(iou[:2], [5 / 8, 3 / 6])
    assert np.isnan(iou[2])


def test_errors():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        scenes.digit_scenes("val")
    with pytest.raises(ValueError, match="size must be at least the item size"):
        scenes.make_scenes(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64), 1, 0, size=20)
