"""The per-epoch validation figure: rank-1 on a few dev images per identity and modality.

Reported figures use ``eval`` (:mod:`hfr_tutorial.experiment`); this only draws the learning curves
of the history table.

Taught in: ``notebooks/01_baseline_rgb_model.ipynb`` and ``notebooks/05_full_training.ipynb``.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
from torch import nn

from ..evaluate import embed, evaluate_protocols

VALIDATION_IMAGES_PER_IDENTITY = 3
"""Images per identity and modality that the per-epoch validation embeds (the first ones): enough
for a learning curve, a third of the cost of the whole dev split."""


def dev_rank1(model: nn.Module, faceset: Any, protocols: Sequence[str], batch_size: int = 256) -> dict[str, float]:
    """Rank-1 of each protocol (``"nir->vis"``...) on a (dev) FaceSet: the validation figure."""
    emb = embed(model, faceset, batch_size=batch_size, progress=False)
    results = evaluate_protocols(emb, faceset.identities, faceset.modalities, protocols=tuple(protocols))
    return {f"val_{name.split('->')[0]}_rank1": round(float(r["rank1"]), 4) for name, r in results.items()}


def validation_subset(dev_set: Any, modalities: Sequence[str],
                      per_identity: int = VALIDATION_IMAGES_PER_IDENTITY) -> Any:
    """The first ``per_identity`` images of each (identity, modality) of ``dev_set`` in ``modalities``."""
    data = dev_set.select(modality=list(modalities))
    rank = pd.DataFrame({"identity": data.identities, "modality": data.modalities}).groupby(
        ["identity", "modality"]).cumcount().to_numpy()  # 0, 1, 2, ... within each (identity, modality)
    return data.subset(rank < per_identity)
