"""Command line: ``python -m hfr_tutorial <command>`` (also installed as ``hfr-tutorial``).

Commands:
  run        the whole tutorial pipeline headless: data, baseline, comparison runs, evaluation,
             report (``--preset fast --out runs/fast``)
  data       write the synthetic cross-spectral faces in the standard on-disk layout
  variants   list the EdgeFace variants and their sizes
  weights    say where the official EdgeFace weights are found on disk (or how to get them)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import run_pipeline

    run_pipeline(args.preset, out=args.out, seed=args.seed, runs=args.runs, progress=not args.quiet)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from .artifacts import load_faceset

    faceset = load_faceset(args.preset, seed=args.seed)
    faceset.write_layout(args.out)
    print(f"Wrote {len(faceset)} images in the standard layout to {args.out}")
    return 0


def _cmd_variants(args: argparse.Namespace) -> int:
    from .models import VARIANTS

    for name, spec in sorted(VARIANTS.items()):
        print(f"{name:22s} {spec.arch:18s} {spec.params:>12,d} params  {spec.description}")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from .models import find_checkpoint, list_variants
    from .models.edgeface import HUB_REPO

    for name in list_variants():
        path = find_checkpoint(name)
        print(f"{name:22s} {path if path else 'not found'}")
    print(f"\nMissing weights: set HFR_ASSETS to a folder with weights/<variant>_float.pt, or, with network access, "
          f"run python -c \"import torch; torch.hub.load('{HUB_REPO}', 'edgeface_xxs', source='github', pretrained=True)\".")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfr-tutorial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole pipeline, ending in a report")
    run.add_argument("--preset", default=None, help="fast (CPU, default via HFR_PRESET) or full (GPU)")
    run.add_argument("--out", type=Path, default=Path("runs/fast"), help="output folder (default runs/fast)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--runs", nargs="*", default=None, help="comparison runs to include (default: all)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(func=_cmd_run)
    data = sub.add_parser("data", help="write the synthetic faces in the standard layout")
    data.add_argument("--preset", default=None)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--out", type=Path, required=True)
    data.set_defaults(func=_cmd_data)
    sub.add_parser("variants", help="list EdgeFace variants").set_defaults(func=_cmd_variants)
    sub.add_parser("weights", help="where the official weights are").set_defaults(func=_cmd_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"hfr-tutorial {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
