"""FaceSet: selection, identity-disjoint splits, summaries, and the two deterministic torch loaders."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hfr_tutorial.config import get_preset
from hfr_tutorial.data import FaceSet, synthetic_faceset
from hfr_tutorial.data.faceset import augment_image

SMALL = get_preset("fast").replace(data__n_train_ids=10, data__n_dev_ids=2, data__n_eval_ids=4,
                                   data__images_per_modality=3, data__image_size=32)


@pytest.fixture(scope="module")
def fs():
    return synthetic_faceset(SMALL, seed=0, progress=False)


def test_select_keeps_order_and_accepts_lists(fs):
    nir = fs.select(modality="nir")
    assert set(nir.modalities) == {"nir"} and len(nir) == 16 * 3
    idx = np.flatnonzero(fs.modalities == "nir")
    assert np.array_equal(nir.images, fs.images[idx])
    both = fs.select(split=["dev", "eval"], modality=("vis", "thermal"))
    assert set(both.splits) == {"dev", "eval"} and set(both.modalities) == {"vis", "thermal"}
    assert len(both) == 6 * 2 * 3
    with pytest.raises(ValueError, match="Unknown split"):
        fs.select(split="test")
    with pytest.raises(ValueError, match="Unknown modality"):
        fs.select(modality="rgb")


def test_subset_by_mask_and_indices(fs):
    mask = fs.identities == 3
    a = fs.subset(mask)
    b = fs.subset(np.flatnonzero(mask))
    assert np.array_equal(a.images, b.images) and len(a) == 9
    assert np.array_equal(a.landmarks, fs.landmarks[mask])
    assert a.identity_name(3) == fs.identity_name(3)
    with pytest.raises(ValueError, match="mask"):
        fs.subset(np.ones(3, bool))


def test_class_index_is_contiguous_over_sorted_identities(fs):
    ev = fs.select(split="eval")
    y = ev.class_index(ev.identities)
    assert y.min() == 0 and y.max() == ev.num_classes - 1
    assert np.array_equal(ev.classes[y], ev.identities)
    with pytest.raises(ValueError, match="not in FaceSet"):
        ev.class_index([0])  # a train identity


def test_with_splits_is_identity_disjoint_and_seeded(fs):
    a = fs.with_splits((0.5, 0.25, 0.25), seed=1)
    for s1, s2 in (("train", "dev"), ("train", "eval"), ("dev", "eval")):
        assert not set(a.identities[a.splits == s1]) & set(a.identities[a.splits == s2])
    assert len(np.unique(a.identities[a.splits == "train"])) == 8
    assert np.array_equal(a.splits, fs.with_splits((0.5, 0.25, 0.25), seed=1).splits)
    assert not np.array_equal(a.splits, fs.with_splits((0.5, 0.25, 0.25), seed=2).splits)
    c = fs.with_splits({"train": 10, "dev": 3, "eval": 3}, seed=0)
    assert len(np.unique(c.identities[c.splits == "dev"])) == 3
    with pytest.raises(ValueError, match="sum"):
        fs.with_splits((10, 2, 2))
    with pytest.raises(ValueError, match="sum to 1"):
        fs.with_splits((0.5, 0.2, 0.2))


def test_constructor_refuses_bad_tables():
    img = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="one entry per image"):
        FaceSet(img, [0, 1, 2], ["vis"] * 4)
    with pytest.raises(ValueError, match="unknown modalities"):
        FaceSet(img, [0, 0, 1, 1], ["vis", "rgb", "vis", "nir"])
    with pytest.raises(ValueError, match="identity-disjoint"):
        FaceSet(img, [0, 0, 1, 1], ["vis"] * 4, splits=["train", "eval", "eval", "eval"])
    with pytest.raises(ValueError, match="uint8"):
        FaceSet(img.astype(np.float32), [0, 0, 1, 1], ["vis"] * 4)


def test_gallery_probe_protocol(fs):
    ev = fs.select(split="eval")
    gal, probes = ev.gallery_probe("thermal")
    assert len(gal) == 4 and set(ev.modalities[gal]) == {"vis"}
    assert len(np.unique(ev.identities[gal])) == 4
    assert len(probes) == 4 * 3 and set(ev.modalities[probes]) == {"thermal"}
    gal_v, probes_v = ev.gallery_probe("vis")
    assert len(probes_v) == 4 * 2 and not set(gal_v) & set(probes_v)


def test_loader_batches_are_deterministic_and_leave_global_rng_alone(fs):
    tr = fs.select(split="train")
    state = torch.get_rng_state()
    first = [(x.clone(), y.clone()) for x, y in tr.loader(16, augment=True, seed=3, epoch=1)]
    assert torch.equal(state, torch.get_rng_state())
    again = list(tr.loader(16, augment=True, seed=3, epoch=1))
    x, y = first[0]
    assert x.dtype == torch.float32 and x.shape == (16, 3, 32, 32) and y.dtype == torch.int64
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    other_epoch = next(iter(tr.loader(16, augment=True, seed=3, epoch=2)))
    assert not torch.equal(other_epoch[1], y)
    labels = torch.cat([b[1] for b in first])
    assert sorted(labels.tolist()) == sorted(tr.class_index(tr.identities).tolist())
    plain = next(iter(tr.loader(8, shuffle=False)))
    assert torch.allclose(plain[0][0], torch.from_numpy(tr.images[0]).permute(2, 0, 1).float() / 255)
    n = sum(len(b[1]) for b in tr.loader(16, drop_last=True))
    assert n == (len(tr) // 16) * 16


def test_colour_jitter_only_on_vis(fs):
    rng = np.random.default_rng(0)
    nir = fs.select(modality="nir").images[0]
    out = augment_image(nir, rng, colour=False)
    assert out.dtype == np.float32 and np.allclose(out[..., 0], out[..., 2])
    tr = fs.select(split="train", modality="thermal")
    for x, _ in tr.loader(8, augment=True):
        assert torch.allclose(x[:, 0], x[:, 1]) and torch.allclose(x[:, 1], x[:, 2])
    vis = fs.select(modality="vis").images[0]
    outs = [augment_image(vis, np.random.default_rng(i), colour=True) for i in range(4)]
    assert np.std([o.mean() for o in outs]) > 0.005


def test_pair_loader_pairs_same_identity_unique_per_batch(fs):
    tr = fs.select(split="train")
    batches = list(tr.pair_loader(4, seed=0, epoch=0, pairs_per_identity=3))
    total = 0
    counts: dict[int, int] = {}
    for b in batches:
        assert b["vis"].shape == b["other"].shape and b["vis"].shape[1:] == (3, 32, 32)
        ids = b["identity"].tolist()
        assert len(set(ids)) == len(ids)  # in-batch negatives are true negatives
        assert torch.equal(b["label"], torch.from_numpy(tr.class_index(b["identity"].numpy())))
        assert set(b["modality"]) <= {"nir", "thermal"}
        assert torch.allclose(b["other"][:, 0], b["other"][:, 2])  # NIR/thermal are grey
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        total += len(ids)
    assert total == 10 * 3 and set(counts.values()) == {3}
    # the pairs really share the identity: check against the pair indices
    pairs = tr.pair_indices(seed=0, epoch=0, pairs_per_identity=3)
    assert (tr.identities[pairs[:, 0]] == tr.identities[pairs[:, 1]]).all()
    assert (tr.modalities[pairs[:, 1]] == "vis").all()
    again = list(tr.pair_loader(4, seed=0, epoch=0, pairs_per_identity=3))
    assert all(torch.equal(a["other"], b["other"]) and torch.equal(a["vis"], b["vis"]) for a, b in zip(batches, again))
    nxt = list(tr.pair_loader(4, seed=0, epoch=1, pairs_per_identity=3))
    assert not all(torch.equal(a["identity"], b["identity"]) for a, b in zip(batches, nxt))
    only_nir = next(iter(tr.pair_loader(4, modalities=("nir",))))
    assert set(only_nir["modality"]) == {"nir"}


def test_loader_errors(fs):
    with pytest.raises(ValueError, match="batch_size"):
        fs.loader(0)
    with pytest.raises(ValueError, match="empty"):
        fs.subset(np.zeros(len(fs), bool)).loader(4)
    with pytest.raises(ValueError, match="nothing to pair"):
        fs.select(modality="vis").pair_loader(4)


def test_augment_batch_geometry_matches_plain_numpy(fs):
    """Draws that ask for no crop give the image itself, or its mirror; a crop is that square resized."""

    from hfr_tutorial.data.faceset import AUGMENT_DRAWS, augment_batch

    img = fs.select(modality="nir").images[:1]
    keep = np.full((1, AUGMENT_DRAWS), 0.5, np.float32)
    keep[0, 1] = 1.0  # crop side = 100 %: no crop
    mirror = keep.copy()
    mirror[0, 0] = 0.0  # flip
    expected = img.astype(np.float32) / 255
    as_is = augment_batch(img, keep, [False])[0].permute(1, 2, 0).numpy()
    flipped = augment_batch(img, mirror, [False])[0].permute(1, 2, 0).numpy()
    assert np.allclose(as_is, expected, atol=1e-5)
    assert np.allclose(flipped, expected[:, :, ::-1], atol=1e-5)
    half = np.zeros((1, AUGMENT_DRAWS), np.float32)  # smallest crop (88 %), top-left corner, no flip
    half[0, 0] = 0.9
    cropped = augment_batch(img, half, [False])[0].permute(1, 2, 0).numpy()
    side = int(round(img.shape[1] * 0.88))
    reference = torch.nn.functional.interpolate(torch.from_numpy(expected[:, :side, :side]).permute(0, 3, 1, 2),
                                                size=img.shape[1:3], mode="bilinear", align_corners=False)
    reference = reference[0].permute(1, 2, 0).numpy()
    # inside the crop the two agree; on its last row and column grid_sample reads the image's next
    # pixel where a cropped array can only repeat its edge
    assert np.allclose(cropped[:-1, :-1], reference[:-1, :-1], atol=1e-5)


def test_loaders_give_the_same_batches_with_worker_processes(fs):
    """Augmentation draws depend on (seed, epoch, index) only, so worker processes change nothing."""
    tr = fs.select(split="train")
    main = list(tr.loader(8, augment=True, seed=1, epoch=2))
    workers = list(tr.loader(8, augment=True, seed=1, epoch=2, num_workers=2))
    assert len(main) == len(workers)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(main, workers))
    pairs = list(tr.pair_loader(4, seed=1, augment_vis=True, num_workers=2))
    assert all(torch.equal(a["vis"], b["vis"]) and torch.equal(a["vis_index"], b["vis_index"])
               for a, b in zip(tr.pair_loader(4, seed=1, augment_vis=True), pairs))


def test_paired_subset_keeps_the_asked_identities_and_images(fs):
    train = fs.select(split="train")
    sub = train.paired_subset(4, 2, seed=1)
    ids = np.unique(sub.identities)
    assert len(ids) == 4 and set(ids) <= set(np.unique(train.identities))
    for ident in ids:
        for m in ("vis", "nir", "thermal"):
            assert np.sum((sub.identities == ident) & (sub.modalities == m)) == 2
    # nested: a larger draw with the same seed keeps the smaller one's identities; another seed draws others
    assert set(ids) <= set(np.unique(train.paired_subset(7, 3, seed=1).identities))
    assert any(not np.array_equal(np.unique(train.paired_subset(4, 2, seed=s).identities), ids) for s in range(2, 6))
    # the same seed gives the same images; every identity and image gives back the set itself
    assert np.array_equal(train.paired_subset(4, 2, seed=1).images, sub.images)
    whole = train.paired_subset(10, 3, seed=5)
    assert np.array_equal(whole.images, train.images) and np.array_equal(whole.identities, train.identities)


def test_paired_subset_all_vis_reduces_only_the_other_modalities(fs):
    train = fs.select(split="train")
    sub = train.paired_subset(3, 1, seed=0, all_vis=True)
    assert np.sum(sub.modalities == "vis") == np.sum(train.modalities == "vis")
    other = sub.modalities != "vis"
    assert len(np.unique(sub.identities[other])) == 3 and other.sum() == 3 * 2 * 1


def test_paired_subset_refuses_bad_sizes(fs):
    train = fs.select(split="train")
    with pytest.raises(ValueError, match="11 identities asked for.*at most 10"):
        train.paired_subset(11, 1)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="whole number >= 1"):
            train.paired_subset(bad, 1)
        with pytest.raises(ValueError, match="whole number >= 1"):
            train.paired_subset(2, bad)
    with pytest.raises(ValueError, match="pairs need VIS"):
        train.select(modality="nir").paired_subset(2, 1)
