"""Deployment cost of EdgeFace side by side: PyTorch float / PyTorch int8 / ONNX float / ONNX int8.

Run: ``python benchmarks/bench_deploy.py [--quick] [--sizes 112 64] [--threads 2] [--repeats 200]
[--out docs/results/deploy/bench.json]``

For each input size, one EdgeFace-XXS is exported and quantized into every deployable form
(:mod:`hfr_tutorial.deploy`), then all forms are timed **in the same run, interleaved** (one call
per form in turn, the order rotating each round; median of the repeats) at batch 1 (latency) and
batch 64 (throughput), with PyTorch and onnxruntime both on ``--threads`` CPU threads.  Size on
disk is that of the file each form ships as (``torch.save`` of the state dict, or the ``.onnx``).

The weights are the official ``edgeface_xxs`` ones where :func:`~hfr_tutorial.models.find_checkpoint`
finds them, else a seeded random initialisation: the cost of a form does not depend on the
values of its weights (the graph, the shapes and the operators are the same), which is also why
the adapted model costs what the baseline costs.  Every exported form is checked against the
float model first (``onnx.checker``, digest, agreement on synthetic faces); a form that fails is
not timed.

The JSON (default ``docs/results/deploy/bench.json``) holds the machine (CPU model, cores, threads,
torch / onnxruntime versions), the settings and one row per (size, form, batch).  ``--quick``
(a few repeats, 112 px only, written to a temporary file unless ``--out`` is given) checks that
the script works in under a minute; its timings mean little.  Timings are only comparable within
one run on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from hfr_tutorial import deploy
from hfr_tutorial.environment import machine_description
from hfr_tutorial.models import create_edgeface, find_checkpoint, load_edgeface

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "results" / "deploy" / "bench.json"


def build_forms(size: int, folder: Path, threads: int, calibration: int,
                check_ids: int = 20) -> tuple[list[deploy.Form], dict]:
    """Export and quantize one model at ``size`` px; every form checked against the float model."""
    checkpoint = find_checkpoint("edgeface_xxs")
    if checkpoint is not None:
        model, weights = load_edgeface("edgeface_xxs", checkpoint).eval(), f"official ({checkpoint.name})"
    else:
        model, weights = create_edgeface("edgeface_xxs", seed=0).eval(), "random init (cost does not depend on values)"
    onnx_path = folder / f"edgeface_xxs_{size}.onnx"
    info = deploy.export_onnx(model, onnx_path, image_size=size)
    dyn = deploy.quantize_onnx_dynamic(onnx_path, folder / f"edgeface_xxs_{size}.int8-dynamic.onnx")
    calib, _, _ = deploy.synthetic_faces(size, identities=range(30_000, 30_000 + max(1, calibration // 6)))
    static = deploy.quantize_onnx_static(onnx_path, folder / f"edgeface_xxs_{size}.int8-static.onnx", calib)
    forms = [deploy.torch_form(model, "PyTorch float", image_size=size, path=folder / f"float_{size}.pt"),
             deploy.torch_form(deploy.quantize_torch_dynamic(model), "PyTorch int8 (dynamic)", image_size=size,
                               path=folder / f"int8_{size}.pt"),
             deploy.onnx_form(onnx_path, "ONNX float", threads=threads),
             deploy.onnx_form(dyn, "ONNX int8 (dynamic)", threads=threads),
             deploy.onnx_form(static, "ONNX int8 (static QDQ)", threads=threads)]
    images, ids, mods = deploy.synthetic_faces(size, identities=range(20_000, 20_000 + check_ids))
    reference = deploy.embed_form(forms[0], images)
    thresholds = [None, deploy.INT8_THRESHOLD, deploy.FLOAT_THRESHOLD, deploy.INT8_THRESHOLD,
                  deploy.INT8_STATIC_THRESHOLD]
    agreement, kept = {}, []
    for form, threshold in zip(forms, thresholds):
        if threshold is None:
            kept.append(form)
            continue
        a = deploy.compare_embeddings(reference, deploy.embed_form(form, images), form=form.name, threshold=threshold,
                                      identities=ids, modalities=mods, strict=False)
        agreement[form.name] = {"cos_mean": a.cos_mean, "cos_min": a.cos_min, "passed": a.passed,
                                "failures": a.failures}
        print(a.summary().splitlines()[0])
        if a.passed:
            kept.append(form)
    meta = {"size": size, "weights": weights, "export_seconds": round(info.seconds, 1), "exporter": info.exporter,
            "agreement_faces": int(len(images)), "calibration_faces": int(len(calib)), "agreement": agreement}
    return kept, meta


def markdown_table(rows: list[dict]) -> str:
    """One line per (size, form): size on disk, batch-1 latency, batch-64 throughput."""
    lines = ["| input | form | size on disk | latency, batch 1 | throughput, batch 64 |",
             "|---|---|---:|---:|---:|"]
    by_key: dict[tuple[int, str], dict[int, dict]] = {}
    for row in rows:
        by_key.setdefault((row["size"], row["form"]), {})[row["batch"]] = row
    for (size, form), batches in by_key.items():
        b1, b64 = batches.get(1), batches.get(64)
        size_mb = (b1 or b64)["size_mb"]
        latency = f"{b1['median_ms']:.2f} ms" if b1 else "-"
        throughput = f"{b64['images_per_s']:.0f} faces/s" if b64 else "-"
        lines.append(f"| {size}x{size} | {form} | {size_mb:.2f} MB | {latency} | {throughput} |")
    return "\n".join(lines)


def report_markdown(result: dict) -> str:
    """The README's deployment section: machine, settings, the table, and every form that failed its check."""
    m, st = result["machine"], result["settings"]
    lines = [f"Deployment forms of EdgeFace-XXS ({', '.join(sorted({x['weights'] for x in result['models']}))}), "
             f"measured side by side in one run of `python benchmarks/bench_deploy.py` on {m['cpu']} with "
             f"{m['threads']} threads (torch {m['torch']}, onnxruntime {m['onnxruntime']}), {result['date']}: "
             f"median of {st['repeats_batch1']} interleaved rounds at batch 1 and {st['repeats_batch64']} at batch 64.",
             "", markdown_table(result["rows"]), ""]
    for meta in result["models"]:
        checks = ", ".join(f"{name} {a['cos_mean']:.4f}" + ("" if a["passed"] else " (failed: not timed)")
                           for name, a in meta["agreement"].items())
        lines.append(f"- {meta['size']} px: mean cosine to float PyTorch over {meta['agreement_faces']} faces: "
                     f"{checks}.")
    lines.append("- Accuracy kept on the three protocols, with intervals, is in `notebooks/08_edge_deployment.ipynb`.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few repeats at 112 px only: checks the script works")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="input sizes (default 112 64; quick: 112)")
    parser.add_argument("--threads", type=int, default=deploy.DEFAULT_THREADS)
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds at batch 1 (default 200; quick: 5); "
                                                                  "batch 64 gets a tenth (at least 2)")
    parser.add_argument("--calibration", type=int, default=None, help="calibration faces for static int8 "
                                                                      "(default 96; quick: 24)")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON file (default {DEFAULT_OUT.relative_to(ROOT)}; "
                                                               "quick: a temporary file)")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([112] if args.quick else [112, 64])
    repeats = args.repeats or (5 if args.quick else 200)
    calibration = args.calibration or (24 if args.quick else 96)
    out = args.out or (Path(tempfile.gettempdir()) / "bench_deploy_quick.json" if args.quick else DEFAULT_OUT)
    start = time.perf_counter()
    torch.manual_seed(0)
    rows, models = [], []
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        for size in sizes:
            forms, meta = build_forms(size, Path(tmp), args.threads, calibration, check_ids=8 if args.quick else 20)
            models.append(meta)
            table = deploy.benchmark_forms(forms, batches=(1, 64), repeats={1: repeats, 64: max(2, repeats // 10)},
                                           warmup=1 if args.quick else 3, threads=args.threads)
            for row in table.to_dict(orient="records"):
                rows.append({"size": size, **row})
    result = {"machine": machine_description(args.threads),
              "settings": {"quick": args.quick, "sizes": sizes, "repeats_batch1": repeats,
                           "repeats_batch64": max(2, repeats // 10), "calibration_faces": calibration,
                           "warmup_calls": 1 if args.quick else 3, "interleaved": True, "statistic": "median"},
              "models": models, "rows": rows, "seconds": round(time.perf_counter() - start, 1),
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    out.with_suffix(".md").write_text(report_markdown(result) + "\n")
    machine = result["machine"]
    print(f"\n{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, "
          f"onnxruntime {machine['onnxruntime']}; median of {repeats} interleaved rounds at batch 1, "
          f"{max(2, repeats // 10)} at batch 64")
    print(markdown_table(rows))
    print(f"\nwrote {out} and {out.with_suffix('.md').name} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
