"""Does a deployed form reproduce the float PyTorch model? Thresholds, and the face-by-face comparison.

:func:`compare_embeddings` takes the embeddings of the same faces under the float PyTorch model and
under a candidate form: the cosine of each face's two embeddings (mean and minimum), and with labels
the change of each protocol's rank-1 and EER.  A :class:`Threshold` says what must hold
(:data:`FLOAT_THRESHOLD`, :data:`INT8_THRESHOLD`, :data:`INT8_STATIC_THRESHOLD`); a failure names
the output that disagrees, the face, and by how much (:class:`~hfr_tutorial.deploy.DeploymentError`).

Taught in ``notebooks/08_edge_deployment.ipynb``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hfr_tutorial.deploy.errors import DeploymentError
from hfr_tutorial.deploy.export import OUTPUT_NAME
from hfr_tutorial.deploy.forms import Form, embed_form
from hfr_tutorial.evaluate import evaluate_protocols, l2_normalize


@dataclass(frozen=True)
class Threshold:
    """What a deployed form must keep of the float PyTorch model on a set of faces.

    ``min_mean_cosine`` / ``min_cosine``: mean and smallest cosine between the embeddings of the
    same face under the two models.  ``max_rank1_drop`` / ``max_eer_rise``: the largest loss of
    rank-1 and rise of EER allowed on any protocol (``None``: not checked).
    """

    min_mean_cosine: float
    min_cosine: float
    max_rank1_drop: float | None = None
    max_eer_rise: float | None = None


FLOAT_THRESHOLD = Threshold(min_mean_cosine=0.999, min_cosine=0.999, max_rank1_drop=0.01, max_eer_rise=0.01)
"""ONNX float against PyTorch float: the same arithmetic in another order (measured: cosine
>= 0.99999 on every face; rank-1 and EER unchanged up to a tie)."""

INT8_THRESHOLD = Threshold(min_mean_cosine=0.93, min_cosine=0.80)
"""int8 against float (PyTorch dynamic, ONNX dynamic), set from measurements with margin.
Measured with the official EdgeFace-XXS weights on 165 real and pseudo-NIR/thermal faces at 112 px:
PyTorch dynamic int8 cosine mean 0.953 / min 0.914, ONNX dynamic 0.952 / 0.894 (the official ``_q``
file itself: 0.952 / 0.908).  Rounding the weights alone costs almost nothing (0.999): the loss
comes from quantizing the activations at run time, layer after layer.  Rank-1 and EER are
reported, not gated: on a small check set they move by whole probes (on those 5 identities
PyTorch int8 moved thermal rank-1 from 0.53 to 0.40); measure the change with intervals on a
large set (:func:`hfr_tutorial.metrics.bootstrap_intervals`, notebook 08) before choosing int8."""

INT8_STATIC_THRESHOLD = Threshold(min_mean_cosine=0.85, min_cosine=0.60)
"""Static QDQ int8 against float: activation ranges fixed by calibration, so faces unlike the
calibration set lose more (measured with the official XXS weights at 112 px, Conv/MatMul/Gemm
quantized, calibrated on another set of faces: cosine mean 0.89 / min 0.79; quantizing every
operator, LayerNorm and Softmax included, dropped it to 0.50).  Rank-1 and EER: as for
:data:`INT8_THRESHOLD`."""




def protocols_for(modalities: Sequence[str]) -> tuple[str, ...]:
    """The probe->vis protocols a set of modalities supports (VIS first); empty without VIS."""
    present = list(dict.fromkeys(np.asarray(modalities).tolist()))
    if "vis" not in present:
        return ()
    return tuple(f"{m}->vis" for m in ["vis"] + [m for m in present if m != "vis"])


@dataclass
class Agreement:
    """How closely a deployed form reproduces the float PyTorch model on a set of faces."""

    form: str
    n_faces: int
    cos_mean: float
    cos_min: float
    worst_face: int
    max_abs_diff: float
    threshold: Threshold
    metrics: pd.DataFrame | None = None  # one row per protocol
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line per fact, for printing."""
        t = self.threshold
        lines = [f"{self.form}: cosine to float PyTorch over {self.n_faces} faces: mean {self.cos_mean:.5f} "
                 f"(threshold {t.min_mean_cosine}), min {self.cos_min:.5f} (threshold {t.min_cosine}) -> "
                 f"{'PASS' if self.passed else 'FAIL'}"]
        if self.metrics is not None:
            for protocol, row in self.metrics.iterrows():
                lines.append(f"  {protocol:13s} rank-1 {row['rank1_float']:.3f} -> {row['rank1']:.3f} "
                             f"({row['d_rank1']:+.3f}), EER {row['eer_float']:.3f} -> {row['eer']:.3f} ({row['d_eer']:+.3f})")
        lines.extend(f"  FAIL: {f}" for f in self.failures)
        return "\n".join(lines)


def compare_embeddings(reference: np.ndarray, candidate: np.ndarray, *, form: str, threshold: Threshold,
                       identities: Any = None, modalities: Any = None,
                       protocols: Sequence[str] | None = None, raw_reference: np.ndarray | None = None,
                       raw_candidate: np.ndarray | None = None, strict: bool = True) -> Agreement:
    """Check a deployed form's embeddings against the float PyTorch model's, face by face.

    Args:
        reference, candidate: (N, D) embeddings of the same N faces (float PyTorch, the form).
        form: the form's name, used in messages.
        threshold: what must hold (:data:`FLOAT_THRESHOLD`, :data:`INT8_THRESHOLD` ...).
        identities, modalities: labels of the faces; with them the rank-1 and EER of each
            protocol (``protocols``, default: every probe modality against VIS) are compared too.
        strict: raise :class:`DeploymentError` when a condition fails (else only record it).

    The error names the output (``embedding``), the mean and smallest cosine, the face where they
    disagree most, and each protocol whose rank-1 or EER moved more than allowed.
    """
    ref, cand = np.asarray(reference, dtype=np.float32), np.asarray(candidate, dtype=np.float32)
    if ref.shape != cand.shape or ref.ndim != 2:
        raise DeploymentError(f"{form}: output {OUTPUT_NAME!r} has shape {cand.shape}, the float PyTorch model gives "
                              f"{ref.shape}: the model takes or returns something else (input size? variant?).")
    cos = np.sum(l2_normalize(ref) * l2_normalize(cand), axis=1)
    worst = int(np.argmin(cos))
    diff = float(np.max(np.abs((raw_candidate if raw_candidate is not None else cand)
                               - (raw_reference if raw_reference is not None else ref))))
    failures = []
    where = ""
    if identities is not None and modalities is not None:
        where = f" (identity {np.asarray(identities)[worst]}, {np.asarray(modalities)[worst]})"
    if cos.mean() < threshold.min_mean_cosine:
        failures.append(f"output {OUTPUT_NAME!r}: mean cosine {cos.mean():.5f} < {threshold.min_mean_cosine}")
    if cos.min() < threshold.min_cosine:
        failures.append(f"output {OUTPUT_NAME!r}: cosine {cos.min():.5f} < {threshold.min_cosine} at face {worst}{where}")
    table = None
    if identities is not None and modalities is not None:
        protocols = tuple(protocols) if protocols is not None else protocols_for(modalities)
        if protocols:
            before = evaluate_protocols(ref, identities, modalities, protocols)
            after = evaluate_protocols(cand, identities, modalities, protocols)
            rows = {}
            for p in protocols:
                rows[p] = {"rank1_float": before[p]["rank1"], "rank1": after[p]["rank1"],
                           "d_rank1": after[p]["rank1"] - before[p]["rank1"], "eer_float": before[p]["eer"],
                           "eer": after[p]["eer"], "d_eer": after[p]["eer"] - before[p]["eer"]}
                if threshold.max_rank1_drop is not None and -rows[p]["d_rank1"] > threshold.max_rank1_drop + 1e-12:
                    failures.append(f"{p}: rank-1 {rows[p]['rank1_float']:.3f} -> {rows[p]['rank1']:.3f} drops by "
                                    f"{-rows[p]['d_rank1']:.3f} > {threshold.max_rank1_drop}")
                if threshold.max_eer_rise is not None and rows[p]["d_eer"] > threshold.max_eer_rise + 1e-12:
                    failures.append(f"{p}: EER {rows[p]['eer_float']:.3f} -> {rows[p]['eer']:.3f} rises by "
                                    f"{rows[p]['d_eer']:.3f} > {threshold.max_eer_rise}")
            table = pd.DataFrame(rows).T
            table.index.name = "protocol"
    result = Agreement(form, len(ref), float(cos.mean()), float(cos.min()), worst, diff, threshold, table, failures)
    if strict and failures:
        raise DeploymentError(
            f"{form} disagrees with the float PyTorch model on {len(ref)} faces: " + "; ".join(failures)
            + f" (largest element difference {diff:.4g}). Fix: for a float export, re-export and check that the "
            "same weights and input size were used; for int8, calibrate on faces like the device's, keep the "
            "sensitive layers float, or accept a looser, measured threshold.")
    return result


def check_form(form: Form, reference: Form, images: np.ndarray, *, threshold: Threshold, identities: Any = None,
               modalities: Any = None, protocols: Sequence[str] | None = None, strict: bool = True,
               batch_size: int = 64) -> Agreement:
    """Embed ``images`` with the reference (float PyTorch) and the form, then :func:`compare_embeddings`."""
    return compare_embeddings(embed_form(reference, images, batch_size=batch_size),
                              embed_form(form, images, batch_size=batch_size), form=form.name,
                              threshold=threshold, identities=identities, modalities=modalities,
                              protocols=protocols, strict=strict)
