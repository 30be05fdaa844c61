"""ONNX export of an EdgeFace, the file's metadata and integrity checksum, and loading a file only when it is intact.

:func:`export_onnx` runs ``torch.onnx.export(..., dynamo=True)`` (the exporter torch recommends; it
needs ``onnxscript``) with a dynamic batch and the model's square input size, checks the result
(``onnx.checker``, full check; onnxruntime against PyTorch on random input) and writes it
atomically: into ``<file>.tmp`` beside the target, renamed into place only once checked, the
temporary file removed on any error (a full disk, an interrupt, a failed check), so a failed export
leaves nothing behind and an existing file untouched.  An existing file is replaced only with
``overwrite=True``.

The file carries a SHA-256 **integrity checksum** of its content in its metadata
(:data:`INTEGRITY_KEY`), which :func:`load_onnx` recomputes: a file damaged after export (a bad
copy, a flipped bit on a disk, a truncated download, an edit that did not update the checksum) is
refused.  It is not a signature: anyone who edits the file on purpose can recompute the checksum.
To know who made a file, sign it (a detached signature, e.g. with sigstore or GPG) and check the
signature on the device.

Two facts found while building this (torch 2.14, onnxscript 0.7, onnxruntime 1.31), kept here so
nobody has to find them again:

* EdgeNeXt (its conv encoders, the split-transpose attention with its cross-covariance softmax,
  the Fourier positional encoding, the LayerNorm head) exports with the dynamo exporter as it
  is, for every registered variant; no custom translation is needed.
* The dynamo exporter writes a ``value_info`` entry for every initializer.  onnxruntime's dynamic
  quantizer turns ``Gemm`` (the 512-d head) into ``MatMul`` by transposing the weight *in place*,
  then re-runs shape inference, which fails on the stale entry ("Inferred shape and existing shape
  differ in dimension 0: (168) vs (512)").  Initializers carry their own shapes, so
  :func:`export_onnx` drops those entries (:func:`drop_initializer_value_info`).

onnx and onnxruntime are imported inside the functions that use them: they are the optional
``deploy`` extra, and the rest of the library works without them.  Taught in
``notebooks/08_edge_deployment.ipynb``; command line: ``hfr-tutorial export``.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hfr_tutorial.deploy.errors import DeploymentError, require_deploy_packages
from hfr_tutorial.evaluate import l2_normalize
from hfr_tutorial.models.edgeface import EMBEDDING_DIM, INPUT_SIZE, checkpoint_names, list_variants

INPUT_NAME = "input"
OUTPUT_NAME = "embedding"
INTEGRITY_KEY = "hfr_tutorial.sha256"
"""Metadata key of the integrity checksum: the SHA-256 of the model's content (everything but this entry).
It detects accidental change, not a deliberate edit that recomputes it (see the module docstring)."""
DEFAULT_THREADS = 2
"""onnxruntime and PyTorch threads of the checks and timings, unless told otherwise."""
MIN_IMAGE_SIZE = 32
IMAGE_SIZE_MULTIPLE = 16


# ------------------------------------------------------------------------------------------------
# Input size
# ------------------------------------------------------------------------------------------------
def check_image_size(image_size: Any) -> int:
    """The square input side ``image_size`` as an int, or a ValueError saying what a valid side is.

    At least 32 and a multiple of 16, as ``hfr-tutorial run`` requires of a layout: EdgeNeXt divides
    the side by 4 and then halves it three times; 112 for the official weights, the preset's size
    for the embedded models (64 on fast, 32 on smoke).
    """
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < MIN_IMAGE_SIZE \
            or image_size % IMAGE_SIZE_MULTIPLE:
        raise ValueError(f"image_size={image_size!r} is invalid: give the square input side in pixels, at least "
                         f"{MIN_IMAGE_SIZE} and a multiple of {IMAGE_SIZE_MULTIPLE} (EdgeNeXt downsamples by 4, then "
                         "by 2 three times): 112 for the official weights, the preset's image size for the embedded "
                         "models (64 on fast).")
    return int(image_size)


def official_input_size(checkpoint: str | os.PathLike) -> int | None:
    """The input side the weights of ``checkpoint`` were trained at, when it is an official EdgeFace file; else None.

    An official file goes by one of :func:`~hfr_tutorial.models.checkpoint_names` of a registered
    variant (``edgeface_xxs.pt``, ``edgeface_xxs_q.pt``, ``edgeface_xxs_float.pt`` ...); those were
    trained on 112x112 aligned faces, and at any other size their embeddings are not the ones the
    model learnt.  Another file (a model of the cache, a fine-tuned copy) records no size: None.
    """
    name = Path(checkpoint).name
    official = {n for variant in list_variants() for n in checkpoint_names(variant)}
    return INPUT_SIZE if name in official else None


def check_export_size(image_size: Any, checkpoint: str | os.PathLike | None = None) -> int:
    """:func:`check_image_size`, and for official weights (:func:`official_input_size`) the size they were trained at."""
    trained = official_input_size(checkpoint) if checkpoint is not None else None
    if trained is not None and image_size != trained:  # the more specific reason first
        size = image_size
        raise ValueError(f"image size {size} px for {str(checkpoint)!r}: these are the official EdgeFace weights, "
                         f"trained on {trained}x{trained} aligned faces; at {size} px the network computes embeddings "
                         f"it was never trained for, and the export would carry them silently. Export at {trained} "
                         f"(the default), or adapt the model at {size} px first and export that checkpoint.")
    return check_image_size(image_size)


# ------------------------------------------------------------------------------------------------
# Files: metadata, integrity checksum, atomic writing, loading
# ------------------------------------------------------------------------------------------------
def _content_checksum(model: "onnx.ModelProto") -> str:  # noqa: F821
    """SHA-256 of the model's serialized content without its checksum entry."""
    import onnx

    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    keep = [p for p in clone.metadata_props if p.key != INTEGRITY_KEY]
    del clone.metadata_props[:]
    clone.metadata_props.extend(keep)
    return hashlib.sha256(clone.SerializeToString(deterministic=True)).hexdigest()


def _set_metadata(model: "onnx.ModelProto", values: Mapping[str, str]) -> None:  # noqa: F821
    props = {p.key: p.value for p in model.metadata_props}
    props.update({k: str(v) for k, v in values.items()})
    props.pop(INTEGRITY_KEY, None)
    del model.metadata_props[:]
    for key in sorted(props):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, props[key]


def check_destination(path: str | os.PathLike, *, overwrite: bool, what: str = "the ONNX file",
                      fix: str = "pass overwrite=True") -> Path:
    """``path`` as a Path, refused with a ValueError when it is a folder, or a file and ``overwrite`` is False."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a folder; give a file name ending in .onnx.")
    if path.exists() and not overwrite:
        raise ValueError(f"{what} {str(path)!r} already exists and would be replaced; {fix} to replace it, or "
                         "choose another file.")
    return path


def stamp_and_save(model: "onnx.ModelProto", path: str | os.PathLike, metadata: Mapping[str, str], *,  # noqa: F821
                   check: Callable[[Path], None] | None = None) -> Path:
    """Write ``model`` with ``metadata`` and its integrity checksum to ``path``, atomically.

    The file is written as ``<path>.tmp``, read back through :func:`load_onnx` and ``check(tmp)``,
    then renamed onto ``path``.  On any error (a full disk, an interrupt, a failed check) the
    temporary file is removed and ``path`` is left as it was.
    """
    import onnx

    path = Path(path)
    _set_metadata(model, metadata)
    checksum = _content_checksum(model)  # before the entry is added: the checksum covers everything else
    entry = model.metadata_props.add()
    entry.key, entry.value = INTEGRITY_KEY, checksum
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        onnx.save_model(model, str(tmp))
        load_onnx(tmp)
        if check is not None:
            check(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def onnx_metadata(model: "onnx.ModelProto") -> dict[str, str]:  # noqa: F821
    """The model's metadata entries (variant, image size, form, exporter, integrity checksum ...)."""
    return {p.key: p.value for p in model.metadata_props}


def load_onnx(path: str | os.PathLike, *, require_integrity: bool = True) -> "onnx.ModelProto":  # noqa: F821
    """Read an ONNX file and refuse it, with a :class:`DeploymentError`, unless it is intact.

    Checks, in order: the file exists and is not empty; it parses as an ONNX model (a truncated or
    corrupted file does not); ``onnx.checker.check_model(full_check=True)`` passes; and the
    integrity checksum written at export matches the content, so a single flipped byte in a weight,
    which parses and runs, is refused as well.  The checksum detects accidental change only: an
    edit that recomputes it passes (sign files to know who made them).  ``require_integrity=False``
    accepts a file written by another tool (it has no checksum) after the other checks.
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
    recorded = onnx_metadata(model).get(INTEGRITY_KEY)
    if recorded is None:
        if require_integrity:
            raise DeploymentError(f"{str(path)!r} carries no integrity checksum ({INTEGRITY_KEY}): it was not written "
                                  "by hfr_tutorial.deploy, or it was cut short (the checksum is stored last). "
                                  f"{redo} To accept a file from another tool, pass require_integrity=False.")
    else:
        actual = _content_checksum(model)
        if actual != recorded:
            raise DeploymentError(f"{str(path)!r} fails its integrity check: the SHA-256 of its content is "
                                  f"{actual[:16]}..., the checksum recorded at export is {recorded[:16]}...: the file "
                                  f"changed after export (a weight or the graph; a damaged copy or an edit). Do not "
                                  f"deploy it. {redo}")
    return model


def onnx_session(path: str | os.PathLike, *, threads: int = DEFAULT_THREADS, require_integrity: bool = True) -> Any:
    """An onnxruntime CPU session for a checked file (:func:`load_onnx`), with ``threads`` intra-op threads.

    The session is built from the bytes that were checked, not by re-reading the file.  Spinning
    of idle worker threads is switched off: on a shared machine a spinning thread steals the
    CPU from whatever runs next (including the PyTorch form measured beside it).
    """
    import onnxruntime as ort

    model = load_onnx(path, require_integrity=require_integrity)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def file_size(path: str | os.PathLike) -> int:
    """Size of a file on disk in bytes."""
    return Path(path).stat().st_size


def onnx_input_size(model_or_path: Any) -> int:
    """The square input side of an exported model (from its graph input)."""
    import onnx

    model = model_or_path if isinstance(model_or_path, onnx.ModelProto) else load_onnx(model_or_path,
                                                                                        require_integrity=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value)


def operator_summary(model_or_path: Any) -> dict[str, Any]:
    """What an ONNX graph computes with: node op_type counts and initializer shapes (sorted).

    Two files with equal summaries run the same operators on tensors of the same shapes, so
    they cost the same to run: only the values of the initializers can differ.
    """
    import onnx

    model = model_or_path if isinstance(model_or_path, onnx.ModelProto) else load_onnx(model_or_path)
    return {"op_types": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
            "initializer_shapes": sorted((i.name, tuple(int(d) for d in i.dims)) for i in model.graph.initializer),
            "inputs": [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                       for i in model.graph.input],
            "outputs": [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
                        for o in model.graph.output]}


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


def drop_initializer_value_info(model: "onnx.ModelProto") -> int:  # noqa: F821
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


def _check_against_torch(net: nn.Module, image_size: int, shown: Path) -> Callable[[Path], None]:
    """A check of a written file: onnxruntime at batch 1 and 3 on random input must give PyTorch's outputs."""

    def check(written: Path) -> None:
        session = onnx_session(written, threads=DEFAULT_THREADS)
        for n in (1, 3):
            x = _example_input(image_size, batch=n, seed=n)
            with torch.inference_mode():
                want = net(x).numpy()
            got = session.run(None, {INPUT_NAME: x.numpy()})[0]
            if got.shape != want.shape:
                raise DeploymentError(f"{str(shown)!r}: output {OUTPUT_NAME!r} has shape {got.shape} at batch {n}, "
                                      f"PyTorch gives {want.shape}: the batch dimension is not dynamic.")
            cos = np.sum(l2_normalize(got) * l2_normalize(want), axis=1)
            if cos.min() < 0.9999:
                raise DeploymentError(f"{str(shown)!r}: output {OUTPUT_NAME!r} disagrees with PyTorch on random input "
                                      f"at batch {n}: cosine {cos.min():.6f} < 0.9999. The export is wrong; do not "
                                      "ship it.")

    return check


def export_onnx(model: nn.Module, path: str | os.PathLike, *, image_size: int = INPUT_SIZE,
                opset: int | None = None, metadata: Mapping[str, str] | None = None,
                overwrite: bool = False) -> ExportInfo:
    """Export an EdgeFace to ONNX with a dynamic batch, check it and stamp its integrity checksum.

    Args:
        model: an EdgeFace (any variant or policy) or any module mapping (B, 3, S, S) normalised
            faces to (B, D) embeddings.  It is copied to the CPU in eval mode; the caller's
            model is not touched.
        path: the ``.onnx`` file to write (its folder is created).
        image_size: the square input side ``S`` (112 for the official weights; the embedded
            models use their preset's size, 64 on ``fast``): at least 32, a multiple of 16.
        opset: ONNX opset (default: the exporter's, 20 with torch 2.14).
        metadata: extra ``metadata_props`` entries.
        overwrite: replace ``path`` if it exists (else a ValueError, before any work).

    The exporter is ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` then onnxscript's
    translation and graph optimisation).  The file is written atomically (:func:`stamp_and_save`)
    after :func:`load_onnx` accepts it and onnxruntime at batch 1 and 3 on random input gives
    PyTorch's outputs (cosine >= 0.9999, the batch's length), else :class:`DeploymentError` and no
    file.  The full agreement check on faces is :func:`~hfr_tutorial.deploy.compare_embeddings`.
    """
    require_deploy_packages()
    image_size = check_image_size(image_size)
    path = check_destination(path, overwrite=overwrite)
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
    drop_initializer_value_info(proto)
    exporter = f"torch.onnx.export(dynamo=True), torch {torch.__version__}"
    meta = {"hfr_tutorial.form": "float32", "hfr_tutorial.image_size": str(image_size),
            "hfr_tutorial.variant": str(getattr(model, "variant", "")), "hfr_tutorial.exporter": exporter,
            "hfr_tutorial.input": "RGB (B, 3, S, S): ToTensor, then (x - 0.5) / 0.5",
            "hfr_tutorial.output": f"({OUTPUT_NAME}) (B, {EMBEDDING_DIM}) unnormalised; compare with cosine"}
    meta.update(metadata or {})
    stamp_and_save(proto, path, meta, check=_check_against_torch(net, image_size, path))
    checked = load_onnx(path)
    opset_used = next((o.version for o in checked.opset_import if o.domain in ("", "ai.onnx")), -1)
    return ExportInfo(path, file_size(path), image_size, int(opset_used), exporter, seconds, onnx_metadata(checked))
