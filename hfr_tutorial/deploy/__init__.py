"""Edge deployment: export an EdgeFace to ONNX, quantize it to int8, check it against PyTorch, time it.

The method changes parameter *values*, never the architecture, so an adapted model deploys
exactly like the EdgeFace it came from.  This package takes any :class:`~hfr_tutorial.models.EdgeFace`
(any variant, any tuning policy: the embedded baseline or adapted model, or the official weights)
to the forms an edge device runs, and checks every form against the float PyTorch model before it
is shipped.  One concept per module:

* :mod:`~hfr_tutorial.deploy.export`: ONNX export (``torch.onnx.export(..., dynamo=True)``, dynamic
  batch), the file's metadata and integrity checksum, atomic writing, loading only intact files;
* :mod:`~hfr_tutorial.deploy.forms`: a PyTorch module or an ONNX file as one :class:`Form`, and embedding faces;
* :mod:`~hfr_tutorial.deploy.quantize`: PyTorch dynamic, onnxruntime dynamic and static QDQ int8;
* :mod:`~hfr_tutorial.deploy.agreement`: thresholds and the face-by-face comparison with the float model;
* :mod:`~hfr_tutorial.deploy.timing`: latency and throughput, all forms interleaved, fixed threads;
* :mod:`~hfr_tutorial.deploy.faces`: faces for the checks (synthetic, or a standard layout);
* :mod:`~hfr_tutorial.deploy.errors`: :class:`DeploymentError` and the check of the deploy extra.

The command line (``hfr-tutorial export``) is in :mod:`hfr_tutorial.__main__`; what a timing was
measured on, in :mod:`hfr_tutorial.environment`.  The names below are the package's API.  Taught in
``notebooks/08_edge_deployment.ipynb``.
"""
from hfr_tutorial.deploy.agreement import (FLOAT_THRESHOLD, INT8_STATIC_THRESHOLD, INT8_THRESHOLD, Agreement,
                                           Threshold, check_form, compare_embeddings, protocols_for)
from hfr_tutorial.deploy.errors import DeploymentError, require_deploy_packages
from hfr_tutorial.deploy.export import (DEFAULT_THREADS, INPUT_NAME, INTEGRITY_KEY, OUTPUT_NAME, ExportInfo,
                                        check_destination, check_export_size, check_image_size,
                                        export_onnx, file_size, load_onnx,
                                        official_input_size, onnx_input_size, onnx_metadata, onnx_session,
                                        operator_summary)
from hfr_tutorial.deploy.faces import layout_faces, synthetic_faces
from hfr_tutorial.deploy.forms import Form, embed_form, faces_to_input, onnx_form, torch_file_size, torch_form
from hfr_tutorial.deploy.quantize import (STATIC_OP_TYPES, quantize_onnx_dynamic, quantize_onnx_static,
                                          quantize_torch_dynamic)
from hfr_tutorial.deploy.timing import benchmark_forms, torch_threads

__all__ = [
    "DEFAULT_THREADS", "FLOAT_THRESHOLD", "INPUT_NAME", "INT8_STATIC_THRESHOLD", "INT8_THRESHOLD", "INTEGRITY_KEY",
    "OUTPUT_NAME", "STATIC_OP_TYPES", "Agreement", "DeploymentError", "ExportInfo", "Form", "Threshold",
    "benchmark_forms", "check_destination", "check_export_size", "check_form", "check_image_size", "compare_embeddings", "embed_form",
    "export_onnx", "faces_to_input", "file_size", "layout_faces", "load_onnx", "official_input_size",
    "onnx_form", "onnx_input_size", "onnx_metadata", "onnx_session", "operator_summary", "protocols_for",
    "quantize_onnx_dynamic", "quantize_onnx_static", "quantize_torch_dynamic", "require_deploy_packages",
    "synthetic_faces", "torch_file_size", "torch_form", "torch_threads",
]
