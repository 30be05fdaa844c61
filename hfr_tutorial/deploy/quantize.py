"""int8 quantization three ways: PyTorch dynamic, onnxruntime dynamic, onnxruntime static QDQ calibrated on faces.

* :func:`quantize_torch_dynamic`: dynamic quantization of every ``nn.Linear``, the form of the
  official ``edgeface_*_q`` checkpoints.
* :func:`quantize_onnx_dynamic`: onnxruntime's dynamic quantization of an exported file.
* :func:`quantize_onnx_static`: static QDQ quantization, activation ranges calibrated on faces.

``quant_pre_process``'s symbolic shape inference fails on the exported graph (an ``Expand`` of the
positional encoding), so it runs with ``skip_symbolic_shape=True`` (ONNX shape inference and the
graph optimisations still run).  Each quantized file is checked and written like an export
(:func:`~hfr_tutorial.deploy.export.stamp_and_save`).  Taught in ``notebooks/08_edge_deployment.ipynb``.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hfr_tutorial.deploy.export import (INPUT_NAME, INTEGRITY_KEY, check_destination, drop_initializer_value_info,
                                        load_onnx, onnx_input_size, onnx_metadata, stamp_and_save)
from hfr_tutorial.deploy.forms import faces_to_input


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

    import onnx

    model = load_onnx(src)
    drop_initializer_value_info(model)
    clean = workdir / "clean.onnx"
    onnx.save_model(model, str(clean))
    prepared = workdir / "prepared.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(clean), str(prepared), skip_symbolic_shape=True)
    return prepared


@contextlib.contextmanager
def _quiet_ort_logging() -> Iterator[None]:
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
    meta = {k: v for k, v in onnx_metadata(source).items() if k != INTEGRITY_KEY}
    meta["hfr_tutorial.form"] = form
    return stamp_and_save(model, dst, meta)


def quantize_onnx_dynamic(src: str | os.PathLike, dst: str | os.PathLike, *, per_channel: bool = False,
                          overwrite: bool = False) -> Path:
    """onnxruntime dynamic int8 quantization of an exported model (weights int8, activations at run time).

    Quantizes what onnxruntime's dynamic mode supports here: ``Conv`` (as ConvInteger), ``MatMul``
    and the head's ``Gemm``; LayerNorm, GELU and Softmax stay float.  The result is checked
    (:func:`~hfr_tutorial.deploy.load_onnx`) and written like an export: atomically, with its
    integrity checksum, replacing ``dst`` only with ``overwrite=True``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), check_destination(dst, overwrite=overwrite, what="the int8 ONNX file")
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
agreement in our measurements (see :data:`hfr_tutorial.deploy.INT8_STATIC_THRESHOLD`)."""


def quantize_onnx_static(src: str | os.PathLike, dst: str | os.PathLike, calibration_faces: np.ndarray, *,
                         op_types: Sequence[str] = STATIC_OP_TYPES, per_channel: bool = True,
                         batch_size: int = 16, overwrite: bool = False) -> Path:
    """onnxruntime static int8 quantization in QDQ format, calibrated on uint8 faces (N, S, S, 3).

    The activation ranges are measured once on ``calibration_faces`` (min/max) and fixed in the
    file as QuantizeLinear/DequantizeLinear pairs (int8 activations and weights, weights per output
    channel), which onnxruntime fuses into integer kernels.  Calibrate on faces like the ones the
    device will see (every modality it will see), never on the faces used to check agreement.
    Written like an export: atomically, with its integrity checksum, replacing ``dst`` only with
    ``overwrite=True``.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    src, dst = Path(src), check_destination(dst, overwrite=overwrite, what="the int8 ONNX file")
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
