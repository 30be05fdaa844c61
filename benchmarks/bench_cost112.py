"""Cost at the real input size, 112x112: EdgeFace-XXS against heavier face models, and the adaptation step.

Run: ``python benchmarks/bench_cost112.py [--quick] [--threads 2] [--batch 64] [--repeats 100]
[--train-repeats 10] [--device cpu] [--out docs/results/cost112/bench.json]``

Every timed figure of a table comes from the same run on the same machine, **interleaved**: the
candidates take turns, one call each, for a number of rounds, the order rotating every round, and
the figure is the median of the rounds, so a slow spell of the machine hits every candidate alike.
Figures are then given as ratios to EdgeFace-XXS (inference) or to full fine-tuning (adaptation
step), so that the machine's speed largely cancels out.  PyTorch runs on ``--threads`` threads.

1. **Parameters and FLOPs per image** are counted by PyTorch's own counter,
   ``torch.utils.flop_counter.FlopCounterMode`` (one 112x112 image, eval mode), never by hand.  The
   counter counts 2 FLOPs per multiply-add of its matrix products and convolutions (it does not
   count norms, activations or softmax); both figures are reported.  The check: the official
   EdgeFace-XXS figures, 94.72 MFLOPs and 1.24 M parameters; the script prints which convention
   (FLOPs = 2 x multiply-adds, or multiply-adds) reproduces 94.72 within 2 %, and the table's MFLOPs
   column is in that convention.  The int8 forms run the same operations (their ``nn.Linear`` in
   int8): their FLOPs are the float model's.
2. **CPU latency** at batch 1 and **throughput** at batch ``--batch`` (64), float, and the int8 form
   of the official ``edgeface_*_q`` files: ``torch.ao`` dynamic quantization of every ``nn.Linear``
   (:func:`hfr_tutorial.deploy.quantize_torch_dynamic`) of the model whose weights are the official
   ``_q`` file's when it is found (read with :func:`hfr_tutorial.models.read_checkpoint`, tensors only,
   its int8 weights dequantized exactly, then quantized again; else the float model quantized the
   same way; the row says which).
   The float EdgeFace rows run the official weights where :func:`~hfr_tutorial.models.find_checkpoint`
   finds them (``HFR_ASSETS=/path/to/assets``), else a seeded random initialisation: cost does not
   depend on the values of the weights.
3. **Heavier face models** beside it: ``timm.create_model("resnet50", num_classes=512)`` (random
   weights; a 512-d embedding head as ArcFace-style models use), and, where ``dlib`` and the
   ``face_recognition_models`` package are installed, dlib's ResNet face recogniser
   (``dlib.face_recognition_model_v1``, 128-d).  dlib computes on 150x150 aligned chips, not 112x112:
   its row times ``compute_face_descriptor`` on 150x150 chips (the real dlib-aligned chips of
   ``$HFR_ASSETS/faces/dlib_johns`` where present, else random ones), a list of ``--batch`` chips for
   throughput; it is not a PyTorch model, so FlopCounterMode cannot count it (``-`` in the table), and
   dlib sets its own threads (the ``CPU / wall`` column shows how many cores each candidate kept
   busy: process CPU time over wall time during its timed calls).  timm's ImageNet ResNet-50 shrinks
   the input 32x (a 4x4 final map at 112 px), where the ArcFace IR-50 keeps a stride-1 stem and no
   max-pool: its ratios here understate what an ArcFace ResNet-50 costs.
4. **The adaptation step per tuning policy** (forward of a batch of ``PretrainedRecipe.batch_size``
   VIS + as many NIR/thermal images, InfoNCE + self-distillation on the precomputed teacher targets,
   backward, fused AdamW step), plus the ``paper`` step with the teacher run inside the step.  The
   step is the library's, as :func:`hfr_tutorial.train.adapt_cross_spectral` runs it: the student
   under the policy (:func:`hfr_tutorial.tuning.apply_policy`), the loss of
   :func:`hfr_tutorial.train.method_loss` and ``optimisation_step(AdaptationStep(...), batch, optimizer)``.  Per policy: time, trainable parameters,
   optimiser-state bytes and the **peak memory of the step**, measured as the sum of

   * the student's weights and buffers, the gradients (``p.grad`` after ``backward``) and the
     optimiser state (every tensor in ``optimizer.state`` after the step), and
   * the tensors autograd saves for the backward pass, caught with
     ``torch.autograd.graph.saved_tensors_hooks`` during the forward pass and summed as **unique
     storages** (``untyped_storage().nbytes()``, each storage once, the weights' own storages left
     out since they are counted above).

   That is what the step holds at the end of its forward pass, where it peaks: every saved tensor is
   alive, and in the training loop the previous step's gradients are freed only after the forward
   pass (``zero_grad(set_to_none=True)`` just before ``backward``); during ``backward`` the saved
   tensors are freed as the new gradients appear.  Kernel temporaries and the allocator's slack are
   not in the sum: it estimates the step's memory, not the process's resident size.  It is measured
   once per policy (it does not change between steps).  The frozen teacher (one more copy of the weights) and its
   target table sit beside every policy and are not in the sum.  Ratios are to ``full``.
5. **End to end, the real EdgeFace on real-photo pairs**: the official ``edgeface_xxs`` weights
   adapted by the method (``paper/infonce+distill``) on the data path of a user's own photos: the
   real faces of ``$HFR_ASSETS/faces`` go through ``data_scripts/prepare_folder.py`` (``--detector
   none``: they are crops already; ``--pseudo nir,thermal``; 112 px; a train/dev/eval split) into a
   standard layout, and the experiment runs as a user's would,
   ``run(Experiment(LayoutData(layout), Pretrained("edgeface_xxs", weights), runs=(method,)))``
   (:func:`hfr_tutorial.experiment.run`: ``PretrainedRecipe``'s batch, pairs per identity, lambda
   and InfoNCE, at the grid's smallest rate; the VIS guard off, since it decides whether a model is
   kept, not what it costs), into an empty temporary cache so that the model is trained here and now.  The real sets hold too few identities for a batch of 32 distinct
   identities, so every two photos of a person are an identity of their own (they and their
   simulated NIR / thermal images; dev and eval need two VIS photos per identity): the shapes and
   the work of a step are those of a real batch (the eval figures of such identities mean nothing
   and are not reported).  The figure: images per second of the last epoch (each step embeds the
   batch's VIS and NIR/thermal images; the epoch's time includes the per-epoch dev validation the
   experiment runs), and the minutes of one epoch of a CASIA-sized training set (360 identities x
   ``PretrainedRecipe.pairs_per_identity`` pairs) on this machine; beside it, the time of the pass
   that computes the teacher's targets before the first epoch
   (:func:`hfr_tutorial.train.teacher_embeddings`).  Skipped, with the reason, without the weights
   or the faces.  ``--device cuda`` runs this part on a GPU.

The JSON (default ``docs/results/cost112/bench.json``, with ``bench.md`` beside it, which
``tools/update_readme.py`` copies into the README's ``cost112`` section) holds the machine (CPU model,
cores, threads, torch version, device), the settings and every row, a skipped row with its reason.
``--quick`` (3 rounds, throughput batch 4, 4 pairs per training step, written to a temporary folder
unless ``--out`` is given) checks in under a minute that every code path works; its timings mean
little.  Timings are only comparable within one run on a quiet machine.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # data_scripts/ of this checkout

from hfr_tutorial import deploy  # noqa: E402
from hfr_tutorial.config import CACHE_ENV, PretrainedRecipe, TrainConfig, get_preset  # noqa: E402
from hfr_tutorial.data import cross_modalities  # noqa: E402
from hfr_tutorial.environment import machine_description  # noqa: E402
from hfr_tutorial.experiment import Experiment, LayoutData, Pretrained, run, training_split  # noqa: E402
from hfr_tutorial.models import (INPUT_SIZE, checkpoint_search_path, count_parameters, create_edgeface,  # noqa: E402
                                 find_checkpoint, load_edgeface, normalize, weights_hint)
from hfr_tutorial.runs import METHOD_RUN, get_run  # noqa: E402
from hfr_tutorial.train import (AdaptationStep, AdaptSettings, adamw, method_loss, optimisation_step,  # noqa: E402
                                teacher_embeddings)
from hfr_tutorial.tuning import POLICIES, apply_policy, trainable_parameters  # noqa: E402

DEFAULT_OUT = ROOT / "docs" / "results" / "cost112" / "bench.json"
OFFICIAL_XXS_MFLOPS = 94.72
OFFICIAL_XXS_PARAMS_M = 1.24
FLOPS_TOLERANCE = 0.02
REFERENCE = "EdgeFace-XXS float"
DLIB_CHIP = 150
CASIA_IDENTITIES = 360
"""About the training identities of one CASIA NIR-VIS 2.0 View 2 fold."""
CPU = torch.device("cpu")


# ------------------------------------------------------------------------------------------------
# Interleaved timing
# ------------------------------------------------------------------------------------------------
def interleaved(calls: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1) -> dict[str, dict[str, float]]:
    """Time every call in turn, one call each per round, the order rotating each round.

    Returns, per name: ``median_ms``, ``p25_ms``, ``p75_ms``, ``rounds`` and ``cpu_per_wall`` (process
    CPU time over wall time of its timed calls: how many cores it kept busy).
    """
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, float] = {n: 0.0 for n in names}
    for r in range(rounds):
        for j in range(len(names)):
            name = names[(r + j) % len(names)]
            c0, t0 = time.process_time(), time.perf_counter()
            calls[name]()
            wall[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
    out = {}
    for name in names:
        t = np.asarray(wall[name]) * 1e3
        out[name] = {"median_ms": float(np.median(t)), "p25_ms": float(np.percentile(t, 25)),
                     "p75_ms": float(np.percentile(t, 75)), "rounds": rounds,
                     "cpu_per_wall": cpu[name] / max(1e-9, float(t.sum()) / 1e3)}
    return out


# ------------------------------------------------------------------------------------------------
# Candidates for inference
# ------------------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """One model to time: how to run it on a batch prepared once, and what it counts."""

    name: str
    family: str
    input_size: int
    weights: str
    params: int | None
    flops: float | None  # FlopCounterMode total for one image (2 per multiply-add)
    run: Callable[[int], Any] | None = None  # run(batch) on the batch prepared for that size
    note: str = ""
    status: str = "ok"
    reason: str = ""


def count_flops(model: nn.Module, size: int) -> float:
    """FLOPs of one ``size`` x ``size`` image as ``FlopCounterMode`` counts them (2 per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size))
    return float(counter.get_total_flops())


def official_q_file(variant: str) -> Path | None:
    """The official int8 file ``<variant>_q.pt`` in the folders :func:`find_checkpoint` searches."""
    for folder in checkpoint_search_path():
        if (folder / f"{variant}_q.pt").is_file():
            return folder / f"{variant}_q.pt"
    return None


def torch_runner(model: nn.Module, size: int, batches: tuple[int, ...]) -> Callable[[int], Any]:
    gen = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn(b, 3, size, size, generator=gen) for b in batches}
    model = model.eval()

    def run(batch: int) -> Any:
        with torch.inference_mode():
            return model(inputs[batch])

    return run


def edgeface_candidates(variant: str, label: str, batches: tuple[int, ...]) -> list[Candidate]:
    """The float and the int8 (``_q``) form of one EdgeFace variant."""
    checkpoint = find_checkpoint(variant)
    if checkpoint is not None and not checkpoint.name.endswith("_q.pt"):
        model, weights = load_edgeface(variant, checkpoint).eval(), f"official ({checkpoint.name})"
    else:
        model, weights = create_edgeface(variant, seed=0).eval(), "random init (cost does not depend on values)"
    params, flops = count_parameters(model), count_flops(model, INPUT_SIZE)
    out = [Candidate(f"{label} float", "edgeface", INPUT_SIZE, weights, params, flops,
                     torch_runner(model, INPUT_SIZE, batches))]
    q_file = official_q_file(variant)
    if q_file is not None:
        # read_checkpoint (inside load_edgeface) reads tensors only and dequantizes the int8 weights exactly;
        # dynamic quantization then gives them back their int8 form
        quantized = deploy.quantize_torch_dynamic(load_edgeface(variant, q_file).eval())
        q_weights = f"official ({q_file.name})"
    else:
        quantized = deploy.quantize_torch_dynamic(model)
        q_weights = f"{weights}, quantized as the official _q files are (no {variant}_q.pt found)"
    out.append(Candidate(f"{label} int8 (dynamic, the _q form)", "edgeface", INPUT_SIZE, q_weights, params, flops,
                         torch_runner(quantized, INPUT_SIZE, batches),
                         note="nn.Linear in int8 (torch.ao dynamic), convolutions float; FLOPs: the float graph's"
                              + ("; the _q file read with read_checkpoint (int8 weights dequantized exactly) and "
                                 "quantized again" if q_file is not None else "")))
    return out


def resnet50_candidate(batches: tuple[int, ...]) -> Candidate:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet50", pretrained=False, num_classes=512).eval()
    return Candidate("ResNet-50 (timm, 512-d head) float", "resnet50", INPUT_SIZE,
                     "random init (cost does not depend on values)", count_parameters(model),
                     count_flops(model, INPUT_SIZE), torch_runner(model, INPUT_SIZE, batches),
                     note="ImageNet ResNet-50: 32x downsampling (4x4 final map at 112 px)")


def dlib_model_file() -> Path | None:
    """dlib's face recogniser file from the ``face_recognition_models`` package, found by path.

    ``importlib.util.find_spec`` locates a top-level package without running its ``__init__`` (which
    imports ``pkg_resources``, absent from recent setuptools).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / "dlib_face_recognition_resnet_model_v1.dat"
        if path.is_file():
            return path
    return None


def dlib_chips(n: int) -> tuple[list[np.ndarray], str]:
    """``n`` 150x150 RGB uint8 chips: dlib-aligned real ones from ``$HFR_ASSETS`` when present, else random."""
    from PIL import Image

    assets = os.environ.get("HFR_ASSETS")
    files = sorted((Path(assets) / "faces" / "dlib_johns").rglob("*.jpg")) if assets else []
    chips = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        if img.shape[:2] == (DLIB_CHIP, DLIB_CHIP):
            chips.append(np.ascontiguousarray(img))
    if chips:
        source = f"{len(chips)} real dlib-aligned chips (faces/dlib_johns), cycled"
        return [chips[i % len(chips)] for i in range(n)], source
    rng = np.random.default_rng(0)
    return ([rng.integers(0, 256, (DLIB_CHIP, DLIB_CHIP, 3), dtype=np.uint8) for _ in range(n)],
            "random 150x150 chips (no HFR_ASSETS faces; cost does not depend on content)")


def dlib_candidate(batches: tuple[int, ...]) -> Candidate:
    name = "dlib ResNet face recogniser (150x150 chips)"
    try:
        import dlib
    except ImportError as err:
        return Candidate(name, "dlib", DLIB_CHIP, "-", None, None, status="skipped",
                         reason=f"dlib is not installed ({err}): pip install dlib-bin")
    path = dlib_model_file()
    if path is None:
        return Candidate(name, "dlib", DLIB_CHIP, "-", None, None, status="skipped",
                         reason="face_recognition_models (dlib_face_recognition_resnet_model_v1.dat) is not installed: "
                                "pip install face-recognition-models")
    net = dlib.face_recognition_model_v1(str(path))
    chips, source = dlib_chips(max(batches))

    def run(batch: int) -> Any:
        if batch == 1:
            return net.compute_face_descriptor(chips[0], 0)
        return net.compute_face_descriptor(chips[:batch], 0)

    blas = getattr(dlib, "DLIB_USE_BLAS", None)
    return Candidate(name, "dlib", DLIB_CHIP, f"official ({path.name}), dlib {dlib.__version__}", None, None, run,
                     note=f"compute_face_descriptor on aligned 150x150 chips ({source}); 128-d; "
                          f"DLIB_USE_BLAS={blas}; not a PyTorch model: FLOPs not counted")


def flops_check(xxs: Candidate) -> dict[str, Any]:
    """Which convention reproduces the official EdgeFace-XXS 94.72 MFLOPs, and the parameter count."""
    flops_m, macs_m = xxs.flops / 1e6, xxs.flops / 2e6
    flops_rel = abs(flops_m - OFFICIAL_XXS_MFLOPS) / OFFICIAL_XXS_MFLOPS
    macs_rel = abs(macs_m - OFFICIAL_XXS_MFLOPS) / OFFICIAL_XXS_MFLOPS
    convention = ("flops" if flops_rel <= FLOPS_TOLERANCE else "multiply-adds" if macs_rel <= FLOPS_TOLERANCE
                  else "none")
    params_ok = round(xxs.params / 1e6, 2) == OFFICIAL_XXS_PARAMS_M
    return {"counter": "torch.utils.flop_counter.FlopCounterMode (2 FLOPs per multiply-add)",
            "official_mflops": OFFICIAL_XXS_MFLOPS, "official_params_m": OFFICIAL_XXS_PARAMS_M,
            "counted_mflops": flops_m, "counted_m_multiply_adds": macs_m, "params": xxs.params,
            "mflops_rel_error": flops_rel, "multiply_adds_rel_error": macs_rel, "tolerance": FLOPS_TOLERANCE,
            "official_figure_is": convention, "flops_match": convention != "none", "params_match": params_ok,
            "passed": convention != "none" and params_ok}


def bench_inference(batch: int, rounds_b1: int, rounds_bn: int, warmup: int) -> tuple[list[dict], dict]:
    batches = (1, batch)
    cands = [*edgeface_candidates("edgeface_xxs", "EdgeFace-XXS", batches),
             *edgeface_candidates("edgeface_xs", "EdgeFace-XS", batches),
             resnet50_candidate(batches), dlib_candidate(batches)]
    check = flops_check(cands[0])
    scale = 1e6 if check["official_figure_is"] != "multiply-adds" else 2e6  # the convention of the official figure
    live = {c.name: c for c in cands if c.status == "ok"}
    t1 = interleaved({n: (lambda c=c: c.run(1)) for n, c in live.items()}, rounds_b1, warmup)
    tn = interleaved({n: (lambda c=c: c.run(batch)) for n, c in live.items()}, rounds_bn, warmup)
    ref = live[REFERENCE]
    ref_lat, ref_thr = t1[REFERENCE]["median_ms"], batch / tn[REFERENCE]["median_ms"] * 1e3
    rows = []
    for c in cands:
        row: dict[str, Any] = {"model": c.name, "family": c.family, "input": f"{c.input_size}x{c.input_size}",
                               "weights": c.weights, "status": c.status, "note": c.note,
                               "params": c.params, "mflops": None if c.flops is None else c.flops / scale,
                               "m_multiply_adds": None if c.flops is None else c.flops / 2e6}
        if c.status != "ok":
            row["reason"] = c.reason
            rows.append(row)
            continue
        throughput = batch / tn[c.name]["median_ms"] * 1e3
        row.update(latency_ms=t1[c.name]["median_ms"], latency_p25_ms=t1[c.name]["p25_ms"],
                   latency_p75_ms=t1[c.name]["p75_ms"], latency_cpu_per_wall=t1[c.name]["cpu_per_wall"],
                   batch=batch, batch_ms=tn[c.name]["median_ms"], images_per_s=throughput,
                   batch_cpu_per_wall=tn[c.name]["cpu_per_wall"],
                   ratio_params=None if c.params is None else c.params / ref.params,
                   ratio_flops=None if c.flops is None else c.flops / ref.flops,
                   ratio_latency=t1[c.name]["median_ms"] / ref_lat, ratio_throughput=throughput / ref_thr)
        rows.append(row)
    return rows, check


# ------------------------------------------------------------------------------------------------
# The adaptation step per tuning policy
# ------------------------------------------------------------------------------------------------
def _nbytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def step_memory(student: nn.Module, optimizer: torch.optim.Optimizer, call: Callable[[], Any]) -> dict:
    """Bytes of one training step ``call()``: weights, gradients, optimiser state and the tensors autograd saves.

    The saved tensors are caught by ``saved_tensors_hooks`` (they pack only in the forward pass) and
    summed as unique storages, those of the student's own weights and buffers left out (counted as
    weights); gradients and optimiser state are read after the step.
    """
    own = {t.untyped_storage().data_ptr() for t in [*student.parameters(), *student.buffers()]}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key not in own:
                saved[key] = max(saved.get(key, 0), storage.nbytes())
        except (RuntimeError, NotImplementedError):  # a tensor without a plain storage
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        call()
    grads = _nbytes(p.grad for p in student.parameters() if p.grad is not None)
    state = _nbytes(v for s in optimizer.state.values() for v in s.values())
    weights = _nbytes([*student.parameters(), *student.buffers()])
    activations = sum(saved.values())
    return {"weights_bytes": weights, "grad_bytes": grads, "optimizer_state_bytes": state,
            "saved_activation_bytes": activations, "peak_bytes": weights + grads + state + activations}


def bench_training(batch: int, rounds: int, warmup: int) -> list[dict]:
    """One adaptation step per tuning policy at 112 px (reference ``full``), all interleaved.

    Each is ``optimisation_step(AdaptationStep(student, method_loss(...), ...), batch, optimizer)``: the
    step the training loop takes, with the pretrained recipe's losses (``PretrainedRecipe``: InfoNCE,
    lambda) on a batch of ``batch`` pairs of random images.
    """
    recipe = PretrainedRecipe()
    # the TrainConfig a pretrained starting model trains with (hfr_tutorial.experiment.Pretrained.train_config)
    config = replace(TrainConfig(), distill_weight=recipe.distill_weight, contrastive=recipe.contrastive)
    teacher = create_edgeface("edgeface_xxs", seed=0).eval()
    gen = torch.Generator().manual_seed(1)
    vis = torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE, generator=gen)
    other = torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE, generator=gen)
    with torch.no_grad():
        table_targets = teacher(normalize(vis))  # the table computed once before training, looked up per batch
    data = {"vis": vis, "other": other, "label": torch.arange(batch), "vis_index": torch.arange(batch)}
    runs = [(p, False) for p in POLICIES if p != "frozen"] + [("paper", True)]
    setups: dict[str, tuple[Callable[[], None], Any, dict]] = {}
    for policy, teacher_each_step in runs:
        student = copy.deepcopy(teacher).train()
        report = apply_policy(student, policy)
        opt = adamw(trainable_parameters(student), lr=1e-4, weight_decay=config.weight_decay)
        loss = method_loss(AdaptSettings(policy=policy).resolved(config), config)
        step = (AdaptationStep(student, loss, teacher=teacher, device=CPU) if teacher_each_step
                else AdaptationStep(student, loss, teacher_targets=table_targets, device=CPU))

        def call(step=step, opt=opt) -> None:
            optimisation_step(step, data, opt)

        memory = step_memory(student, opt, call)  # also the first (warm-up) step
        name = f"{policy} (teacher forward every step)" if teacher_each_step else policy
        setups[name] = (call, report, memory)
    times = interleaved({n: s[0] for n, s in setups.items()}, rounds, warmup=max(0, warmup - 1))
    ref_t, ref = times["full"]["median_ms"], setups["full"]
    rows = []
    for name, (_, report, memory) in setups.items():
        ms = times[name]["median_ms"]
        rows.append({"policy": name, "trainable": report.trainable, "total": report.total,
                     "percent": 100 * report.fraction, **memory, "ms_per_step": ms,
                     "p25_ms": times[name]["p25_ms"], "p75_ms": times[name]["p75_ms"],
                     "cpu_per_wall": times[name]["cpu_per_wall"], "pairs": batch, "images_per_step": 2 * batch,
                     "images_per_s": 2 * batch / ms * 1e3, "ratio_time": ms / ref_t,
                     "ratio_trainable": report.trainable / ref[1].trainable,
                     "ratio_optimizer_state": memory["optimizer_state_bytes"] / ref[2]["optimizer_state_bytes"],
                     "ratio_peak": memory["peak_bytes"] / ref[2]["peak_bytes"]})
    return rows


# ------------------------------------------------------------------------------------------------
# End to end: the official weights on real-photo pairs
# ------------------------------------------------------------------------------------------------
def real_face_files(limit: int | None) -> list[Path]:
    """The real face photos of ``$HFR_ASSETS/faces`` (``<set>/vis/<person>/<file>``), at most ``limit``."""
    assets = os.environ.get("HFR_ASSETS")
    if not assets:
        return []
    files = sorted(p for p in (Path(assets) / "faces").glob("*/vis/*/*")
                   if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return files[:limit] if limit else files


def photo_identities(files: list[Path], limit: int | None = None) -> list[list[Path]]:
    """Every two photos of one person as an identity of their own (a person's odd last photo left out), at most
    ``limit`` identities: many identities for batches of distinct ones, two VIS photos each for dev and eval."""
    by_person: dict[Path, list[Path]] = {}
    for f in files:
        by_person.setdefault(f.parent, []).append(f)
    out = [photos[i:i + 2] for photos in by_person.values() for i in range(0, len(photos) - 1, 2)]
    return out[:limit] if limit else out


def prepare_layout(identities: list[list[Path]], root: Path, split: str) -> float:
    """The photos as a user's standard layout under ``root`` (``data_scripts/prepare_folder.py``: crops already,
    simulated NIR and thermal, 112 px, ``split``); returns its seconds."""
    from data_scripts import prepare_folder

    src = root / "photos"
    for k, photos in enumerate(identities):
        folder = src / f"{k:04d}_{photos[0].parent.name}"
        folder.mkdir(parents=True)
        for f in photos:
            shutil.copyfile(f, folder / f.name)  # a copy: prepare_folder refuses links leading outside --source
    t0 = time.perf_counter()
    prepare_folder.main(["--source", str(src), "--out", str(root / "layout"), "--pseudo", "nir,thermal",
                         "--size", str(INPUT_SIZE), "--split", split, "--detector", "none", "--no-progress"])
    return time.perf_counter() - t0


@contextlib.contextmanager
def fresh_cache(folder: Path) -> Iterator[None]:
    """The artifact cache (``HFR_CACHE``) pointed at an empty ``folder`` for the duration: the run trains here."""
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = before


def bench_end_to_end(quick: bool, device: str, epochs: int) -> dict[str, Any]:
    """The official weights adapted by the method on real-photo pairs, through ``run(Experiment(...))``."""
    checkpoint = find_checkpoint("edgeface_xxs")
    if checkpoint is None:
        return {"status": "skipped",
                "reason": "the official edgeface_xxs weights are not on this disk. " + weights_hint()}
    # the VIS guard decides whether a model is kept, not what its training costs: off here (a drop of AUC 1.0),
    # so that the few dev identities of these pseudo-identities never leave the timed run unrecorded
    preset = get_preset("fast").replace(pretrained__max_dev_vis_auc_drop=1.0)
    if quick:
        preset = preset.replace(pretrained__batch_size=4, pretrained__pairs_per_identity=1)
    recipe = preset.pretrained
    split = "0.5,0.25,0.25" if quick else "0.8,0.1,0.1"
    identities = photo_identities(real_face_files(None), 4 * recipe.batch_size if quick else None)
    needed = int(np.ceil(recipe.batch_size / float(split.split(",")[0]))) + 4
    if len(identities) < needed:
        return {"status": "skipped",
                "reason": f"{len(identities)} identities of two real photos found under $HFR_ASSETS/faces (HFR_ASSETS="
                          f"{os.environ.get('HFR_ASSETS')!r}); a batch of {recipe.batch_size} distinct training "
                          f"identities beside dev and eval ones needs {needed}: set HFR_ASSETS to the assets folder"}
    run_name = METHOD_RUN
    with tempfile.TemporaryDirectory(prefix="bench-cost112-") as tmp:
        prepare_s = prepare_layout(identities, Path(tmp), split)
        experiment = Experiment(LayoutData(Path(tmp) / "layout", "default"), Pretrained("edgeface_xxs", checkpoint),
                                runs=(run_name,), preset=preset, lr=recipe.lr_grid[0], epochs=epochs)
        faceset = experiment.data.folds(preset, experiment.seed, progress=False)["default"]
        full, train = training_split(experiment, faceset)
        config = experiment.adapt_config(full, train)
        steps = len(train.pair_loader(config.batch_size, seed=experiment.seed, epoch=0,
                                      pairs_per_identity=config.adapt_pairs_per_identity,
                                      modalities=cross_modalities(train.modalities), drop_last=True))
        teacher = load_edgeface("edgeface_xxs", checkpoint).eval()
        t0 = time.perf_counter()
        teacher_embeddings(teacher, train, batch_size=2 * config.batch_size, device=device)
        setup_s = time.perf_counter() - t0
        with fresh_cache(Path(tmp) / "cache"):
            metrics = run(experiment, Path(tmp) / "run", device=device, workers=1, progress=False, figures=False)
    fold = metrics["folds"]["default"]
    record = fold["models"][run_name]
    if record.get("status", "ok") != "ok":
        return {"status": "refused", "reason": f"the experiment did not keep {run_name}: {record.get('reason')}"}
    epoch_s = float(record["history"][-1]["seconds"])
    images_per_s = steps * 2 * config.batch_size / epoch_s
    full_recipe = PretrainedRecipe() if quick else recipe
    casia_pairs = CASIA_IDENTITIES * full_recipe.pairs_per_identity
    n_ids = len(np.unique(train.identities))
    return {"status": "ok", "weights": f"official ({checkpoint.name})", "run": run_name,
            "vis_guard": "off (PretrainedRecipe.max_dev_vis_auc_drop=1.0): the run is timed, not judged",
            "policy": get_run(run_name).settings.policy,  # type: ignore[union-attr]
            "trainable": record["trainable_params"], "device": metrics["device"], "trained_here": not record["from_cache"],
            "data": f"{2 * len(identities)} real face photos from $HFR_ASSETS/faces (every two of a person one "
                    f"identity), through data_scripts/prepare_folder.py --pseudo nir,thermal --detector none --size "
                    f"{INPUT_SIZE} --split {split}",
            "photos": 2 * len(identities), "identities": n_ids, "split_identities": fold["identities"],
            "images": len(train), "prepare_seconds": prepare_s, "preset": preset.name,
            "batch_pairs": config.batch_size, "pairs_per_identity": config.adapt_pairs_per_identity,
            "lr": record["lr"], "epochs": epochs, "steps_per_epoch": steps, "last_epoch_seconds": epoch_s,
            "epoch_includes": f"the per-epoch dev rank-1 validation ({fold['identities']['dev']} dev identities)",
            "seconds_per_step": epoch_s / steps, "images_per_s": images_per_s, "pairs_per_s": images_per_s / 2,
            "setup_seconds": setup_s, "setup_vis_images": int(np.sum(train.modalities == "vis")),
            "experiment_seconds": metrics["wall_seconds"],
            "casia": {"identities": CASIA_IDENTITIES, "pairs_per_identity": full_recipe.pairs_per_identity,
                      "batch_pairs": full_recipe.batch_size, "pairs": casia_pairs,
                      "steps": casia_pairs // full_recipe.batch_size,
                      "minutes_per_epoch": casia_pairs * 2 / images_per_s / 60,
                      "note": "from the measured images per second" + (" (quick: measured at batch "
                                                                       f"{config.batch_size}, not the recipe's "
                                                                       f"{full_recipe.batch_size})" if quick else "")}}


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
def _fmt(value: Any, spec: str, dash: str = "-") -> str:
    return dash if value is None else format(value, spec)


def inference_table(rows: list[dict], batch: int) -> str:
    lines = ["| model | input | params | MFLOPs | latency, batch 1 | CPU / wall | throughput, batch "
             f"{batch} | x XXS params | x XXS FLOPs | x XXS latency | x XXS throughput |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | {r['input']} | skipped: {r['reason']} |  |  |  |  |  |  |  |  |")
            continue
        lines.append(f"| {r['model']} | {r['input']} | {_fmt(r['params'], ',')} | {_fmt(r['mflops'], '.1f')} | "
                     f"{r['latency_ms']:.1f} ms | {r['latency_cpu_per_wall']:.1f} | {r['images_per_s']:.0f} faces/s | "
                     f"{_fmt(r['ratio_params'], '.2f')} | {_fmt(r['ratio_flops'], '.2f')} | "
                     f"{r['ratio_latency']:.2f} | {r['ratio_throughput']:.3f} |")
    return "\n".join(lines)


def training_table(rows: list[dict]) -> str:
    mib = 2 ** 20
    lines = ["| tuning policy | trainable | % | optimiser state | saved activations | peak memory of the step | "
             "ms / step | images / s | x full time | x full peak memory |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['policy']} | {r['trainable']:,} | {r['percent']:.2f} | "
                     f"{r['optimizer_state_bytes'] / 1024:.0f} KiB | {r['saved_activation_bytes'] / mib:.0f} MiB | "
                     f"{r['peak_bytes'] / mib:.0f} MiB | {r['ms_per_step']:.0f} | {r['images_per_s']:.0f} | "
                     f"{r['ratio_time']:.2f} | {r['ratio_peak']:.2f} |")
    return "\n".join(lines)


def check_line(check: dict) -> str:
    verdict = {"flops": "matches the counted FLOPs (2 per multiply-add)",
               "multiply-adds": "matches the counted multiply-adds",
               "none": "matches neither convention"}[check["official_figure_is"]]
    return (f"FLOPs check (EdgeFace-XXS, one 112x112 image, {check['counter']}): counted "
            f"{check['counted_mflops']:.2f} MFLOPs = {check['counted_m_multiply_adds']:.2f} M multiply-adds, "
            f"{check['params']:,} parameters; the official {check['official_mflops']} MFLOPs {verdict} "
            f"({100 * check['mflops_rel_error']:.2f} % and {100 * check['multiply_adds_rel_error']:.1f} % off, "
            f"tolerance {100 * check['tolerance']:.0f} %), the official {check['official_params_m']} M parameters "
            f"{'match' if check['params_match'] else 'do NOT match'}: check "
            f"{'passed' if check['passed'] else 'FAILED'}.")


def end_to_end_lines(e: dict) -> list[str]:
    if e["status"] != "ok":
        return [f"- End to end (official EdgeFace-XXS on real-photo pairs): skipped: {e['reason']}"]
    c = e["casia"]
    return [f"- End to end, the method ({e['run']}, {e['trainable']:,} trainable parameters) adapting the "
            f"{e['weights']} weights on {e['device']}: {e['data']}; batch {e['batch_pairs']} pairs "
            f"({2 * e['batch_pairs']} images), {e['pairs_per_identity']} pairs per identity, {e['steps_per_epoch']} "
            f"steps per epoch: **{e['images_per_s']:.0f} images / s** ({e['seconds_per_step']:.2f} s per step, epoch "
            f"{e['epochs']} of {e['epochs']}, data loading and {e['epoch_includes']} included).",
            f"- One epoch of a CASIA-sized training set ({c['identities']} identities x {c['pairs_per_identity']} "
            f"pairs = {c['pairs']:,} pairs, {c['steps']} steps of {c['batch_pairs']}) at that rate: "
            f"**{c['minutes_per_epoch']:.1f} min** on this machine ({c['note']}); before the first epoch, the "
            f"teacher's targets take one pass over the VIS images (here {e['setup_seconds']:.1f} s for "
            f"{e['setup_vis_images']} images)."]


def headlines(result: dict) -> list[str]:
    """The ratios a reader asks for first, from the rows (a missing or skipped row is left out)."""
    inf = {r["model"]: r for r in result["inference"] if r["status"] == "ok"}
    train = {r["policy"]: r for r in result["training"]}
    out = []
    r50 = inf.get("ResNet-50 (timm, 512-d head) float")
    if r50:
        out.append(f"ResNet-50 (timm, 512-d) against EdgeFace-XXS: {r50['ratio_flops']:.1f}x the FLOPs, "
                   f"{r50['ratio_params']:.1f}x the parameters, {r50['ratio_latency']:.1f}x the batch-1 latency; "
                   f"EdgeFace-XXS embeds {1 / r50['ratio_throughput']:.1f}x as many faces per second.")
    dl = inf.get("dlib ResNet face recogniser (150x150 chips)")
    if dl:
        out.append(f"dlib's ResNet recogniser against EdgeFace-XXS: {dl['ratio_latency']:.1f}x the batch-1 latency, "
                   f"EdgeFace-XXS {1 / dl['ratio_throughput']:.1f}x the throughput (dlib kept "
                   f"{dl['batch_cpu_per_wall']:.1f} cores busy, PyTorch {inf[REFERENCE]['batch_cpu_per_wall']:.1f}).")
    q = inf.get("EdgeFace-XXS int8 (dynamic, the _q form)")
    if q:
        out.append(f"EdgeFace-XXS int8 (the _q form) against float: {q['ratio_latency']:.2f}x the batch-1 latency, "
                   f"{q['ratio_throughput']:.2f}x the throughput.")
    if "paper" in train:
        p = train["paper"]
        out.append(f"Adaptation step, the method's policy (paper) against full fine-tuning: {p['ratio_time']:.2f}x the "
                   f"time, {p['ratio_peak']:.2f}x the peak memory, {p['ratio_optimizer_state']:.3f}x the optimiser "
                   f"state ({p['trainable']:,} of {p['total']:,} parameters trainable).")
    return out


def report_markdown(result: dict) -> str:
    m, st = result["machine"], result["settings"]
    lines = [f"Cost at 112x112, measured side by side in one run of `python benchmarks/bench_cost112.py"
             f"{' --quick' if st['quick'] else ''}` on {m['cpu']} with {m['threads']} PyTorch "
             f"thread{'s' if m['threads'] != 1 else ''} "
             f"(torch {m['torch']}, device {m['device']}), {result['date']}: median of {st['rounds_batch1']} "
             f"interleaved rounds at batch 1, {st['rounds_batch']} at batch {st['batch']}, "
             f"{st['train_rounds']} per training step. Ratios are to EdgeFace-XXS float (inference) and to full "
             "fine-tuning (adaptation step).", "",
             *[f"- {line}" for line in result["headline"]], "",
             inference_table(result["inference"], st["batch"]), "", "- " + check_line(result["flops_check"])]
    for r in result["inference"]:
        if r["status"] == "ok":
            lines.append(f"- {r['model']}: " + (f"{r['note']}; " if r["note"] else "") + f"weights: {r['weights']}.")
    lines += ["", f"Adaptation step at 112 px (batch {st['train_pairs']} pairs = {2 * st['train_pairs']} images, "
              "InfoNCE + self-distillation, fused AdamW; EdgeFace-XXS):", "", training_table(result["training"]), "",
              "- Peak memory of the step: weights + gradients + optimiser state + the tensors autograd saves for "
              "backward (unique storages, caught with `saved_tensors_hooks`): what the step holds at the end of its "
              "forward pass, without kernel temporaries; the frozen teacher and its target table sit beside every "
              "policy and are not in it. Frozen layers save less: a frozen `nn.Linear` needs its weight, not its "
              "input, for the backward pass.",
              *end_to_end_lines(result["end_to_end"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds, batches of 4: checks the script works "
                                                             "(< 1 min)")
    parser.add_argument("--threads", type=int, default=deploy.DEFAULT_THREADS)
    parser.add_argument("--batch", type=int, default=None, help="throughput batch (default 64; quick: 4)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved rounds at batch 1 (default 100; quick: 3); the throughput batch gets a "
                             "tenth (at least 2)")
    parser.add_argument("--train-repeats", type=int, default=None, help="rounds of the training steps (default 10; "
                                                                        "quick: 2)")
    parser.add_argument("--train-batch", type=int, default=None,
                        help="pairs per training step (default PretrainedRecipe.batch_size; quick: 4)")
    parser.add_argument("--e2e-epochs", type=int, default=None, help="epochs of the end-to-end run; the last one is "
                                                                     "timed (default 2; quick: 1)")
    parser.add_argument("--device", default="cpu", help="device of the end-to-end run (cpu, cuda); the rest is CPU")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON file (default {DEFAULT_OUT.relative_to(ROOT)}; "
                                                               "quick: a temporary file)")
    args = parser.parse_args(argv)
    quick = args.quick
    batch = args.batch or (4 if quick else 64)
    rounds_b1 = args.repeats or (3 if quick else 100)
    rounds_bn = max(2, rounds_b1 // 10)
    train_rounds = args.train_repeats or (2 if quick else 10)
    train_pairs = args.train_batch or (4 if quick else PretrainedRecipe().batch_size)
    e2e_epochs = args.e2e_epochs or (1 if quick else 2)
    warmup = 1 if quick else 2
    out = args.out or (Path(tempfile.gettempdir()) / "bench_cost112_quick" / "bench.json" if quick else DEFAULT_OUT)
    start = time.perf_counter()
    torch.manual_seed(0)
    with deploy.torch_threads(args.threads):
        print(f"inference: 112 px, batch 1 x {rounds_b1} rounds and batch {batch} x {rounds_bn} rounds, interleaved",
              flush=True)
        t0 = time.perf_counter()
        inference, check = bench_inference(batch, rounds_b1, rounds_bn, warmup)
        phases = {"inference": round(time.perf_counter() - t0, 1)}
        print(check_line(check), flush=True)
        print(f"adaptation step per policy: {train_pairs} pairs x {train_rounds} rounds, interleaved "
              f"(inference took {phases['inference']:.0f} s)", flush=True)
        t0 = time.perf_counter()
        training = bench_training(train_pairs, train_rounds, warmup)
        phases["training"] = round(time.perf_counter() - t0, 1)
        print(f"end to end: official weights on real-photo pairs ({e2e_epochs} epoch(s), device {args.device}) "
              f"(training steps took {phases['training']:.0f} s)", flush=True)
        t0 = time.perf_counter()
        end_to_end = bench_end_to_end(quick, args.device, e2e_epochs)
        phases["end_to_end"] = round(time.perf_counter() - t0, 1)
    machine = {**machine_description(args.threads), "device": "cpu" if args.device == "cpu"
               else f"cpu (inference, training step); {args.device} (end to end)"}
    if args.device.startswith("cuda") and torch.cuda.is_available():
        machine["gpu"] = torch.cuda.get_device_name(0)
    result = {"machine": machine,
              "settings": {"quick": quick, "input_size": INPUT_SIZE, "batch": batch, "rounds_batch1": rounds_b1,
                           "rounds_batch": rounds_bn, "train_rounds": train_rounds, "train_pairs": train_pairs,
                           "e2e_epochs": e2e_epochs, "warmup_calls": warmup, "interleaved": True,
                           "order": "rotating each round", "statistic": "median", "reference": REFERENCE,
                           "training_reference": "full"},
              "flops_check": check, "inference": inference, "training": training, "end_to_end": end_to_end,
              "phase_seconds": phases, "seconds": round(time.perf_counter() - start, 1),
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    result["headline"] = headlines(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    out.with_suffix(".md").write_text(report_markdown(result) + "\n")
    print()
    print(report_markdown(result))
    print(f"\nwrote {out} and {out.with_suffix('.md').name} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
