"""Checks of the deployment exercises (notebook 08): ONNX embeddings and their agreement by hand, int8 sizes.

* :func:`check_onnx_embed_function`: the student's ``onnx_embeddings(path, faces)`` (a plain
  onnxruntime session) gives the library's embeddings of *any* ONNX file, here a hidden int8 one, on
  hidden faces; ``hfr_tutorial.deploy``'s helpers are recorded while it runs.
* :func:`check_min_cosine_function`: ``smallest_cosine(a, b)`` on hidden pairs of embedding arrays,
  so that ``1.0`` (what float ONNX and PyTorch give on the notebook's faces) is not an answer.
* :func:`check_int8_size_function`: ``predict_int8_bytes(model)`` on hidden models, against the
  exercise's rule (a Linear weight takes 1 byte, every other value 4), without quantizing or saving.
* :func:`check_calibrated_agreement`: a mean cosine the student measured is the one their
  VIS-calibrated file gives, recomputed from the file, and the file is not the section-3 model.

Taught in: ``notebooks/08_edge_deployment.ipynb`` (exercises 1-3).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .guard import Case, Comparison, check_function
from .feedback import as_array, as_scalar, direction_hint, fmt, verdict

ONNX_MIN_COSINE = 0.9999
"""Smallest row cosine between the student's and the library's embeddings of one ONNX file (same runtime)."""


def _deploy_helpers() -> dict[str, Any]:
    from hfr_tutorial import deploy

    names = ("embed_form", "onnx_form", "onnx_session", "load_onnx", "faces_to_input", "check_form",
             "compare_embeddings", "torch_form", "benchmark_forms")
    return {f"deploy.{name}": getattr(deploy, name) for name in names}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _onnx_reference(path: str | os.PathLike, faces: np.ndarray) -> np.ndarray:
    """The library's embeddings of ``faces`` by the ONNX file at ``path`` (a file without checksum is accepted)."""
    from hfr_tutorial.deploy import faces_to_input, onnx_session

    session = onnx_session(path, threads=1, require_integrity=False)
    name = session.get_inputs()[0].name
    return _unit(session.run(None, {name: faces_to_input(faces)})[0].astype(np.float64))


def _compare_onnx(result: Any, ref: np.ndarray, path: Path, faces: np.ndarray) -> Comparison:
    try:
        out = as_array(result)
    except (TypeError, ValueError):
        return Comparison(False, f"it returned a {type(result).__name__}, not an array of embeddings")
    if out.shape != ref.shape:
        hint = "one row per face (the session's first output)"
        if out.ndim == 3 and out.shape[1:] == ref.shape:
            hint = "session.run returns a list of outputs: take the first, [0]"
        return Comparison(False, f"it returned shape {out.shape} for {len(faces)} faces", hint)
    cos = np.sum(_unit(out) * ref, axis=1)
    if cos.min() >= ONNX_MIN_COSINE:
        return Comparison(True)
    hint = ("the input must be images_to_tensor(faces).numpy() (pixels in [-1, 1], channels first, float32), and "
            "the session must be built from the `path` argument")
    from hfr_tutorial.deploy import onnx_session

    session = onnx_session(path, threads=1, require_integrity=False)
    x01 = np.ascontiguousarray(np.asarray(faces, np.float32).transpose(0, 3, 1, 2) / 255)
    if np.sum(_unit(session.run(None, {session.get_inputs()[0].name: x01})[0]) * _unit(out), axis=1).min() >= 0.9999:
        hint = "those are the outputs for pixels in [0, 1]: EdgeFace takes (x - 0.5) / 0.5, i.e. images_to_tensor"
    return Comparison(False, f"these are not the outputs of the ONNX file it was given (smallest row cosine "
                             f"{cos.min():.4f})", hint)


def check_onnx_embed_function(fn: Any, path: str | os.PathLike, faces: Any, *,
                              hidden_path: str | os.PathLike | None = None, hidden_faces: Any = None) -> bool:
    """``fn(path, faces)`` returns the embeddings onnxruntime gives for ``faces`` with the ONNX file ``path``.

    Checked (by row cosine, at least :data:`ONNX_MIN_COSINE`) on ``path`` with ``faces`` (what the
    notebook shows) and on ``hidden_path`` (another file, e.g. the static int8 model) with faces drawn
    from ``hidden_faces`` (default: ``faces``), 24 in reverse order and a single one.
    ``hfr_tutorial.deploy``'s helpers are recorded while ``fn`` runs.
    """
    faces = np.asarray(faces)
    pool = faces if hidden_faces is None or len(hidden_faces) == 0 else np.asarray(hidden_faces)
    for what, arr in (("faces", faces), ("hidden_faces", pool)):
        if arr.dtype != np.uint8 or arr.ndim != 4:
            raise ValueError(f"check_onnx_embed_function: {what} must be uint8 (N, S, S, 3), got {arr.dtype} "
                             f"{arr.shape}.")
    rng = np.random.default_rng(29)
    other = Path(hidden_path) if hidden_path is not None else Path(path)
    pick = np.sort(rng.choice(len(pool), size=min(24, len(pool)), replace=False))
    cases = [Case(f"the shown file with the {len(faces)} shown faces", (Path(path), faces), hidden=False),
             Case(f"a hidden ONNX file with {len(pick)} hidden faces", (other, pool[pick][::-1].copy())),
             Case("a hidden ONNX file with one face", (other, pool[pick[:1]].copy()))]
    return check_function(fn, cases, what="your ONNX embedding function",
                          reference=lambda c: _onnx_reference(*c.args),
                          compare=lambda result, ref, c, args: _compare_onnx(result, ref, *c.args),
                          forbidden={**_deploy_helpers(), "_onnx_reference": _onnx_reference},
                          signature="onnx_embeddings(path, faces)",
                          forbidden_hint="ort.InferenceSession(str(path), providers=['CPUExecutionProvider']) and "
                                         "session.run on images_to_tensor(faces).numpy()")


def _cosine_slips(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = np.sum(_unit(a) * _unit(b), axis=1)
    return {"that is the mean cosine; the exercise asks for the smallest": float(cos.mean()),
            "that is the largest cosine; the exercise asks for the smallest": float(cos.max()),
            "the rows are not normalised: divide each by its norm before the dot product":
                float(np.sum(a * b, axis=1).min()),
            "that compares every row with every other row: compare row i of one with row i of the other":
                float((_unit(a) @ _unit(b).T).min()),
            "that is a distance (1 - cos); the exercise asks for the cosine": float((1 - cos).min())}


def check_min_cosine_function(fn: Any) -> bool:
    """``fn(a, b)`` returns the smallest row cosine between two (N, D) embedding arrays, on hidden arrays.

    The arrays have rows of very different norms and cosines well below 1, so a constant (such as the
    1.0 that float ONNX and PyTorch give) fails.  ``deploy.compare_embeddings`` is recorded.
    """
    rng = np.random.default_rng(31)
    cases = []
    for n, d, noise in ((40, 16, 0.3), (7, 512, 0.05), (1, 8, 1.0)):
        a = rng.normal(size=(n, d)) * rng.uniform(0.2, 5, (n, 1))
        b = (a + noise * rng.normal(size=(n, d)) * np.linalg.norm(a, axis=1, keepdims=True) / np.sqrt(d))
        b *= rng.uniform(0.2, 5, (n, 1))
        cases.append(Case(f"hidden embeddings ({n} rows, {d}-d)", (a.astype(np.float32), b.astype(np.float32))))

    def compare(result: Any, ref: float, case: Case, args: tuple) -> Comparison:
        v, why = as_scalar(result)
        if v is None:
            return Comparison(False, why)
        if abs(v - ref) <= 1e-5:
            return Comparison(True)
        for hint, value in _cosine_slips(*case.args).items():
            if abs(v - value) <= 1e-5 and abs(value - ref) > 1e-5:
                return Comparison(False, f"it returned {fmt(v)}", hint)
        return Comparison(False, f"it returned {fmt(v)}", direction_hint(v, ref))

    return check_function(fn, cases, what="your smallest-cosine function",
                          reference=lambda c: float(np.min(np.sum(_unit(c.args[0].astype(np.float64))
                                                                  * _unit(c.args[1].astype(np.float64)), axis=1))),
                          compare=compare, forbidden=_deploy_helpers(), signature="smallest_cosine(a, b)",
                          forbidden_hint="normalise the rows of both, multiply row by row, sum over the columns, min")


def int8_dynamic_bytes(model: nn.Module) -> int:
    """The exercise's prediction of a dynamically quantized model's size: Linear weights 1 byte, the rest 4.

    Every value of ``model.state_dict()`` counts 4 bytes except the weights of ``nn.Linear`` layers,
    which count 1 (the file's bookkeeping, names and scales, is left out).
    """
    linear = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    total = sum(t.numel() for t in model.state_dict(keep_vars=True).values())
    one_byte = sum(p.numel() for p in model.parameters() if id(p) in linear)
    return int(one_byte + 4 * (total - one_byte))


def _hidden_size_models() -> list[tuple[str, nn.Module]]:
    torch.manual_seed(0)
    return [("a hidden model of Linear layers only (weights and biases)",
             nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 32), nn.Linear(32, 200))),
            ("a hidden model with no Linear layer", nn.Sequential(nn.Conv2d(3, 32, 3), nn.GroupNorm(4, 32),
                                                                   nn.Conv2d(32, 8, 1))),
            ("a hidden model of convolutions, LayerNorms and Linear layers",
             nn.Sequential(nn.Conv2d(3, 16, 3), nn.Flatten(), nn.LayerNorm(400), nn.Linear(400, 64, bias=False),
                           nn.Linear(64, 512)))]


def check_int8_size_function(fn: Any, model: nn.Module | None = None) -> bool:
    """``fn(model)`` predicts the int8 (dynamic) size in bytes by the exercise's rule, on ``model`` and hidden models.

    The rule is :func:`int8_dynamic_bytes`; the answer must be within 0.1 %.  Quantizing or saving
    (``quantize_dynamic``, ``torch.save``, the deploy helpers) is recorded: the exercise is to predict.
    """
    from torch.ao.quantization import quantize_dynamic

    cases = [Case("the shown model", (model,), hidden=False)] if model is not None else []
    cases += [Case(label, (m,)) for label, m in _hidden_size_models()]
    forbidden = {**_deploy_helpers(), "torch.save": torch.save, "quantize_dynamic": quantize_dynamic,
                 "int8_dynamic_bytes": int8_dynamic_bytes}
    from hfr_tutorial import deploy

    forbidden.update({"deploy.quantize_torch_dynamic": deploy.quantize_torch_dynamic,
                      "deploy.torch_file_size": deploy.torch_file_size})

    def compare(result: Any, ref: int, case: Case, args: tuple) -> Comparison:
        v, why = as_scalar(result)
        if v is None:
            return Comparison(False, why)
        if abs(v - ref) <= 1e-3 * ref:
            return Comparison(True)
        m = case.args[0]
        everything = sum(t.numel() for t in m.state_dict().values())
        linear_all = sum(p.numel() for mod in m.modules() if isinstance(mod, nn.Linear) for p in mod.parameters())
        slips = {"no value quantized: the Linear weights take 1 byte each": 4 * everything,
                 "every value at 1 byte: only the Linear weights are quantized": everything,
                 "the Linear biases stay float32 (4 bytes); only their weights take 1 byte":
                     linear_all + 4 * (everything - linear_all),
                 "that is in bits: give bytes": 8 * ref, "that is in MB: give bytes": ref / 1e6}
        for hint, value in slips.items():
            if abs(v - value) <= 1e-3 * max(value, 1) and abs(value - ref) > 1e-3 * ref:
                return Comparison(False, f"it predicted {v:,.0f} bytes", hint)
        return Comparison(False, f"it predicted {v:,.0f} bytes", direction_hint(v, ref) +
                          "; count the values of model.state_dict(): Linear weights at 1 byte, all others at 4")

    return check_function(fn, cases, what="your int8 size prediction", reference=lambda c: int8_dynamic_bytes(c.args[0]),
                          compare=compare, forbidden=forbidden, signature="predict_int8_bytes(model)",
                          forbidden_hint="predict it from the counts of values: isinstance(m, nn.Linear) and "
                                         "t.numel() over model.state_dict()")


def _digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_calibrated_agreement(value: Any, path: str | os.PathLike, faces: Any, float_embeddings: Any, *,
                               not_path: str | os.PathLike | None = None, what: str = "mean cosine to float") -> bool:
    """``value`` is the mean row cosine between the embeddings of ``faces`` by the ONNX file ``path`` and float.

    The check recomputes it from the file (the library's embeddings) and ``float_embeddings`` (one
    row per face), within 1e-5.  With ``not_path`` (the model calibrated on all sensors) a ``path``
    holding the same bytes fails: the exercise builds a new model.
    """
    if not Path(path).is_file():
        return verdict(False, what, problem=f"{str(path)!r} is not a file",
                       hint="pass the path quantize_onnx_static returned for the VIS-calibrated model")
    if not_path is not None and _digest(path) == _digest(not_path):
        return verdict(False, what, problem="that file is the model of section 3 (calibrated on all sensors)",
                       hint="build a new one with quantize_onnx_static(..., calib_vis)")
    faces = np.asarray(faces)
    ref_float = as_array(float_embeddings)
    if len(ref_float) != len(faces):
        raise ValueError(f"check_calibrated_agreement: {len(ref_float)} float embeddings for {len(faces)} faces; pass "
                         "the float model's embeddings of the same faces.")
    reference = float(np.mean(np.sum(_onnx_reference(path, faces) * _unit(ref_float), axis=1)))
    v, why = as_scalar(value)
    if v is None:
        return verdict(False, what, problem=why)
    if abs(v - reference) <= 1e-5:
        return verdict(True, what, success=f"{v:.5f}, what the file gives on these faces")
    return verdict(False, what, problem=f"yours, {v:.5f}, is not what that file gives on these faces",
                   hint=direction_hint(v, reference) + "; the mean over the NIR and thermal faces of the row cosine "
                        "between the file's embeddings and the float model's")
