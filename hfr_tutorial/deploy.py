"""Edge deployment: export an EdgeFace to ONNX, quantize it to int8, check it, time it.

The method changes parameter *values*, never the architecture, so an adapted model deploys
exactly like the EdgeFace it came from.  This module takes any :class:`~hfr_tutorial.models.EdgeFace`
(any variant, any tuning policy: the embedded baseline or adapted model, or the official weights)
to the forms an edge device runs, and checks every form against the float PyTorch model before it
is shipped:

* **ONNX float** (:func:`export_onnx`): ``torch.onnx.export(..., dynamo=True)``, the exporter
  torch recommends (it needs ``onnxscript``), with a dynamic batch and the model's square input
  size; the file is checked with ``onnx.checker`` (full check), run once by onnxruntime, and
  stamped with a SHA-256 digest of its content, so a tampered or truncated file is refused
  (:func:`load_onnx`, :class:`DeploymentError`).
* **PyTorch int8** (:func:`quantize_torch_dynamic`): dynamic quantization of every ``nn.Linear``,
  the form of the official ``edgeface_*_q`` checkpoints.
* **ONNX int8** (:func:`quantize_onnx_dynamic`, :func:`quantize_onnx_static`): onnxruntime's
  dynamic quantization, and static QDQ quantization calibrated on a set of faces.
* **Agreement** (:func:`compare_embeddings`): cosine of the embeddings of the same faces under
  the float PyTorch model and the candidate (mean and minimum), and the change of each
  protocol's rank-1 and EER; a :class:`DeploymentError` names the output that disagrees, the
  face, and by how much.
* **Cost** (:func:`benchmark_forms`): size on disk, latency at batch 1 and throughput at batch 64
  on the CPU with a fixed number of threads, all forms measured interleaved in one run.

Two facts found while building this (torch 2.14, onnxscript 0.7, onnxruntime 1.31), kept here so
nobody has to find them again:

* EdgeNeXt (its conv encoders, the split-transpose attention with its cross-covariance softmax,
  the Fourier positional encoding, the LayerNorm head) exports with the dynamo exporter as it
  is, for every registered variant; no custom translation is needed.
* The dynamo exporter writes a ``value_info`` entry for every initializer.  onnxruntime's dynamic
  quantizer turns ``Gemm`` (the 512-d head) into ``MatMul`` by transposing the weight *in place*,
  then re-runs shape inference, which fails on the stale entry ("Inferred shape and existing shape
  differ in dimension 0: (168) vs (512)").  Initializers carry their own shapes, so
  :func:`export_onnx` drops those entries.  ``quant_pre_process``'s symbolic shape inference also
  fails on the exported graph (an ``Expand`` of the positional encoding), so it runs with
  ``skip_symbolic_shape=True`` (ONNX shape inference and the graph optimisations still run).

Taught in ``notebooks/08_edge_deployment.ipynb``.  Command line: ``hfr-tutorial export``.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import os
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .evaluate import DEFAULT_PROTOCOLS, evaluate_protocols, l2_normalize, score_protocols
from .models.edgeface import EMBEDDING_DIM, INPUT_SIZE, images_to_tensor

INPUT_NAME = "input"
OUTPUT_NAME = "embedding"
DIGEST_KEY = "hfr_tutorial.sha256"
"""Metadata key of the SHA-256 digest of the model's content (everything but this entry)."""
DEFAULT_THREADS = 2


class DeploymentError(ValueError):
    """An exported or quantized model that cannot be trusted: unreadable, modified, or disagreeing.

    A ``ValueError``, so the command line reports it as an error message (exit code 2).
    """


def require_deploy_packages() -> None:
    """Fail early, naming the fix, when onnx, onnxruntime or onnxscript is not installed."""
    import importlib.util

    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"Edge deployment needs {', '.join(missing)}, which is not installed: "
                          "pip install -c constraints.txt -e '.[deploy]' (the dev extra includes it).")


# ------------------------------------------------------------------------------------------------
# Thresholds of the agreement check
# ------------------------------------------------------------------------------------------------
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
large set (:func:`bootstrap_intervals`, notebook 08) before choosing int8."""

INT8_STATIC_THRESHOLD = Threshold(min_mean_cosine=0.85, min_cosine=0.60)
"""Static QDQ int8 against float: activation ranges fixed by calibration, so faces unlike the
calibration set lose more (measured with the official XXS weights at 112 px, Conv/MatMul/Gemm
quantized, calibrated on another set of faces: cosine mean 0.89 / min 0.79; quantizing every
operator, LayerNorm and Softmax included, dropped it to 0.50).  Rank-1 and EER: as for
:data:`INT8_THRESHOLD`."""


# ------------------------------------------------------------------------------------------------
# Files: digest, loading, checking
# ------------------------------------------------------------------------------------------------
def _content_digest(model: "onnx.ModelProto") -> str:  # noqa: F821
    """SHA-256 of the model's serialized content without its digest entry."""
    import onnx

    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    keep = [p for p in clone.metadata_props if p.key != DIGEST_KEY]
    del clone.metadata_props[:]
    clone.metadata_props.extend(keep)
    return hashlib.sha256(clone.SerializeToString(deterministic=True)).hexdigest()


def _set_metadata(model: "onnx.ModelProto", values: Mapping[str, str]) -> None:  # noqa: F821
    props = {p.key: p.value for p in model.metadata_props}
    props.update({k: str(v) for k, v in values.items()})
    props.pop(DIGEST_KEY, None)
    del model.metadata_props[:]
    for key in sorted(props):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, props[key]


def _stamp_and_save(model: "onnx.ModelProto", path: Path, metadata: Mapping[str, str]) -> None:  # noqa: F821
    """Write metadata and the content digest, then save atomically (no half-written file on disk)."""
    import onnx

    _set_metadata(model, metadata)
    digest = _content_digest(model)
    entry = model.metadata_props.add()
    entry.key, entry.value = DIGEST_KEY, digest
    tmp = path.with_name(path.name + ".tmp")
    onnx.save_model(model, str(tmp))
    tmp.replace(path)


def onnx_metadata(model: "onnx.ModelProto") -> dict[str, str]:  # noqa: F821
    """The model's metadata entries (variant, image size, form, exporter, digest ...)."""
    return {p.key: p.value for p in model.metadata_props}


def load_onnx(path: str | os.PathLike, *, require_digest: bool = True) -> "onnx.ModelProto":  # noqa: F821
    """Read an ONNX file and refuse it, with a :class:`DeploymentError`, unless it is intact.

    Checks, in order: the file exists and is not empty; it parses as an ONNX model (a truncated or
    corrupted file does not); ``onnx.checker.check_model(full_check=True)`` passes; and the
    SHA-256 digest written by :func:`export_onnx` matches the content, so a single flipped byte in
    a weight, which parses and runs, is refused as well.  ``require_digest=False`` accepts a file
    written by another tool (it has no digest) after the other checks.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    redo = "Re-export it (hfr-tutorial export, or hfr_tutorial.deploy.export_onnx) and copy it again."
    if not path.is_file():
        raise DeploymentError(f"ONNX model {str(path)!r} does not exist. {redo}")
    data = path.read_bytes()
    if not data:
        raise DeploymentError(f"ONNX model {str(path)!r} is empty (0 bytes): the copy or the export was interrupted. {redo}")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise DeploymentError(f"{str(path)!r} ({len(data):,} bytes) is not a readable ONNX model: it is truncated or "
                              f"corrupted ({type(exc).__name__}: {exc}). {redo}") from exc
    if not model.graph.node:
        raise DeploymentError(f"{str(path)!r} ({len(data):,} bytes) parses but holds no graph: it is truncated or not "
                              f"an ONNX model. {redo}")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError
        raise DeploymentError(f"{str(path)!r} fails onnx.checker ({type(exc).__name__}: {str(exc).splitlines()[0]}): "
                              f"the file is damaged or was edited. {redo}") from exc
    recorded = onnx_metadata(model).get(DIGEST_KEY)
    if recorded is None:
        if require_digest:
            raise DeploymentError(f"{str(path)!r} carries no {DIGEST_KEY} digest: it was not written by "
                                  "hfr_tutorial.deploy, or it was cut short (the digest is stored last). "
                                  f"{redo} To accept a file from another tool, pass require_digest=False.")
    else:
        actual = _content_digest(model)
        if actual != recorded:
            raise DeploymentError(f"{str(path)!r} was modified after export: the SHA-256 of its content is "
                                  f"{actual[:16]}..., the digest recorded at export is {recorded[:16]}... "
                                  f"(a weight or the graph changed). Do not deploy it. {redo}")
    return model


def file_size(path: str | os.PathLike) -> int:
    """Size of a file on disk in bytes."""
    return Path(path).stat().st_size


def torch_file_size(model: nn.Module, path: str | os.PathLike | None = None) -> int:
    """Bytes of ``torch.save(model.state_dict())``, written to ``path`` when given (else measured in memory)."""
    if path is not None:
        torch.save(model.state_dict(), path)
        return file_size(path)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


# ------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------
@dataclass
class ExportInfo:
    """What :func:`export_onnx` wrote: the file, its size, the input it takes, how long it took."""

    path: Path
    size_bytes: int
    image_size: int
    opset: int
    exporter: str
    seconds: float
    metadata: dict[str, str] = field(default_factory=dict)


def _drop_initializer_value_info(model: "onnx.ModelProto") -> int:  # noqa: F821
    """Remove ``value_info`` entries that name initializers (see the module docstring); returns how many."""
    names = {init.name for init in model.graph.initializer}
    keep = [v for v in model.graph.value_info if v.name not in names]
    dropped = len(model.graph.value_info) - len(keep)
    del model.graph.value_info[:]
    model.graph.value_info.extend(keep)
    return dropped


def _example_input(image_size: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, image_size, image_size, generator=generator)


def _check_image_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 32:
        raise ValueError(f"image_size={image_size!r} is invalid: give the square input side in pixels, at least 32 "
                         "(EdgeNeXt downsamples by 32): 112 for the official weights, the preset's image size for the "
                         "embedded models (64 on fast).")
    return int(image_size)


def export_onnx(model: nn.Module, path: str | os.PathLike, *, image_size: int = INPUT_SIZE,
                opset: int | None = None, metadata: Mapping[str, str] | None = None) -> ExportInfo:
    """Export an EdgeFace to ONNX with a dynamic batch, check it and stamp its digest.

    Args:
        model: an EdgeFace (any variant or policy) or any module mapping (B, 3, S, S) normalised
            faces to (B, D) embeddings.  It is copied to the CPU in eval mode; the caller's
            model is not touched.
        path: the ``.onnx`` file to write (its folder is created).
        image_size: the square input side ``S`` (112 for the official weights; the embedded
            models use their preset's size, 64 on ``fast``).  At least 32.
        opset: ONNX opset (default: the exporter's, 20 with torch 2.14).
        metadata: extra ``metadata_props`` entries.

    The exporter is ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` then onnxscript's
    translation and graph optimisation).  After writing, the file is read back through
    :func:`load_onnx` and run by onnxruntime at batch 1 and 3 on random input: outputs must match
    PyTorch's (cosine >= 0.9999) and have the batch's length, else :class:`DeploymentError`.
    The full agreement check on faces is :func:`compare_embeddings`.
    """
    require_deploy_packages()
    import onnx

    image_size = _check_image_size(image_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).cpu().eval()
    example = _example_input(image_size, batch=2)  # batch 2: a batch of 1 would be specialised away
    start = time.perf_counter()
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(net, (example,), dynamo=True, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], dynamic_shapes={"x": {0: batch}},
                                        opset_version=opset, optimize=True, verbose=False)
    except Exception as exc:
        raise DeploymentError(
            f"torch.onnx.export(dynamo=True) failed on {type(model).__name__} "
            f"({getattr(model, 'variant', 'unknown variant')}) at {image_size}px: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Check that onnxscript is installed "
            "(pip install -e '.[deploy]') and that the model runs on a (2, 3, S, S) tensor.") from exc
    seconds = time.perf_counter() - start
    proto = program.model_proto
    _drop_initializer_value_info(proto)
    exporter = f"torch.onnx.export(dynamo=True), torch {torch.__version__}"
    meta = {"hfr_tutorial.form": "float32", "hfr_tutorial.image_size": str(image_size),
            "hfr_tutorial.variant": str(getattr(model, "variant", "")), "hfr_tutorial.exporter": exporter,
            "hfr_tutorial.input": "RGB (B, 3, S, S): ToTensor, then (x - 0.5) / 0.5",
            "hfr_tutorial.output": f"({OUTPUT_NAME}) (B, {EMBEDDING_DIM}) unnormalised; compare with cosine"}
    meta.update(metadata or {})
    _stamp_and_save(proto, path, meta)
    checked = load_onnx(path)
    session = onnx_session(path, threads=DEFAULT_THREADS)
    for n in (1, 3):
        x = _example_input(image_size, batch=n, seed=n)
        with torch.inference_mode():
            want = net(x).numpy()
        got = session.run(None, {INPUT_NAME: x.numpy()})[0]
        if got.shape != want.shape:
            raise DeploymentError(f"{str(path)!r}: output {OUTPUT_NAME!r} has shape {got.shape} at batch {n}, "
                                  f"PyTorch gives {want.shape}: the batch dimension is not dynamic.")
        cos = np.sum(l2_normalize(got) * l2_normalize(want), axis=1)
        if cos.min() < 0.9999:
            raise DeploymentError(f"{str(path)!r}: output {OUTPUT_NAME!r} disagrees with PyTorch on random input at "
                                  f"batch {n}: cosine {cos.min():.6f} < 0.9999. The export is wrong; do not ship it.")
    opset_used = next((o.version for o in checked.opset_import if o.domain in ("", "ai.onnx")), -1)
    return ExportInfo(path, file_size(path), image_size, int(opset_used), exporter, seconds, onnx_metadata(checked))


def onnx_input_size(model_or_path: Any) -> int:
    """The square input side of an exported model (from its graph input)."""
    import onnx

    model = model_or_path if isinstance(model_or_path, onnx.ModelProto) else load_onnx(model_or_path,
                                                                                        require_digest=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value)


# ------------------------------------------------------------------------------------------------
# Running: onnxruntime sessions and "forms"
# ------------------------------------------------------------------------------------------------
def onnx_session(path: str | os.PathLike, *, threads: int = DEFAULT_THREADS, require_digest: bool = True) -> Any:
    """An onnxruntime CPU session for a checked file (:func:`load_onnx`), with ``threads`` intra-op threads.

    The session is built from the bytes that were checked, not by re-reading the file.  Spinning
    of idle worker threads is switched off: on a shared machine a spinning thread steals the
    CPU from whatever runs next (including the PyTorch form measured beside it).
    """
    import onnxruntime as ort

    model = load_onnx(path, require_digest=require_digest)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


@dataclass
class Form:
    """One deployable form of a model: how to run it and what it weighs on disk.

    ``run`` maps a float32 batch (B, 3, S, S) of normalised faces to raw (B, D) embeddings.
    """

    name: str
    run: Callable[[np.ndarray], np.ndarray]
    size_bytes: int
    image_size: int
    path: Path | None = None
    kind: str = "torch"  # "torch" or "onnx"


def torch_form(model: nn.Module, name: str, *, image_size: int, path: str | os.PathLike | None = None) -> Form:
    """A PyTorch model as a :class:`Form` (CPU, eval, inference mode); its size is that of its state dict."""
    net = model.cpu().eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return Form(name, run, torch_file_size(net, path), _check_image_size(image_size),
                Path(path) if path is not None else None, "torch")


def onnx_form(path: str | os.PathLike, name: str, *, threads: int = DEFAULT_THREADS) -> Form:
    """An ONNX file as a :class:`Form`, run by onnxruntime with ``threads`` threads (after :func:`load_onnx`)."""
    session = onnx_session(path, threads=threads)
    input_name = session.get_inputs()[0].name
    image_size = int(session.get_inputs()[0].shape[2])

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return Form(name, run, file_size(path), image_size, Path(path), "onnx")


def faces_to_input(images: np.ndarray, image_size: int | None = None) -> np.ndarray:
    """uint8 faces (N, H, W, 3) -> the models' float32 input (N, 3, H, W) (``images_to_tensor``)."""
    images = np.asarray(images)
    if image_size is not None and images.shape[1:3] != (image_size, image_size):
        raise DeploymentError(f"the model takes {image_size}x{image_size} faces, got {images.shape[1]}x{images.shape[2]}: "
                              f"resize the faces, or export with image_size={images.shape[1]}.")
    return images_to_tensor(images).numpy()


def embed_form(form: Form, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """L2-normalised (N, D) embeddings of uint8 faces (N, S, S, 3) under one form, batch by batch."""
    if len(images) == 0:
        raise ValueError("embed_form got no faces.")
    out = [form.run(faces_to_input(images[i:i + batch_size], form.image_size))
           for i in range(0, len(images), batch_size)]
    emb = np.concatenate(out).astype(np.float32)
    if not np.isfinite(emb).all():
        raise DeploymentError(f"{form.name}: output {OUTPUT_NAME!r} holds NaN or infinite values.")
    return l2_normalize(emb)


# ------------------------------------------------------------------------------------------------
# Quantization
# ------------------------------------------------------------------------------------------------
def quantize_torch_dynamic(model: nn.Module) -> nn.Module:
    """int8 dynamic quantization of every ``nn.Linear``: the form of the official ``_q`` checkpoints.

    ``torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)`` on a CPU
    copy: weights stored as int8 (one scale per tensor), activations quantized on the fly at each
    call; convolutions and norms stay float.  torch marks ``torch.ao.quantization`` as deprecated
    (its successor is ``torchao``); its deprecation warnings are silenced here because this exact
    call is what produced the official files.
    """
    net = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)
    return quantized.eval()


def _prepared_copy(src: Path, workdir: Path) -> Path:
    """A copy of ``src`` made ready for onnxruntime's quantizer (``quant_pre_process``)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = load_onnx(src)
    _drop_initializer_value_info(model)
    clean = workdir / "clean.onnx"
    import onnx

    onnx.save_model(model, str(clean))
    prepared = workdir / "prepared.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(clean), str(prepared), skip_symbolic_shape=True)
    return prepared


@contextlib.contextmanager
def _quiet_ort_logging() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns through the root logger ("consider pre-processing" ...)
    try:
        yield
    finally:
        root.setLevel(level)


def _finish_quantized(tmp: Path, dst: Path, source: "onnx.ModelProto", form: str) -> Path:  # noqa: F821
    import onnx

    model = onnx.load_model(str(tmp))
    meta = {k: v for k, v in onnx_metadata(source).items() if k != DIGEST_KEY}
    meta["hfr_tutorial.form"] = form
    _stamp_and_save(model, dst, meta)
    load_onnx(dst)
    return dst


def quantize_onnx_dynamic(src: str | os.PathLike, dst: str | os.PathLike, *, per_channel: bool = False) -> Path:
    """onnxruntime dynamic int8 quantization of an exported model (weights int8, activations at run time).

    Quantizes what onnxruntime's dynamic mode supports here: ``Conv`` (as ConvInteger), ``MatMul``
    and the head's ``Gemm``; LayerNorm, GELU and Softmax stay float.  The result is checked
    (:func:`load_onnx`) and stamped like an export.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    source = load_onnx(src)
    with tempfile.TemporaryDirectory(prefix="hfr-quant-") as tmp, _quiet_ort_logging():
        prepared = _prepared_copy(src, Path(tmp))
        out = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8, per_channel=per_channel)
        return _finish_quantized(out, dst, source, "int8 dynamic (onnxruntime)")


class _FaceReader:
    """onnxruntime's CalibrationDataReader over uint8 faces, in batches."""

    def __init__(self, images: np.ndarray, image_size: int, batch_size: int):
        self._batches = [faces_to_input(images[i:i + batch_size], image_size)
                         for i in range(0, len(images), batch_size)]
        self._index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._index >= len(self._batches):
            return None
        self._index += 1
        return {INPUT_NAME: self._batches[self._index - 1]}

    def rewind(self) -> None:
        self._index = 0


STATIC_OP_TYPES: tuple[str, ...] = ("Conv", "MatMul", "Gemm")
"""Operators static QDQ quantizes by default: the convolutions and matrix products, where the
arithmetic is.  Quantizing every operator (LayerNorm, Softmax, GELU, Add ...) lost most of the
agreement in our measurements (see :data:`INT8_STATIC_THRESHOLD`)."""


def quantize_onnx_static(src: str | os.PathLike, dst: str | os.PathLike, calibration_faces: np.ndarray, *,
                         op_types: Sequence[str] = STATIC_OP_TYPES, per_channel: bool = True,
                         batch_size: int = 16) -> Path:
    """onnxruntime static int8 quantization in QDQ format, calibrated on uint8 faces (N, S, S, 3).

    The activation ranges are measured once on ``calibration_faces`` (min/max) and fixed in the
    file as QuantizeLinear/DequantizeLinear pairs (int8 activations and weights, weights per output
    channel), which onnxruntime fuses into integer kernels.  Calibrate on faces like the ones the
    device will see (every modality it will see), never on the faces used to check agreement.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    src, dst = Path(src), Path(dst)
    source = load_onnx(src)
    faces = np.asarray(calibration_faces)
    if faces.ndim != 4 or len(faces) < 1 or faces.dtype != np.uint8:
        raise ValueError(f"calibration_faces must be uint8 faces (N, S, S, 3) with N >= 1, got {faces.dtype} "
                         f"{faces.shape}: pass e.g. faceset.select(split='train').images[:64].")
    reader = _FaceReader(faces, onnx_input_size(source), batch_size)
    with tempfile.TemporaryDirectory(prefix="hfr-quant-") as tmp, _quiet_ort_logging():
        prepared = _prepared_copy(src, Path(tmp))
        out = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(out), reader, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
                        op_types_to_quantize=list(op_types), calibrate_method=CalibrationMethod.MinMax)
        return _finish_quantized(out, dst, source, f"int8 static QDQ (onnxruntime, calibrated on {len(faces)} faces)")


def operator_summary(model_or_path: Any) -> dict[str, Any]:
    """What an ONNX graph computes with: node op_type counts and initializer shapes (sorted).

    Two files with equal summaries run the same operators on tensors of the same shapes, so
    they cost the same to run: only the values of the initializers can differ.
    """
    import onnx
    from collections import Counter

    model = model_or_path if isinstance(model_or_path, onnx.ModelProto) else load_onnx(model_or_path)
    return {"op_types": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
            "initializer_shapes": sorted((i.name, tuple(int(d) for d in i.dims)) for i in model.graph.initializer),
            "inputs": [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                       for i in model.graph.input],
            "outputs": [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
                        for o in model.graph.output]}


# ------------------------------------------------------------------------------------------------
# Agreement
# ------------------------------------------------------------------------------------------------
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
    metrics: "pandas.DataFrame | None" = None  # noqa: F821  one row per protocol
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
    import pandas as pd

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


# ------------------------------------------------------------------------------------------------
# Bootstrap intervals over identities
# ------------------------------------------------------------------------------------------------
# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run PyTorch with ``n`` intra-op threads inside the block, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def machine_description(threads: int = DEFAULT_THREADS) -> dict[str, Any]:
    """CPU model, cores, the threads used and the library versions: what a timing depends on."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "threads": int(threads), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "quantized_engine": torch.backends.quantized.engine}


def benchmark_forms(forms: Sequence[Form], *, batches: Sequence[int] = (1, 64), repeats: Mapping[int, int] | int = 30,
                    warmup: int = 3, threads: int = DEFAULT_THREADS, seed: int = 0) -> "pandas.DataFrame":  # noqa: F821
    """Latency of each form at each batch size, all forms measured interleaved in one run.

    For each batch size, every form is warmed up, then the forms take turns, one call each, for
    ``repeats`` rounds (the order rotates each round), so a slow spell of the machine hits all forms
    alike.  PyTorch runs with ``threads`` threads (restored afterwards); build the ONNX forms with
    the same number (:func:`onnx_form`).  Input: random normalised faces of each form's size.

    Returns one row per (form, batch): ``median_ms``, ``p25_ms``, ``p75_ms``, ``images_per_s``
    (batch / median), ``repeats`` and ``size_mb`` (on disk).
    """
    import pandas as pd

    if not forms:
        raise ValueError("benchmark_forms got no forms.")
    rng = np.random.default_rng(seed)
    rows = []
    with torch_threads(threads):
        for batch in batches:
            n_rep = repeats[batch] if isinstance(repeats, Mapping) else int(repeats)
            inputs = {f.image_size: rng.standard_normal((batch, 3, f.image_size, f.image_size)).astype(np.float32)
                      for f in forms}
            for form in forms:
                for _ in range(warmup):
                    form.run(inputs[form.image_size])
            times: dict[str, list[float]] = {f.name: [] for f in forms}
            for r in range(n_rep):
                for j in range(len(forms)):
                    form = forms[(r + j) % len(forms)]
                    start = time.perf_counter()
                    form.run(inputs[form.image_size])
                    times[form.name].append(time.perf_counter() - start)
            for form in forms:
                t = np.asarray(times[form.name]) * 1e3
                median = float(np.median(t))
                rows.append({"form": form.name, "batch": batch, "median_ms": median,
                             "p25_ms": float(np.percentile(t, 25)), "p75_ms": float(np.percentile(t, 75)),
                             "images_per_s": batch / (median / 1e3), "repeats": n_rep,
                             "size_mb": form.size_bytes / 1e6})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Faces for the checks when the user brings none
# ------------------------------------------------------------------------------------------------
def synthetic_faces(image_size: int, *, identities: Sequence[int] = range(20_000, 20_040), per_modality: int = 2,
                    modalities: Sequence[str] = ("vis", "nir", "thermal"),
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embedded synthetic faces (images, identities, modalities) at ``image_size``, for checks and calibration.

    Identities 20,000 and up are beyond every preset's identities; pass another range (e.g.
    ``range(30_000, 30_032)``) for a calibration set disjoint from the agreement set.
    """
    from .data.synthetic import synthetic_identity_images

    images, ids, mods = [], [], []
    for identity in identities:
        faces = synthetic_identity_images(int(identity), n=per_modality, modalities=modalities, size=image_size,
                                          seed=seed)
        for modality in modalities:
            images.append(faces[modality])
            ids += [int(identity)] * len(faces[modality])
            mods += [modality] * len(faces[modality])
    return np.concatenate(images), np.asarray(ids), np.asarray(mods)


def layout_faces(root: str | os.PathLike, image_size: int, *, max_faces: int = 512,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces of a standard layout (images, identities, modalities), resized to ``image_size``, at most ``max_faces``.

    Draws evenly over the layout (a seeded random subset when it holds more than ``max_faces``).
    """
    from PIL import Image

    from .data import FaceSet

    faceset = FaceSet.from_layout(root)
    n = len(faceset)
    if n == 0:
        raise ValueError(f"The layout {str(root)!r} holds no faces; give a layout with images (see data_scripts/).")
    index = np.arange(n) if n <= max_faces else np.sort(np.random.default_rng(seed).choice(n, max_faces, replace=False))
    images = np.asarray(faceset.images[index])
    if images.shape[1] != image_size:
        images = np.stack([np.asarray(Image.fromarray(im).resize((image_size, image_size), Image.BILINEAR))
                           for im in images])
    return images, faceset.identities[index], faceset.modalities[index]


# ------------------------------------------------------------------------------------------------
# The command: hfr-tutorial export
# ------------------------------------------------------------------------------------------------
def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def export_command(args: argparse.Namespace) -> int:
    """``hfr-tutorial export``: checkpoint -> checked ONNX (and int8), with size, agreement and latency.

    Writes ``--out`` (float ONNX) and, with ``--int8``, ``<out stem>.int8-<mode>.onnx`` beside it;
    prints the size on disk of each form, the agreement with the float PyTorch model (cosine mean
    and min, rank-1 and EER per protocol) and the latency at batch 1 and throughput at batch 64.
    Raises :class:`DeploymentError` (exit code 2 from the command line) when a form fails its
    agreement threshold; the failing file is removed rather than left to be shipped.
    """
    from .models.edgeface import load_edgeface

    require_deploy_packages()
    image_size = _check_image_size(args.image_size)
    out = Path(args.out)
    if out.suffix != ".onnx":
        raise ValueError(f"--out {str(out)!r}: give a file name ending in .onnx (e.g. --out model.onnx).")
    model = load_edgeface(args.variant, args.checkpoint)
    print(f"Loaded {args.variant} from {args.checkpoint} ({file_size(args.checkpoint) / 1e6:.2f} MB on disk)")
    if args.faces:
        images, ids, mods = layout_faces(args.faces, image_size, max_faces=args.max_faces)
        source = f"the layout {args.faces}"
    else:
        images, ids, mods = synthetic_faces(image_size)
        source = "embedded synthetic faces"
    print(f"Agreement set: {len(images)} faces of {len(np.unique(ids))} identities "
          f"({', '.join(dict.fromkeys(mods.tolist()))}) from {source}, {image_size}px")

    info = export_onnx(model, out, image_size=image_size)
    print(f"Exported {out} with {info.exporter} in {info.seconds:.1f} s (opset {info.opset}, dynamic batch); "
          "onnx.checker passed")
    threads = args.threads
    reference = torch_form(model, "PyTorch float", image_size=image_size)
    forms = [reference, onnx_form(out, "ONNX float", threads=threads)]
    checks = [(forms[1], FLOAT_THRESHOLD)]
    if args.int8:
        dst = out.with_name(f"{out.stem}.int8-{args.int8}.onnx")
        if args.int8 == "dynamic":
            quantize_onnx_dynamic(out, dst)
            threshold = INT8_THRESHOLD
        else:
            if args.calibration:
                calib, _, _ = layout_faces(args.calibration, image_size, max_faces=args.max_calibration)
                calib_source = f"the layout {args.calibration}"
            else:
                calib, _, _ = synthetic_faces(image_size, identities=range(30_000, 30_000 + max(1, args.max_calibration // 6)))
                calib_source = "embedded synthetic faces (other identities than the agreement set)"
            quantize_onnx_static(out, dst, calib)
            print(f"Calibrated static int8 on {len(calib)} faces from {calib_source}")
            threshold = INT8_STATIC_THRESHOLD
        quantized = onnx_form(dst, f"ONNX int8 ({args.int8})", threads=threads)
        forms.append(quantized)
        checks.append((quantized, threshold))
    print("\nSize on disk:")
    print(f"  {'checkpoint (PyTorch float)':28s} {_mb(file_size(args.checkpoint))}")
    for form in forms[1:]:
        print(f"  {form.name + ' ' + str(form.path.name):28s} {_mb(form.size_bytes)}")
    print("\nAgreement with the float PyTorch model:")
    failed = []
    ref_emb = embed_form(reference, images)
    for form, threshold in checks:
        agreement = compare_embeddings(ref_emb, embed_form(form, images), form=form.name, threshold=threshold,
                                       identities=ids, modalities=mods, strict=False)
        print(agreement.summary())
        if not agreement.passed:
            failed.append((form, agreement))
    if not args.no_bench:
        table = benchmark_forms(forms, batches=(1, 64), repeats={1: args.repeats, 64: max(3, args.repeats // 10)},
                                threads=threads)
        print(f"\nLatency on this CPU ({machine_description(threads)['cpu']}, {threads} threads; median of interleaved runs):")
        for form in forms:
            b1 = table[(table.form == form.name) & (table.batch == 1)].iloc[0]
            b64 = table[(table.form == form.name) & (table.batch == 64)].iloc[0]
            print(f"  {form.name:18s} batch 1: {b1.median_ms:7.2f} ms   batch 64: {b64.images_per_s:7.0f} faces/s")
    if failed:
        for form, _ in failed:
            if form.path is not None:
                form.path.unlink(missing_ok=True)
        names = ", ".join(f"{f.name} ({'; '.join(a.failures)})" for f, a in failed)
        raise DeploymentError(f"not shipped, removed: {names}. See the agreement lines above.")
    print(f"\nAll forms agree within their thresholds; wrote {', '.join(str(f.path) for f in forms[1:])}")
    return 0


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``export`` on the command line's subparsers (``hfr_tutorial/__main__.py``)."""
    from .models.edgeface import list_variants

    p = subparsers.add_parser(
        "export", help="export a checkpoint to checked ONNX (float, int8), with size, agreement and latency",
        description="Export an EdgeFace checkpoint to ONNX (torch.onnx.export, dynamo=True; dynamic batch),\n"
                    "check it (onnx.checker, digest, agreement with the float PyTorch model on faces) and time\n"
                    "it. With --int8 an onnxruntime int8 model is written beside --out\n"
                    "(<stem>.int8-<mode>.onnx). A form that fails its agreement threshold is removed and the\n"
                    "command exits with code 2.\n\nexamples:\n"
                    "  hfr-tutorial export --checkpoint edgeface_xxs_float.pt --out xxs.onnx --int8 dynamic\n"
                    "  hfr-tutorial export --checkpoint model.pt --image-size 64 --out adapted.onnx --int8 static "
                    "--calibration LAYOUT",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="EdgeFace checkpoint (.pt: official float or _q "
                                                                   "file, or a model.pt of the cache)")
    p.add_argument("--variant", default="edgeface_xxs", choices=list_variants(), help="EdgeFace variant (default edgeface_xxs)")
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write (float); int8 goes beside it")
    p.add_argument("--int8", choices=("dynamic", "static"), default=None,
                   help="also write an onnxruntime int8 model: dynamic, or static QDQ calibrated on faces")
    p.add_argument("--calibration", type=Path, default=None,
                   help="standard layout whose faces calibrate --int8 static (default: synthetic faces)")
    p.add_argument("--faces", type=Path, default=None,
                   help="standard layout of faces for the agreement check (default: synthetic faces)")
    p.add_argument("--image-size", type=int, default=INPUT_SIZE,
                   help=f"input side in pixels (default {INPUT_SIZE}, the official weights'; the embedded fast models use 64)")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="CPU threads for the timings (default 2)")
    p.add_argument("--repeats", type=int, default=30, help="timed calls at batch 1 (batch 64: a tenth, at least 3)")
    p.add_argument("--max-faces", type=int, default=512, help="at most this many faces of --faces")
    p.add_argument("--max-calibration", type=int, default=96, help="at most this many calibration faces")
    p.add_argument("--no-bench", action="store_true", help="skip the latency measurement")
    p.set_defaults(func=export_command)
    return p
