"""Command line of hfr-tutorial (``hfr-tutorial <command>`` or ``python -m hfr_tutorial <command>``).

``run`` runs one experiment (:func:`hfr_tutorial.experiment.run`): with no data or model options the
tutorial's main job on the embedded synthetic data and the stand-in; with ``--data`` and/or
``--model`` a pretrained EdgeFace on a layout (or on the embedded data), through the same code.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Lightweight cross-spectral face recognition: adapt EdgeFace to NIR and thermal faces.

examples:
  hfr-tutorial run                                   the whole tutorial on the embedded synthetic data
  hfr-tutorial run --data LAYOUT --model edgeface_xxs  adapt the official weights on your layout
  hfr-tutorial run --data CASIA --protocol view2 --model edgeface_xxs   every fold, mean and std
  hfr-tutorial weights                               where the official weights are found
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
        progress=not args.quiet, overwrite=args.overwrite)
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
    try:
        from .deploy import add_export_parser
    except ImportError:  # onnx / onnxruntime not installed: no export command
        pass
    else:
        add_export_parser(sub)
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
