"""``FaceSet``: the one in-memory data model of the tutorial, and its torch loaders.

A ``FaceSet`` is a table of face images with, per image, an identity id, a modality (``vis``,
``nir``, ``thermal``, ...), a split (``train``, ``dev``, ``eval``; identity-disjoint) and a
source path.  It is built by the synthetic generator (:func:`hfr_tutorial.data.synthetic_faceset`)
or read from the standard on-disk layout (:meth:`FaceSet.from_layout`), and it hands out the two
kinds of batches the method trains on:

* :meth:`FaceSet.loader` -- ``(x, y)`` batches of single images with contiguous class labels, for
  the RGB baseline (and the joint oracle), with the usual face-recognition augmentations;
* :meth:`FaceSet.pair_loader` -- batches of (VIS, NIR-or-thermal) pairs of the *same* identity,
  each identity at most once per batch, for the cross-modal contrastive adaptation.

Randomness never touches a global generator: the order of an epoch comes from ``(seed, epoch)``
and each item's augmentation from ``(seed, epoch, index)``, so a resumed training run sees the
same batches, whatever ``num_workers`` is.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (the data model, splits and pairs) and
used by every later notebook.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

SPLITS: tuple[str, ...] = ("train", "dev", "eval")
"""The identity-disjoint splits (``''`` = not assigned yet)."""

KNOWN_MODALITIES: tuple[str, ...] = ("vis", "nir", "thermal", "swir", "sketch", "depth")
"""Modalities the standard layout and ``FaceSet`` accept (lower-case words)."""


def cross_modalities(modalities: Sequence[str] | np.ndarray) -> tuple[str, ...]:
    """The modalities other than VIS present in ``modalities``, in :data:`KNOWN_MODALITIES` order
    (what the method pairs with VIS: ``nir`` and ``thermal`` on the embedded data, ``nir`` on CASIA)."""
    present = set(np.asarray(modalities).astype(str).tolist())
    return tuple(m for m in KNOWN_MODALITIES if m != "vis" and m in present)


def _as_tuple(value: str | Sequence[str] | None, what: str, allowed: Sequence[str]) -> tuple[str, ...] | None:
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else tuple(value)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"Unknown {what} {bad}: use one or more of {list(allowed)}.")
    return values


class FaceSet:
    """Face images with identity, modality, split and source path per image.

    Args:
        images: ``(N, H, W, 3)`` uint8 array, or a lazy array-like (``len``, ``[int]``,
            ``[index array]`` -> ndarray, ``.shape``) for large on-disk sets.
        identities: ``(N,)`` integer identity ids (global and stable: a subset keeps them).
        modalities: ``(N,)`` modality names (see :data:`KNOWN_MODALITIES`).
        splits: ``(N,)`` ``'train'|'dev'|'eval'`` (``''`` where not assigned), default all ``''``.
        paths: ``(N,)`` source files (``''`` for generated images).
        identity_names: name of each identity id (indexable by id), default ``id00042`` style.
        name: a short name for printing and caching.
        landmarks: optional ``(N, 5, 2)`` pixel landmarks (eyes, nose tip, mouth corners).
        roles: optional ``(N,)`` protocol role per image (``train``, ``gallery``, ``probe``).
        meta: free-form metadata (generator config, source, licence, ...).

    Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
    """

    def __init__(self, images: Any, identities: Sequence[int] | np.ndarray, modalities: Sequence[str] | np.ndarray,
                 *, splits: Sequence[str] | np.ndarray | None = None, paths: Sequence[str] | np.ndarray | None = None,
                 identity_names: Sequence[str] | np.ndarray | None = None, name: str = "faceset",
                 landmarks: np.ndarray | None = None, roles: Sequence[str] | np.ndarray | None = None,
                 meta: Mapping[str, Any] | None = None):
        n = len(images)
        self.images = images
        self.identities = np.asarray(identities, dtype=np.int64).reshape(-1)
        self.modalities = np.asarray(modalities, dtype=str).reshape(-1)
        self.splits = (np.full(n, "", dtype="<U5") if splits is None else np.asarray(splits, dtype=str)).reshape(-1)
        self.paths = (np.full(n, "", dtype=str) if paths is None else np.asarray(paths, dtype=str)).reshape(-1)
        self.roles = None if roles is None else np.asarray(roles, dtype=str).reshape(-1)
        self.landmarks = None if landmarks is None else np.asarray(landmarks, dtype=np.float32)
        self.name = str(name)
        self.meta = dict(meta or {})
        for attr in ("identities", "modalities", "splits", "paths") + (("roles",) if roles is not None else ()):
            if len(getattr(self, attr)) != n:
                raise ValueError(
                    f"FaceSet {name!r}: {attr} has {len(getattr(self, attr))} entries but there are {n} images; "
                    "give one entry per image."
                )
        if self.landmarks is not None and self.landmarks.shape != (n, 5, 2):
            raise ValueError(f"FaceSet {name!r}: landmarks must have shape ({n}, 5, 2), got {self.landmarks.shape}.")
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
            raise ValueError(
                f"FaceSet {name!r}: images must be (N, H, W, 3) square RGB, got shape {shape}. "
                "Replicate one-channel images to 3 channels and align/crop faces to a square first."
            )
        if isinstance(images, np.ndarray) and images.dtype != np.uint8:
            raise ValueError(f"FaceSet {name!r}: images must be uint8 (0..255), got {images.dtype}.")
        bad = sorted(set(self.modalities.tolist()) - set(KNOWN_MODALITIES))
        if bad:
            raise ValueError(f"FaceSet {name!r}: unknown modalities {bad}; use {list(KNOWN_MODALITIES)}.")
        bad = sorted(set(self.splits.tolist()) - set(SPLITS) - {""})
        if bad:
            raise ValueError(f"FaceSet {name!r}: unknown splits {bad}; use {list(SPLITS)} (or '' for unassigned).")
        if n and self.identities.min() < 0:
            raise ValueError(f"FaceSet {name!r}: identity ids must be >= 0.")
        max_id = int(self.identities.max()) if n else -1
        if identity_names is None:
            identity_names = [f"id{i:05d}" for i in range(max_id + 1)]
        self.identity_names = np.asarray(identity_names, dtype=str)
        if len(self.identity_names) <= max_id:
            raise ValueError(
                f"FaceSet {name!r}: identity_names has {len(self.identity_names)} names but ids go up to {max_id}; "
                "give a name for every id (indexable by id)."
            )
        self._check_disjoint()

    # ------------------------------------------------------------------ basic properties
    def __len__(self) -> int:
        return len(self.identities)

    @property
    def image_size(self) -> int:
        """Side of the square images in pixels."""
        return int(self.images.shape[1])

    @property
    def classes(self) -> np.ndarray:
        """The sorted unique identity ids: class ``k`` of the loaders is ``classes[k]``."""
        return np.unique(self.identities)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_index(self, identities: Sequence[int] | np.ndarray) -> np.ndarray:
        """Map identity ids to contiguous class indices ``0..K-1`` over this set's sorted identities."""
        ids = np.asarray(identities, dtype=np.int64)
        classes = self.classes
        pos = np.searchsorted(classes, ids)
        pos_c = np.clip(pos, 0, max(len(classes) - 1, 0))
        ok = (len(classes) > 0) & (classes[pos_c] == ids) if ids.ndim else bool(len(classes) and classes[pos_c] == ids)
        if not np.all(ok):
            missing = np.unique(ids[~np.asarray(ok)]) if ids.ndim else [int(ids)]
            raise ValueError(
                f"Identities {list(missing)[:10]} are not in FaceSet {self.name!r}; class indices exist only for "
                "its own identities (select the split you train on first, then ask)."
            )
        return pos_c.astype(np.int64)

    def identity_name(self, identities: int | Sequence[int] | np.ndarray) -> str | np.ndarray:
        """Name(s) of identity id(s)."""
        if np.ndim(identities) == 0:
            return str(self.identity_names[int(identities)])
        return self.identity_names[np.asarray(identities, dtype=np.int64)]

    def __repr__(self) -> str:
        mods = ", ".join(f"{m}={int(c)}" for m, c in zip(*np.unique(self.modalities, return_counts=True)))
        return (f"FaceSet({self.name!r}: {len(self)} images of {len(np.unique(self.identities))} identities, "
                f"{self.image_size}px, {mods or 'empty'})")

    def _check_disjoint(self) -> None:
        train = set(self.identities[self.splits == "train"].tolist())
        for other in ("dev", "eval"):
            leak = train & set(self.identities[self.splits == other].tolist())
            if leak:
                raise ValueError(
                    f"FaceSet {self.name!r}: identities {sorted(leak)[:10]} are in both 'train' and {other!r}. "
                    "Splits must be identity-disjoint; re-split with FaceSet.with_splits(...)."
                )
        dev = set(self.identities[self.splits == "dev"].tolist())
        leak = dev & set(self.identities[self.splits == "eval"].tolist())
        if leak:
            raise ValueError(
                f"FaceSet {self.name!r}: identities {sorted(leak)[:10]} are in both 'dev' and 'eval'. "
                "Splits must be identity-disjoint; re-split with FaceSet.with_splits(...)."
            )

    # ------------------------------------------------------------------ subsets
    def subset(self, indices_or_mask: Sequence[int] | np.ndarray, name: str | None = None) -> "FaceSet":
        """The images at the given indices (or where a boolean mask is True), in that order."""
        idx = np.asarray(indices_or_mask)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"A boolean mask needs {len(self)} entries, got shape {idx.shape}.")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"Indices out of range for FaceSet {self.name!r} of {len(self)} images.")
        if isinstance(self.images, np.ndarray):
            images = self.images[idx]
        else:
            images = self.images.subset(idx)
        return FaceSet(images, self.identities[idx], self.modalities[idx], splits=self.splits[idx],
                       paths=self.paths[idx], identity_names=self.identity_names, name=name or self.name,
                       landmarks=None if self.landmarks is None else self.landmarks[idx],
                       roles=None if self.roles is None else self.roles[idx], meta=self.meta)

    def select(self, split: str | Sequence[str] | None = None, modality: str | Sequence[str] | None = None) -> "FaceSet":
        """The images of the given split(s) and modality(ies) (str or sequence), keeping their order."""
        mask = np.ones(len(self), dtype=bool)
        splits = _as_tuple(split, "split", SPLITS + ("",))
        mods = _as_tuple(modality, "modality", KNOWN_MODALITIES)
        if splits is not None:
            mask &= np.isin(self.splits, splits)
        if mods is not None:
            mask &= np.isin(self.modalities, mods)
        return self.subset(mask)

    def paired_subset(self, n_identities: int, images_per_modality: int, *, seed: int = 0,
                      all_vis: bool = False) -> "FaceSet":
        """Less paired data: ``n_identities`` identities drawn at random, ``images_per_modality`` images each.

        Used to ask how much paired data the method needs (``benchmarks/data_efficiency.py``).  Only
        identities with a VIS image and an image of every other modality of this set can be drawn;
        of each drawn identity at most ``images_per_modality`` images of each modality are kept
        (drawn at random, so ``1`` leaves one VIS image and one of each other modality: one paired
        capture per sensor).  With ``all_vis`` every VIS image of every identity stays as well (the
        RGB data a jointly trained model would also have): only the non-VIS images are reduced.

        The draw depends only on ``seed``; a larger ``n_identities`` with the same seed keeps the
        smaller draw's identities (the order of one permutation), so points of a curve are nested.
        The images keep their order in this set, so the whole set (every identity, every image)
        gives back the same set.

        Raises:
            ValueError: ``n_identities`` or ``images_per_modality`` is not a whole number >= 1, or
                more identities are asked for than the set holds with every modality.
        """
        for name, value in (("n_identities", n_identities), ("images_per_modality", images_per_modality)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"paired_subset: {name}={value!r} is invalid; give a whole number >= 1.")
        mods = sorted(set(self.modalities.tolist()))
        if "vis" not in mods or len(mods) < 2:
            raise ValueError(f"paired_subset: FaceSet {self.name!r} holds modalities {mods}; pairs need VIS and at "
                             "least one other modality.")
        complete = None
        for m in mods:
            have = set(np.unique(self.identities[self.modalities == m]).tolist())
            complete = have if complete is None else complete & have
        eligible = np.array(sorted(complete), dtype=np.int64)
        if n_identities > len(eligible):
            raise ValueError(f"paired_subset: {n_identities} identities asked for, but FaceSet {self.name!r} has "
                             f"{len(eligible)} with every modality ({', '.join(mods)}); ask for at most "
                             f"{len(eligible)}.")
        rng = np.random.default_rng([int(seed), 0xDA7A])
        chosen = eligible[rng.permutation(len(eligible))[:n_identities]]
        keep = np.zeros(len(self), dtype=bool)
        if all_vis:
            keep |= self.modalities == "vis"
        for ident in chosen:
            for m in mods:
                if all_vis and m == "vis":
                    continue
                rows = np.flatnonzero((self.identities == ident) & (self.modalities == m))
                pick_rng = np.random.default_rng([int(seed), int(ident), mods.index(m), 0xDA7A])
                keep[pick_rng.permutation(rows)[:images_per_modality]] = True
        return self.subset(keep, name=f"{self.name}[{n_identities} ids x {images_per_modality}]")

    def with_splits(self, fractions_or_counts: Sequence[float] | Sequence[int] | Mapping[str, float],
                    seed: int = 0) -> "FaceSet":
        """A copy re-split identity-disjointly into train/dev/eval.

        ``fractions_or_counts``: three fractions summing to 1 (e.g. ``(0.6, 0.1, 0.3)``), three
        identity counts summing to the number of identities, or a dict with keys
        ``train``/``dev``/``eval``.  Identities are shuffled with ``seed``.
        """
        if isinstance(fractions_or_counts, Mapping):
            unknown = set(fractions_or_counts) - set(SPLITS)
            if unknown:
                raise ValueError(f"with_splits: unknown split names {sorted(unknown)}; use {list(SPLITS)}.")
            values = [fractions_or_counts.get(s, 0) for s in SPLITS]
        else:
            values = list(fractions_or_counts)
        if len(values) != 3 or any(v < 0 for v in values):
            raise ValueError(f"with_splits needs three non-negative values (train, dev, eval), got {values}.")
        ids = np.unique(self.identities)
        n = len(ids)
        if all(float(v).is_integer() for v in values) and sum(values) > 1:
            counts = [int(v) for v in values]
            if sum(counts) != n:
                raise ValueError(f"with_splits: counts {counts} sum to {sum(counts)} but the set has {n} identities; "
                                 "make them add up, or pass fractions.")
        else:
            if abs(sum(values) - 1.0) > 1e-6:
                raise ValueError(f"with_splits: fractions {values} must sum to 1.")
            n_train = int(round(values[0] * n))
            n_dev = min(int(round(values[1] * n)), n - n_train)
            counts = [n_train, n_dev, n - n_train - n_dev]
        perm = np.random.default_rng([int(seed), 0x5B1]).permutation(ids)
        split_of = {}
        start = 0
        for name, c in zip(SPLITS, counts):
            for ident in perm[start:start + c]:
                split_of[int(ident)] = name
            start += c
        splits = np.array([split_of[int(i)] for i in self.identities], dtype="<U5")
        return FaceSet(self.images, self.identities, self.modalities, splits=splits, paths=self.paths,
                       identity_names=self.identity_names, name=self.name, landmarks=self.landmarks,
                       roles=None, meta=self.meta)

    def summary(self) -> "pd.DataFrame":
        """Image counts per split (rows) and modality (columns), plus identities per split."""
        import pandas as pd

        split_order = [s for s in SPLITS + ("",) if np.any(self.splits == s)]
        present = set(self.modalities.tolist())
        mod_order = [m for m in KNOWN_MODALITIES if m in present]
        rows = []
        for s in split_order:
            sel = self.splits == s
            row = {m: int(np.sum(sel & (self.modalities == m))) for m in mod_order}
            row["images"] = int(sel.sum())
            row["identities"] = int(len(np.unique(self.identities[sel])))
            rows.append(row)
        df = pd.DataFrame(rows, index=pd.Index([s or "unassigned" for s in split_order], name="split"),
                          columns=mod_order + ["images", "identities"])
        return df

    # ------------------------------------------------------------------ protocols and pairs
    def gallery_probe(self, probe_modality: str, gallery_modality: str = "vis") -> tuple[np.ndarray, np.ndarray]:
        """Indices of the tutorial's identification protocol on this set.

        Gallery: the first ``gallery_modality`` image of each identity (in set order); probes: every
        other image of ``probe_modality`` whose identity is in the gallery.
        """
        _as_tuple(probe_modality, "modality", KNOWN_MODALITIES)
        _as_tuple(gallery_modality, "modality", KNOWN_MODALITIES)
        gal_pool = np.flatnonzero(self.modalities == gallery_modality)
        _, first = np.unique(self.identities[gal_pool], return_index=True)
        gallery = np.sort(gal_pool[first])
        probes = np.flatnonzero((self.modalities == probe_modality)
                                & np.isin(self.identities, self.identities[gallery]))
        probes = probes[~np.isin(probes, gallery)]
        return gallery, probes

    def pair_indices(self, *, seed: int = 0, epoch: int = 0, pairs_per_identity: int = 4,
                     modalities: Sequence[str] = ("nir", "thermal")) -> np.ndarray:
        """(P, 2) indices ``[other, vis]``: NIR/thermal images paired with VIS images of the same identity.

        Each identity that has VIS and at least one ``modalities`` image contributes
        ``pairs_per_identity`` pairs, drawing its images without replacement (cycling when it has
        fewer).  Rows are ordered in rounds: every identity once per round, rounds shuffled.
        Deterministic in ``(seed, epoch)``.
        """
        mods = _as_tuple(modalities, "modality", KNOWN_MODALITIES)
        if pairs_per_identity < 1:
            raise ValueError(f"pairs_per_identity={pairs_per_identity}: need at least 1.")
        rng = np.random.default_rng([int(seed), int(epoch), 0xA1F])
        vis_idx = np.flatnonzero(self.modalities == "vis")
        oth_idx = np.flatnonzero(np.isin(self.modalities, mods))
        vis_by = _group(self.identities[vis_idx], vis_idx)
        oth_by = _group(self.identities[oth_idx], oth_idx)
        ids = np.array(sorted(set(vis_by) & set(oth_by)), dtype=np.int64)
        if len(ids) == 0:
            raise ValueError(
                f"FaceSet {self.name!r} has no identity with both a VIS image and a {list(mods)} image: "
                "nothing to pair. Check the split and modalities you selected."
            )
        k = pairs_per_identity
        picks_o = np.empty((len(ids), k), np.int64)
        picks_v = np.empty((len(ids), k), np.int64)
        for r, ident in enumerate(ids):
            for picks, pool in ((picks_o, oth_by[ident]), (picks_v, vis_by[ident])):
                reps = -(-k // len(pool))
                order = np.concatenate([rng.permutation(pool) for _ in range(reps)])
                picks[r] = order[:k]
        rounds = [rng.permutation(len(ids)) for _ in range(k)]
        rows = np.concatenate([np.stack([picks_o[perm, j], picks_v[perm, j]], 1) for j, perm in enumerate(rounds)])
        return rows

    # ------------------------------------------------------------------ torch
    def dataset(self, *, augment: bool = False, seed: int = 0, epoch: int = 0) -> "FaceDataset":
        """A plain torch ``Dataset`` of ``(x, y)`` (see :meth:`loader`)."""
        return FaceDataset(self, augment=augment, seed=seed, epoch=epoch)

    def loader(self, batch_size: int, *, shuffle: bool = True, augment: bool = False, seed: int = 0,
               epoch: int = 0, drop_last: bool = False, num_workers: int = 0,
               pin_memory: bool = False) -> "torch.utils.data.DataLoader":
        """Batches ``(x, y)``: x float32 ``(B, 3, H, W)`` in [0, 1], y int64 contiguous class indices.

        The order (when ``shuffle``) and the augmentation (horizontal flip, a small random crop
        rescaled back, colour jitter on VIS images only) depend only on ``(seed, epoch)``; the
        model applies its own normalisation.
        """
        import torch
        from torch.utils.data import DataLoader

        _check_batch(batch_size, len(self))
        order = (np.random.default_rng([int(seed), int(epoch), 0x0D]).permutation(len(self)) if shuffle
                 else np.arange(len(self)))
        return DataLoader(self.dataset(augment=augment, seed=seed, epoch=epoch), batch_size=batch_size,
                          sampler=order.tolist(), drop_last=drop_last, num_workers=num_workers,
                          collate_fn=_keep_batch, pin_memory=pin_memory,
                          generator=torch.Generator().manual_seed(int(seed)),
                          persistent_workers=False)

    def pair_loader(self, batch_size: int, *, seed: int = 0, epoch: int = 0, pairs_per_identity: int = 4,
                    augment_vis: bool = False, augment_other: bool = False,
                    modalities: Sequence[str] = ("nir", "thermal"), drop_last: bool = False,
                    num_workers: int = 0, pin_memory: bool = False) -> "torch.utils.data.DataLoader":
        """Batches of same-identity (VIS, NIR-or-thermal) pairs for cross-modal adaptation.

        Yields dicts ``{"vis": (B,3,H,W), "other": (B,3,H,W), "label": (B,) contiguous int64,
        "identity": (B,) int64, "modality": list[str], "vis_index": (B,) int64}`` (``vis_index``:
        the row of each VIS image in this FaceSet).  Within a batch every identity appears at most
        once, so in-batch negatives are true negatives; per epoch every identity gives
        ``pairs_per_identity`` pairs.  Images are as the sensor made them unless ``augment_vis`` /
        ``augment_other`` (the training augmentations of :func:`augment_batch`; the adaptation
        leaves both off, see ``TrainConfig.adapt_augment_vis``).  Deterministic in ``(seed, epoch)``.
        """
        import torch
        from torch.utils.data import DataLoader

        pairs = self.pair_indices(seed=seed, epoch=epoch, pairs_per_identity=pairs_per_identity,
                                  modalities=modalities)
        _check_batch(batch_size, len(pairs))
        batches = _unique_identity_batches(self.identities[pairs[:, 0]], batch_size, drop_last)
        ds = PairDataset(self, pairs, augment_vis=augment_vis, augment_other=augment_other, seed=seed, epoch=epoch)
        return DataLoader(ds, batch_sampler=batches, collate_fn=_keep_batch, num_workers=num_workers,
                          pin_memory=pin_memory, generator=torch.Generator().manual_seed(int(seed)))

    # ------------------------------------------------------------------ on disk
    @classmethod
    def from_layout(cls, root: str | Path, protocol: str | None = None, lazy: bool | None = None) -> "FaceSet":
        """Read a standard layout (see :mod:`hfr_tutorial.data.layout`).

        Raises TypeError when ``root`` is not a path (``None``, a number), and
        :class:`~hfr_tutorial.data.layout.LayoutError` (naming the file and the fix) when the layout
        breaks a rule: a file given instead of the folder, a row or link leading outside the root,
        one image used as both gallery and probe, an identity in two splits ...
        """
        from .layout import layout_root, read_layout

        return read_layout(layout_root(root), protocol=protocol, lazy=lazy)

    def write_layout(self, root: str | Path, name: str | None = None,
                     protocols: Mapping[str, Any] | None = None, **info: Any) -> Path:
        """Write this set in the standard layout (see :func:`hfr_tutorial.data.layout.write_layout`)."""
        from .layout import write_layout

        return write_layout(self, root, name=name, protocols=protocols, **info)


# ---------------------------------------------------------------------- helpers

def _check_batch(batch_size: int, n: int) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: use a positive integer.")
    if n == 0:
        raise ValueError("This FaceSet is empty: nothing to load (check the split/modality you selected).")


def _group(keys: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    keys_s, values_s = keys[order], values[order]
    uniq, start = np.unique(keys_s, return_index=True)
    bounds = list(start[1:]) + [len(keys_s)]
    return {int(k): values_s[s:e] for k, s, e in zip(uniq, start, bounds)}


def _unique_identity_batches(identities: np.ndarray, batch_size: int, drop_last: bool) -> list[list[int]]:
    """Cut a stream of items into batches in order, deferring an item whose identity is already in the batch."""
    pending = deque(range(len(identities)))
    batches: list[list[int]] = []
    while pending:
        batch, seen, deferred = [], set(), []
        while pending and len(batch) < batch_size:
            item = pending.popleft()
            ident = int(identities[item])
            if ident in seen:
                deferred.append(item)
            else:
                batch.append(item)
                seen.add(ident)
        pending.extendleft(reversed(deferred))
        batches.append(batch)
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


AUGMENT_DRAWS = 9
"""Uniform numbers each augmented image draws from its own generator (flip, crop side, crop
offset x 2, brightness, contrast, saturation, red and blue gain)."""


def augment_draws(seed: int, epoch: int, indices: Iterable[int], tag: int) -> np.ndarray:
    """``(len(indices), AUGMENT_DRAWS)`` uniforms, one row per item from ``(seed, epoch, index, tag)``.

    A row depends on the item alone, not on the batch it lands in, so a resumed run (or another
    ``num_workers``) sees the same augmentation.
    """
    rows = [np.random.default_rng([int(seed), int(epoch), int(i), int(tag)]).random(AUGMENT_DRAWS, dtype=np.float32)
            for i in indices]
    return np.stack(rows) if rows else np.zeros((0, AUGMENT_DRAWS), np.float32)


def augment_batch(images: np.ndarray, draws: np.ndarray, colour: np.ndarray | Sequence[bool],
                  crop: float = 0.88) -> "torch.Tensor":
    """Face-recognition augmentation of a uint8 ``(B, H, W, 3)`` batch -> float32 ``(B, 3, H, W)`` in [0, 1].

    Per image (row ``b`` of ``draws``, see :func:`augment_draws`): a horizontal flip (p = 0.5), a
    random square crop of 88-100 % of the side rescaled back to full size (bilinear), and, where
    ``colour[b]``, jitter of brightness, contrast, saturation and the red/blue gains (VIS only:
    NIR and thermal sensors have no colour to jitter).  The whole batch is transformed at once
    (one ``grid_sample`` for the crops), which keeps data loading a small part of a training step.
    """
    import torch
    import torch.nn.functional as F

    b, h, w = images.shape[:3]
    u = torch.from_numpy(np.asarray(draws, dtype=np.float32).reshape(b, AUGMENT_DRAWS))
    x = _to_tensor_batch(images)
    # Flip and crop as one affine map per image: output pixel grid -> the crop's square in the
    # input (normalised coordinates, x negated for a flip); an uncropped, unflipped image maps
    # onto itself.
    side = torch.round(h * (crop + (1 - crop) * u[:, 1]))
    top = torch.floor(u[:, 2] * (h - side + 1))
    left = torch.floor(u[:, 3] * (w - side + 1))
    flip = torch.where(u[:, 0] < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = flip * side / w
    theta[:, 1, 1] = side / h
    theta[:, 0, 2] = flip * ((2 * left + side) / w - 1)  # the crop is cut from the flipped image
    theta[:, 1, 2] = (2 * top + side) / h - 1
    grid = F.affine_grid(theta, [b, 3, h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    jitter = torch.as_tensor(np.asarray(colour, dtype=bool).reshape(b))
    if bool(jitter.any()):
        # saturation s around the pixel's grey g, contrast c around the image mean m (which the
        # saturation step leaves unchanged), then brightness times channel gains k: one affine map
        # per image and channel, out = k*c*s * x + k*c*(1 - s) * g + k*(1 - c) * m, clipped to [0, 1]
        bright, contrast, sat = 0.75 + 0.5 * u[:, 4], 0.75 + 0.5 * u[:, 5], 0.6 + 0.8 * u[:, 6]
        ones = torch.ones(b)
        gains = torch.stack([1 + 0.16 * (u[:, 7] - 0.5), ones, 1 + 0.16 * (u[:, 8] - 0.5)], 1) * bright[:, None]
        gains = torch.where(jitter[:, None], gains, 1.0)
        contrast, sat = torch.where(jitter, contrast, ones), torch.where(jitter, sat, ones)
        grey = x.mean(1, keepdim=True)
        mean = grey.mean((2, 3), keepdim=True)
        a = (gains * (contrast * sat)[:, None])[:, :, None, None]
        g = (gains * (contrast * (1 - sat))[:, None])[:, :, None, None]
        d = (gains * (1 - contrast)[:, None])[:, :, None, None] * mean
        x = torch.addcmul(d, a, x).addcmul_(g, grey).clamp_(0, 1)
    return x


def augment_image(img: np.ndarray, rng: np.random.Generator, *, colour: bool, crop: float = 0.88) -> np.ndarray:
    """One uint8 ``(H, W, 3)`` image through :func:`augment_batch` -> float32 ``(H, W, 3)`` in [0, 1]."""
    draws = rng.random(AUGMENT_DRAWS, dtype=np.float32)[None]
    return augment_batch(np.asarray(img)[None], draws, [colour], crop=crop)[0].permute(1, 2, 0).numpy()


def _as_batch(images: Any, indices: Sequence[int]) -> np.ndarray:
    """uint8 ``(B, H, W, 3)`` for ``indices`` of an array or a lazy image list."""
    if isinstance(images, np.ndarray):
        return images[np.asarray(indices, dtype=np.int64)]
    return np.stack([np.asarray(images[int(i)]) for i in indices])


def _to_tensor_batch(images: np.ndarray) -> "torch.Tensor":
    import torch

    return torch.tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().mul_(1 / 255.0)


def _keep_batch(batch: Any) -> Any:
    """``collate_fn`` for datasets whose ``__getitems__`` already returns a whole batch."""
    return batch


try:  # torch is a dependency of the package, but keep the data model importable without it
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover
    _TorchDataset = object  # type: ignore[misc,assignment]


class FaceDataset(_TorchDataset):
    """``(x, y)`` items of a FaceSet; augmentation from ``(seed, epoch, index)`` (see :func:`augment_draws`).

    ``__getitems__`` builds a whole batch at once (the DataLoader calls it with a batch's indices).
    """

    def __init__(self, faceset: FaceSet, *, augment: bool = False, seed: int = 0, epoch: int = 0):
        self.images = faceset.images
        self.labels = faceset.class_index(faceset.identities)
        self.is_vis = faceset.modalities == "vis"
        self.augment, self.seed, self.epoch = augment, int(seed), int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: Sequence[int]) -> tuple["torch.Tensor", "torch.Tensor"]:
        import torch

        idx = np.asarray(indices, dtype=np.int64)
        images = _as_batch(self.images, idx)
        if self.augment:
            x = augment_batch(images, augment_draws(self.seed, self.epoch, idx, 0xA6), self.is_vis[idx])
        else:
            x = _to_tensor_batch(images)
        return x, torch.from_numpy(self.labels[idx].astype(np.int64))

    def __getitem__(self, i: int):
        x, y = self.__getitems__([int(i)])
        return x[0], y[0]


class PairDataset(_TorchDataset):
    """Pairs ``(vis_image, other_image, label, identity, modality)`` for rows of ``pair_indices``.

    ``__getitems__`` returns the batch dict that :meth:`FaceSet.pair_loader` yields.
    """

    def __init__(self, faceset: FaceSet, pairs: np.ndarray, *, augment_vis: bool = False,
                 augment_other: bool = False, seed: int = 0, epoch: int = 0):
        self.images = faceset.images
        self.pairs = np.asarray(pairs, dtype=np.int64)
        self.labels = faceset.class_index(faceset.identities)
        self.identities = faceset.identities
        self.modalities = faceset.modalities
        self.augment_vis, self.augment_other = augment_vis, augment_other
        self.seed, self.epoch = int(seed), int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        import torch

        rows = np.asarray(indices, dtype=np.int64)
        other_idx, vis_idx = self.pairs[rows, 0], self.pairs[rows, 1]
        vis, other = _as_batch(self.images, vis_idx), _as_batch(self.images, other_idx)
        vis = (augment_batch(vis, augment_draws(self.seed, self.epoch, rows, 0xB1), np.ones(len(rows), bool))
               if self.augment_vis else _to_tensor_batch(vis))
        other = (augment_batch(other, augment_draws(self.seed, self.epoch, rows, 0xB2), np.zeros(len(rows), bool))
                 if self.augment_other else _to_tensor_batch(other))
        return {"vis": vis, "other": other, "label": torch.from_numpy(self.labels[other_idx].astype(np.int64)),
                "identity": torch.from_numpy(self.identities[other_idx].astype(np.int64)),
                "modality": [str(m) for m in self.modalities[other_idx]],
                "vis_index": torch.from_numpy(vis_idx.astype(np.int64))}

    def __getitem__(self, i: int):
        b = self.__getitems__([int(i)])
        return b["vis"][0], b["other"][0], int(b["label"][0]), int(b["identity"][0]), b["modality"][0]
