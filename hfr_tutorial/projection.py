"""2-D projections of embeddings for maps: UMAP (umap-learn, seeded) or PCA, and exact cosine neighbours.

A map of a few thousand 512-d embeddings shows whether a model puts a person's VIS, NIR and thermal
faces together or lets the sensor pull them apart.  This module only computes the coordinates
(:func:`reduce_2d`); :func:`hfr_tutorial.plots.plot_umap` draws them.  UMAP keeps neighbourhoods
(who is close to whom) rather than distances, so sizes of clusters and distances between far-apart
clusters mean little; with a fixed ``random_state`` it is deterministic.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` and ``notebooks/06_evaluation.ipynb``.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from hfr_tutorial.evaluate import l2_normalize

EXACT_KNN_MAX = 5000
"""Up to this many points :func:`reduce_2d` gives UMAP exact cosine neighbours (:func:`exact_cosine_knn`)."""

MIN_POINTS = 5
"""The fewest embeddings a 2-D map is computed from."""


def exact_cosine_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, None]:
    """Exact k nearest neighbours by cosine distance (each point first, at distance 0), as UMAP takes them.

    For the few thousand points a figure shows this is quick and exact, and it spares UMAP the
    approximate search (and its just-in-time compilation, the slowest part of a first call).
    Returns ``(indices, distances, None)``: UMAP's ``precomputed_knn`` form.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"exact_cosine_knn: x has shape {x.shape}; pass a non-empty (N, D) array of embeddings.")
    if not 1 <= k <= len(x):
        raise ValueError(f"exact_cosine_knn: k={k} with {len(x)} points; give 1 <= k <= N.")
    unit = l2_normalize(x)
    dist = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    np.fill_diagonal(dist, -1.0)  # self first, even with duplicate points
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(dist, idx, axis=1)
    d[:, 0] = 0.0
    return idx.astype(np.int32), d.astype(np.float32), None


def reduce_2d(embeddings: np.ndarray, *, method: str = "umap", random_state: int = 0,
              n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int | None = None,
              metric: str = "cosine") -> np.ndarray:
    """2-D coordinates (N, 2) of embeddings (N, D) by UMAP (umap-learn, seeded) or PCA.

    UMAP keeps neighbourhoods (who is close to whom) rather than distances; with a fixed
    ``random_state`` it is deterministic.  Falls back to PCA, with a warning, only when umap-learn
    cannot be imported.  At least :data:`MIN_POINTS` embeddings.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"reduce_2d: embeddings have shape {x.shape}; pass a 2-D array (N, D).")
    if len(x) < MIN_POINTS:
        raise ValueError(f"reduce_2d: need at least {MIN_POINTS} embeddings for a 2-D map, got {len(x)}.")
    if method not in ("umap", "pca"):
        raise ValueError(f"reduce_2d: unknown method {method!r}; use 'umap' or 'pca'.")
    if method == "umap":
        try:
            import umap  # here, not at the top: loading umap-learn (numba) takes seconds, and only UMAP needs it
        except ImportError as err:  # pragma: no cover - umap-learn is a dependency
            warnings.warn(f"umap-learn could not be imported ({err}); drawing PCA instead.", stacklevel=2)
            method = "pca"
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=random_state).fit_transform(x)
    k = min(n_neighbors, len(x) - 1)
    knn = exact_cosine_knn(x, k) if metric == "cosine" and len(x) <= EXACT_KNN_MAX else (None, None, None)
    reducer = umap.UMAP(n_neighbors=k, min_dist=min_dist, n_epochs=n_epochs, metric=metric,
                        random_state=random_state, n_jobs=1, precomputed_knn=knn)
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            return np.asarray(reducer.fit_transform(x))
    finally:
        # numba's OpenMP start-up raises the process's OpenMP thread count to every core, and torch follows it:
        # a notebook that trains after a map would then train on more threads than OMP_NUM_THREADS allows,
        # which on shared cores made each epoch 12 times slower (CI, notebook 04). Put torch back.
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


MAP_IDENTITIES = 30
"""How many eval identities every map of the course shows (notebooks 00, 01, 03, 04 and 06)."""


def map_sample(identities: np.ndarray, n_identities: int = MAP_IDENTITIES, seed: int = 0) -> np.ndarray:
    """A boolean mask over ``identities`` keeping the same ``n_identities`` people in every map of the course.

    The people are drawn with their own generator (``seed``), never the notebook's, so the pixel map of
    notebook 00, the baseline's of 01, the contrastive-only run's of 03, the method's of 04 and the
    before/after maps of 06 show the same faces, whatever ran before them.  Fewer identities than
    ``n_identities``: all of them.
    """
    identities = np.asarray(identities)
    if identities.ndim != 1 or len(identities) == 0:
        raise ValueError(f"map_sample: identities has shape {identities.shape}; pass a non-empty 1-D array "
                         "(e.g. eval_set.identities).")
    if isinstance(n_identities, bool) or not isinstance(n_identities, (int, np.integer)) or n_identities < 1:
        raise ValueError(f"map_sample: n_identities={n_identities!r}; give a whole number >= 1.")
    people = np.unique(identities)
    keep = np.random.default_rng(seed).choice(people, size=min(int(n_identities), len(people)), replace=False)
    return np.isin(identities, keep)
