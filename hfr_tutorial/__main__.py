"""Command line of hfr-tutorial (``hfr-tutorial <command>`` or ``python -m hfr_tutorial <command>``).

<<<<<<< HEAD
``run`` runs one experiment (:func:`hfr_tutorial.experiment.run`): with no data or model options the
tutorial's main job on the embedded synthetic data and the stand-in; with ``--data`` and/or
``--model`` a pretrained EdgeFace on a layout (or on the embedded data), through the same code.
=======
``run`` with no data or model options is the tutorial's main job on the embedded synthetic data;
with ``--data`` and/or ``--model`` it adapts a pretrained EdgeFace (:mod:`hfr_tutorial.experiment`).
``export`` writes checked ONNX and int8 forms of a checkpoint (:mod:`hfr_tutorial.deploy`).
>>>>>>> h-plotsdeploy
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Lightweight cross-spectral face recognition: adapt EdgeFace to NIR and thermal faces.

examples:
  hfr-tutorial run                                   the whole tutorial on the embedded synthetic data
  hfr-tutorial run --data LAYOUT --model edgeface_xxs  adapt the official weights on your layout
  hfr-tutorial run --data CASIA --protocol view2 --model edgeface_xxs   every fold, mean and std
  hfr-tutorial weights                               where the official weights are found
  hfr-tutorial export --checkpoint CKPT --out model.onnx --int8 dynamic   checked ONNX and int8 for the edge
"""


def _presets() -> list[str]:
    from .config import PRESETS

    return sorted(PRESETS)


def _run_names() -> list[str]:
    from .runs import RUNS

    return list(RUNS)


def _cmd_run(args: argparse.Namespace) -> int:
    from .experiment import experiment_from_args, run

    experiment = experiment_from_args(data=args.data, protocol=args.protocol, model=args.model, variant=args.variant,
                                      runs=args.runs, preset=args.preset, seed=args.seed, lr=args.lr,
                                      epochs=args.epochs, batch_size=args.batch_size, bf16=args.bf16)
    out = args.out if args.out is not None else Path("runs") / (
        ("real-" if args.data is not None or args.model not in (None, "baseline") else "") + experiment.preset.name)
    run(experiment, out, device=args.device, workers=args.build_workers, num_workers=args.num_workers,
        progress=not args.quiet, checkpoints=not args.no_checkpoints, overwrite=args.overwrite)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from .artifacts import load_faceset
    from .data.layout import check_layout_target

    # before the faces are generated: a layout already at --out is replaced only with --overwrite
    check_layout_target(args.out, args.overwrite, hint="pass --overwrite")
    faceset = load_faceset(args.preset, seed=args.seed)
    faceset.write_layout(args.out, overwrite=args.overwrite)
    print(f"Wrote {len(faceset)} images in the standard layout to {args.out}")
    return 0


def _cmd_variants(args: argparse.Namespace) -> int:
    from .models import VARIANTS

    for name, spec in sorted(VARIANTS.items()):
        print(f"{name:22s} {spec.arch:18s} {spec.params:>12,d} params  {spec.description}")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from .models import find_checkpoint, list_variants, weights_hint

    missing = []
    for name in list_variants():
        path = find_checkpoint(name)
        print(f"{name:22s} {path if path else 'not found'}")
        if path is None:
            missing.append(name)
    if missing:
        print(f"\nMissing: {', '.join(missing)}. {weights_hint(missing[0])}")
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _int8_path(out: Path, mode: str) -> Path:
    """Where ``export --int8 MODE`` writes its int8 model: beside ``--out``."""
    return out.with_name(f"{out.stem}.int8-{mode}.onnx")


def _cmd_export(args: argparse.Namespace) -> int:
    """``hfr-tutorial export``: checkpoint -> checked ONNX (and int8), with size, agreement and latency.

    Writes ``--out`` (float ONNX) and, with ``--int8``, ``<out stem>.int8-<mode>.onnx`` beside it;
    prints the size on disk of each form, the agreement with the float PyTorch model (cosine mean
    and min, rank-1 and EER per protocol) and the latency at batch 1 and throughput at batch 64.
    Refused before any work: an ``--out`` that is not a ``.onnx`` name, a file that exists (either
    output) without ``--overwrite``, and an ``--image-size`` the weights were not trained at (the
    official weights take 112 px; :func:`hfr_tutorial.deploy.check_export_size`).  Each file is written
    atomically (no ``.tmp`` is left, whatever fails).  Raises
    :class:`~hfr_tutorial.deploy.DeploymentError` (exit code 2) when a form fails its agreement
    threshold; the failing file is removed rather than left to be shipped.  Taught in
    ``notebooks/08_edge_deployment.ipynb``.
    """
    import numpy as np

    from . import deploy
    from .environment import machine_description
    from .models import load_edgeface

    deploy.require_deploy_packages()
    out = Path(args.out)
    if out.suffix != ".onnx":
        raise ValueError(f"--out {str(out)!r}: give a file name ending in .onnx (e.g. --out model.onnx).")
    image_size = deploy.check_export_size(args.image_size, args.checkpoint)
    targets = {"--out": out, **({"the int8 file (beside --out)": _int8_path(out, args.int8)} if args.int8 else {})}
    for what, target in targets.items():
        deploy.check_destination(target, overwrite=args.overwrite, what=what, fix="pass --overwrite")
    for flag, value in (("--threads", args.threads), ("--repeats", args.repeats), ("--max-faces", args.max_faces),
                        ("--max-calibration", args.max_calibration)):
        if value < 1:
            raise ValueError(f"{flag} {value}: give a whole number >= 1.")
    model = load_edgeface(args.variant, args.checkpoint)
    print(f"Loaded {args.variant} from {args.checkpoint} ({deploy.file_size(args.checkpoint) / 1e6:.2f} MB on disk)")
    if args.faces:
        images, ids, mods = deploy.layout_faces(args.faces, image_size, max_faces=args.max_faces)
        source = f"the layout {args.faces}"
    else:
        images, ids, mods = deploy.synthetic_faces(image_size)
        source = "embedded synthetic faces"
    print(f"Agreement set: {len(images)} faces of {len(np.unique(ids))} identities "
          f"({', '.join(dict.fromkeys(mods.tolist()))}) from {source}, {image_size}px")

    info = deploy.export_onnx(model, out, image_size=image_size, overwrite=args.overwrite)
    print(f"Exported {out} with {info.exporter} in {info.seconds:.1f} s (opset {info.opset}, dynamic batch); "
          "onnx.checker and the integrity checksum passed")
    threads = args.threads
    reference = deploy.torch_form(model, "PyTorch float", image_size=image_size)
    forms = [reference, deploy.onnx_form(out, "ONNX float", threads=threads)]
    checks = [(forms[1], deploy.FLOAT_THRESHOLD)]
    if args.int8:
        dst = _int8_path(out, args.int8)
        if args.int8 == "dynamic":
            deploy.quantize_onnx_dynamic(out, dst, overwrite=args.overwrite)
            threshold = deploy.INT8_THRESHOLD
        else:
            if args.calibration:
                calib, _, _ = deploy.layout_faces(args.calibration, image_size, max_faces=args.max_calibration)
                calib_source = f"the layout {args.calibration}"
            else:
                calib, _, _ = deploy.synthetic_faces(image_size,
                                                     identities=range(30_000, 30_000 + max(1, args.max_calibration // 6)))
                calib_source = "embedded synthetic faces (other identities than the agreement set)"
            deploy.quantize_onnx_static(out, dst, calib, overwrite=args.overwrite)
            print(f"Calibrated static int8 on {len(calib)} faces from {calib_source}")
            threshold = deploy.INT8_STATIC_THRESHOLD
        quantized = deploy.onnx_form(dst, f"ONNX int8 ({args.int8})", threads=threads)
        forms.append(quantized)
        checks.append((quantized, threshold))
    print("\nSize on disk:")
    print(f"  {'checkpoint (PyTorch float)':28s} {_mb(deploy.file_size(args.checkpoint))}")
    for form in forms[1:]:
        print(f"  {form.name + ' ' + str(form.path.name):28s} {_mb(form.size_bytes)}")
    print("\nAgreement with the float PyTorch model:")
    failed = []
    ref_emb = deploy.embed_form(reference, images)
    for form, threshold in checks:
        agreement = deploy.compare_embeddings(ref_emb, deploy.embed_form(form, images), form=form.name,
                                              threshold=threshold, identities=ids, modalities=mods, strict=False)
        print(agreement.summary())
        if not agreement.passed:
            failed.append((form, agreement))
    if not args.no_bench:
        table = deploy.benchmark_forms(forms, batches=(1, 64),
                                       repeats={1: args.repeats, 64: max(3, args.repeats // 10)}, threads=threads)
        print(f"\nLatency on this CPU ({machine_description(threads)['cpu']}, {threads} threads; median of "
              "interleaved runs):")
        for form in forms:
            b1 = table[(table.form == form.name) & (table.batch == 1)].iloc[0]
            b64 = table[(table.form == form.name) & (table.batch == 64)].iloc[0]
            print(f"  {form.name:18s} batch 1: {b1.median_ms:7.2f} ms   batch 64: {b64.images_per_s:7.0f} faces/s")
    if failed:
        for form, _ in failed:
            if form.path is not None:
                form.path.unlink(missing_ok=True)
        names = ", ".join(f"{f.name} ({'; '.join(a.failures)})" for f, a in failed)
        raise deploy.DeploymentError(f"not shipped, removed: {names}. See the agreement lines above.")
    print(f"\nAll forms agree within their thresholds; wrote {', '.join(str(f.path) for f in forms[1:])}")
    return 0


def _add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``export`` on the command line's subparsers."""
    from .deploy.export import DEFAULT_THREADS
    from .models import INPUT_SIZE, list_variants

    p = subparsers.add_parser(
        "export", help="export a checkpoint to checked ONNX (float, int8), with size, agreement and latency",
        description="Export an EdgeFace checkpoint to ONNX (torch.onnx.export, dynamo=True; dynamic batch),\n"
                    "check it (onnx.checker, integrity checksum, agreement with the float PyTorch model on faces)\n"
                    "and time it. With --int8 an onnxruntime int8 model is written beside --out\n"
                    "(<stem>.int8-<mode>.onnx). A form that fails its agreement threshold is removed and the\n"
                    "command exits with code 2. An existing file is replaced only with --overwrite; the\n"
                    "official weights export only at the 112 px they were trained at.\n\nexamples:\n"
                    "  hfr-tutorial export --checkpoint edgeface_xxs_float.pt --out xxs.onnx --int8 dynamic\n"
                    "  hfr-tutorial export --checkpoint model.pt --image-size 64 --out adapted.onnx --int8 static "
                    "--calibration LAYOUT",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="EdgeFace checkpoint (.pt: official float or _q "
                                                                   "file, or a model.pt of the cache)")
    p.add_argument("--variant", default="edgeface_xxs", choices=list_variants(),
                   help="EdgeFace variant (default edgeface_xxs)")
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write (float); int8 goes beside it")
    p.add_argument("--overwrite", action="store_true", help="replace --out (and the int8 file) if they exist")
    p.add_argument("--int8", choices=("dynamic", "static"), default=None,
                   help="also write an onnxruntime int8 model: dynamic, or static QDQ calibrated on faces")
    p.add_argument("--calibration", type=Path, default=None,
                   help="standard layout whose faces calibrate --int8 static (default: synthetic faces)")
    p.add_argument("--faces", type=Path, default=None,
                   help="standard layout of faces for the agreement check (default: synthetic faces)")
    p.add_argument("--image-size", type=int, default=INPUT_SIZE,
                   help=f"input side in pixels, a multiple of 16 (default {INPUT_SIZE}, the only size of the official "
                        "weights; the embedded fast models use 64)")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help=f"CPU threads for the timings (default {DEFAULT_THREADS})")
    p.add_argument("--repeats", type=int, default=30, help="timed calls at batch 1 (batch 64: a tenth, at least 3)")
    p.add_argument("--max-faces", type=int, default=512, help="at most this many faces of --faces")
    p.add_argument("--max-calibration", type=int, default=96, help="at most this many calibration faces")
    p.add_argument("--no-bench", action="store_true", help="skip the latency measurement")
    p.set_defaults(func=_cmd_export)
    return p


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="hfr-tutorial", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hfr-tutorial {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="the whole pipeline, ending in a report (embedded data, or your data and model)",
                         description="Run the method end to end and write metrics.json, report.md and figures/. "
                                     "Without --data/--model: the embedded synthetic data and the RGB baseline "
                                     "trained here. With them: a pretrained EdgeFace adapted on a standard layout.")
    run.add_argument("--preset", choices=_presets(), default=None,
                     help="sizes and budgets: fast (CPU, the default via HFR_PRESET), full (GPU) or smoke (seconds; "
                          "its numbers mean nothing)")
    run.add_argument("--data", type=Path, default=None, metavar="LAYOUT",
                     help="a standard layout (data_scripts/ write one); default: the embedded synthetic data")
    run.add_argument("--protocol", default=None, metavar="NAME",
                     help="protocol of the layout (default: its default.csv); a family name such as view2 runs "
                          "every fold view2_1, view2_2 ... and reports mean and std")
    run.add_argument("--model", default=None, metavar="VARIANT|CHECKPOINT",
                     help="starting model: 'baseline' (trained here on the embedded data; the default without "
                          "--data), a variant whose official weights are on disk (edgeface_xxs, the default with "
                          "--data) or a checkpoint file")
    run.add_argument("--variant", default=None, help="the EdgeFace variant of a --model checkpoint file (default: "
                                                     "guessed from its keys)")
    run.add_argument("--runs", nargs="+", default=None, choices=_run_names(), metavar="RUN",
                     help="runs to include (default: all; with a pretrained model all but joint/oracle). "
                          f"Choices: {', '.join(_run_names())}")
    run.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                     help="where training and evaluation run (default auto: CUDA when present)")
    run.add_argument("--out", type=Path, default=None,
                     help="output folder (default runs/<preset>, or runs/real-<preset> with a pretrained model)")
    run.add_argument("--seed", type=int, default=0, help="seed of data, splits and training (default 0)")
    run.add_argument("--epochs", type=int, default=None,
                     help="adaptation epochs (default: the starting model's recipe in the preset)")
    run.add_argument("--batch-size", type=int, default=None,
                     help="identities per adaptation batch, at least 2 (default: the starting model's recipe)")
    run.add_argument("--lr", type=float, default=None,
                     help="one learning rate for every run (default: each run's rate chosen on dev: fixed for the "
                          "stand-in, from the preset's grid for a pretrained model)")
    run.add_argument("--num-workers", type=int, default=None, help="data-loader worker processes (default: the preset's)")
    run.add_argument("--build-workers", type=int, default=None, metavar="N",
                     help="on a CPU, train missing models N at a time in separate processes, one thread each "
                          "(default: HFR_BUILD_WORKERS, else 2 on 2 or more cores; 1 trains them one after another)")
    run.add_argument("--bf16", action="store_true",
                     help="bfloat16 autocast for the student's forward pass (CUDA only; refused on a CPU)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the result of another experiment in --out (refused without it)")
    run.add_argument("--no-checkpoints", action="store_true",
                     help="do not copy the adapted models into --out/checkpoints/ (they stay in the cache)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(func=_cmd_run)
    data = sub.add_parser("data", help="write the embedded synthetic faces in the standard layout",
                          description="Write the embedded synthetic VIS/NIR/thermal faces of a preset as a standard "
                                      "layout (dataset.json, images/, protocols/default.csv).")
    data.add_argument("--preset", choices=_presets(), default=None, help="which preset's data (default: HFR_PRESET or fast)")
    data.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    data.add_argument("--out", type=Path, required=True, help="folder to write the layout to")
    data.add_argument("--overwrite", action="store_true", help="replace a layout already at --out")
    data.set_defaults(func=_cmd_data)
    sub.add_parser("variants", help="list the EdgeFace variants and their sizes",
                   description="List the registered EdgeFace variants.").set_defaults(func=_cmd_variants)
    sub.add_parser("weights", help="where the official EdgeFace weights are found on disk",
                   description="Say where the official weights of each variant are found on disk, and how to get "
                               "the missing ones.").set_defaults(func=_cmd_weights)
    _add_export_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"hfr-tutorial {args.command}: interrupted. Models already trained stay in the cache (HFR_CACHE) and a "
              "model interrupted mid-training resumes from its last epoch: run the same command again. --out was "
              "left as it was before this run.", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError, ImportError, FloatingPointError) as exc:
        print(f"hfr-tutorial {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"hfr-tutorial {args.command}: error: {exc.strerror or exc}{where}. Check that the path exists, that "
              "you may read and write it (--out, --data, HFR_CACHE) and that its disk has space.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
