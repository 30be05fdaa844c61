"""Calibrate the simulated sensors on DEV identities: how hard is each severity for the real EdgeFace-XXS?

Run (from the repository root, with the real assets):

    HFR_ASSETS=../shared/assets python benchmarks/sensor_calibration.py \\
        [--work DIR] [--out docs/results/sensor_calibration] [--per-identity N] [--boot 1000] [--quick]

What it does, measured, never typed in:

1. builds the practice set the way a user would, with ``data_scripts/prepare_folder.py`` (detect,
   align, split 0.5/0.2/0.3 of identities with seed 0, ``--pseudo nir,thermal``) from the real VIS
   sets ``$HFR_ASSETS/faces/lfw62``, ``yaleb38`` and ``essex18`` (118 people);
2. keeps the **dev** identities only (the eval identities are never loaded: the choice of the
   default severity must not look at them);
3. renders the dev NIR and thermal probes at every candidate setting of :data:`CANDIDATES` (the
   ``mild`` severity, intermediate settings, and the library's ``realistic`` default) exactly as
   ``prepare_folder.py`` would (same per-image seeds; the ``realistic`` images are checked
   byte-for-byte against the layout's);
4. embeds them with the unadapted official EdgeFace-XXS (float weights,
   ``$HFR_ASSETS/weights/edgeface_xxs_float.pt``) and reports, per candidate, NIR->VIS and
   thermal->VIS (and VIS->VIS) EER, rank-1 and ROC AUC with 95 % bootstrap intervals over
   identities (:func:`hfr_tutorial.metrics.bootstrap_protocols`, paired across candidates).

The target (issue #26): thermal->VIS EER near the published unadapted EdgeFace on MCXFace
VIS-thermal (EER 23.06 %, rank-1 40.10 %), i.e. 20-25 %, and NIR->VIS a smaller gap than thermal.
Writes ``calibration.json`` and ``calibration.md`` (with the machine and library versions) under
``--out``.  ``--quick`` (3 photos per identity, 200 resamples, two candidates) checks the plumbing
in about a minute; its figures mean nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_scripts import prepare_folder  # noqa: E402
from hfr_tutorial.data import FaceSet  # noqa: E402
from hfr_tutorial.data.spectral import REALISTIC_NIR, REALISTIC_THERMAL, NIRSettings, ThermalSettings  # noqa: E402

SOURCES = ("lfw62", "yaleb38", "essex18")
SPLIT = "0.5,0.2,0.3"
PUBLISHED = {"source": "unadapted EdgeFace on MCXFace VIS-thermal, as quoted in issue #26",
             "thermal->vis": {"eer": 0.2306, "rank1": 0.4010}}
TARGET_EER = (0.20, 0.25)

CANDIDATES: dict[str, dict[str, Any]] = {
    "mild": {"nir": "mild", "thermal": "mild"},
    "first-guess": {"nir": REALISTIC_NIR,
                    "thermal": replace(REALISTIC_THERMAL, native_size=36, psf=0.7, relief=0.6)},
    "160x120-camera": {"nir": replace(REALISTIC_NIR, native_size=56),
                       "thermal": replace(REALISTIC_THERMAL, native_size=32, psf=0.7)},
    "strong-relief": {"nir": REALISTIC_NIR, "thermal": replace(REALISTIC_THERMAL, relief=0.6)},
    "no-relief": {"nir": REALISTIC_NIR, "thermal": replace(REALISTIC_THERMAL, relief=0.0)},
    "noise-free": {"nir": replace(REALISTIC_NIR, shot=0.0, read=0.0),
                   "thermal": replace(REALISTIC_THERMAL, netd=0.0, fpn=0.0, column=0.0)},
    "realistic": {"nir": REALISTIC_NIR, "thermal": REALISTIC_THERMAL},
}
"""Candidate settings: name -> {modality: "mild" or a settings object}.  ``realistic`` must be the
library's default (:data:`hfr_tutorial.data.spectral.REALISTIC_THERMAL` / ``REALISTIC_NIR``)."""
QUICK = ("mild", "realistic")
PROTOCOLS = ("vis->vis", "nir->vis", "thermal->vis")


def machine() -> dict[str, Any]:
    """CPU, cores and the versions the figures depend on."""
    import PIL
    import scipy
    import timm
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "timm": timm.__version__, "numpy": np.__version__, "scipy": scipy.__version__, "pillow": PIL.__version__}


def build_practice_set(assets: Path, work: Path, per_identity: int, seed: int) -> Path:
    """The practice layout (realistic severity), built by prepare_folder.py as a user would."""
    layout = work / (f"practice-{per_identity}" if per_identity else "practice")
    sources = [str(assets / "faces" / s) for s in SOURCES]
    missing = [s for s in sources if not Path(s).is_dir()]
    if missing:
        raise SystemExit(f"sensor_calibration: {missing} not found; set HFR_ASSETS to the folder holding faces/"
                         f"{{{','.join(SOURCES)}}} (see ../shared/assets/README.md).")
    argv = ["--source", *sources, "--out", str(layout), "--pseudo", "nir,thermal", "--severity", "realistic",
            "--split", SPLIT, "--seed", str(seed), "--no-progress"]
    if per_identity:
        argv += ["--per-identity", str(per_identity)]
    prepare_folder.main(argv)
    return layout


def dev_items(layout: Path) -> dict[str, Any]:
    """The dev split only: VIS gallery/probes (images, names), and the VIS photo of every NIR/thermal probe."""
    dev = FaceSet.from_layout(layout, lazy=True).select(split="dev")  # only the dev images are ever decoded
    if len(dev) == 0:
        raise SystemExit(f"{layout}: no dev identities; the calibration needs a dev split.")
    names = np.asarray(dev.identity_name(dev.identities))
    vis = np.flatnonzero(dev.modalities == "vis")
    probes = {m: np.flatnonzero(dev.modalities == m) for m in ("nir", "thermal")}
    def vis_path(path: str, m: str) -> str:  # the layout-relative path: prepare_folder.py's seeds hash it
        rel = Path(path).resolve().relative_to(layout.resolve()).as_posix()
        return rel.replace(f"images/{m}/", "images/vis/", 1)

    vis_of = {m: [vis_path(str(dev.paths[i]), m) for i in idx] for m, idx in probes.items()}
    return {"set": dev, "names": names, "vis": vis, "probes": probes, "vis_of": vis_of}


def render(layout: Path, items: dict[str, Any], setting: Any, modality: str, seed: int) -> np.ndarray:
    """The dev probes of ``modality`` rendered at ``setting`` with prepare_folder.py's own per-image seeds."""
    from PIL import Image

    out = []
    for rel in items["vis_of"][modality]:
        face = np.asarray(Image.open(layout / rel).convert("RGB"))
        out.append(prepare_folder.simulate_face(face, modality, setting, seed, rel))
    return np.stack(out)


def describe(setting: Any) -> Any:
    return setting if isinstance(setting, str) else {"class": type(setting).__name__, **asdict(setting)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=Path, default=Path(os.environ.get("HFR_ASSETS", "../shared/assets")))
    ap.add_argument("--work", type=Path, default=None, help="where the practice layout is built (default: the cache)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "sensor_calibration")
    ap.add_argument("--per-identity", type=int, default=0, help="photos per identity (default 0: all)")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="3 photos per identity, 200 resamples, mild and realistic")
    args = ap.parse_args(argv)
    if args.quick:
        args.per_identity, args.boot = args.per_identity or 3, 200
    if CANDIDATES["realistic"] != {"nir": REALISTIC_NIR, "thermal": REALISTIC_THERMAL}:
        raise SystemExit("CANDIDATES['realistic'] must be the library's default settings.")

    import torch

    from hfr_tutorial.config import cache_dir
    from hfr_tutorial.evaluate import available_protocols, embed, protocol_metrics, score_protocols
    from hfr_tutorial.models import find_checkpoint, load_edgeface
    from hfr_tutorial.metrics import bootstrap_protocols

    t0 = time.perf_counter()
    weights = args.assets / "weights" / "edgeface_xxs_float.pt"
    checkpoint = weights if weights.is_file() else find_checkpoint("edgeface_xxs")
    if checkpoint is None:
        raise SystemExit(f"sensor_calibration: no EdgeFace-XXS weights at {weights}; set HFR_ASSETS "
                         "(see the docstring).")
    work = args.work or cache_dir() / "sensor_calibration"
    layout = build_practice_set(args.assets, work, args.per_identity, args.seed)
    t_build = time.perf_counter() - t0
    items = dev_items(layout)
    dev = items["set"]
    model = load_edgeface("edgeface_xxs", checkpoint).eval()
    torch.manual_seed(0)
    vis_idx = items["vis"]
    vis_emb = embed(model, np.asarray(dev.images)[vis_idx], progress=False)
    ids = np.concatenate([dev.identities[vis_idx]] + [dev.identities[items["probes"][m]] for m in ("nir", "thermal")])
    mods = np.concatenate([dev.modalities[vis_idx]] + [dev.modalities[items["probes"][m]] for m in ("nir", "thermal")])
    roles = np.concatenate([dev.roles[vis_idx]] + [dev.roles[items["probes"][m]] for m in ("nir", "thermal")])
    protocols = tuple(p for p in PROTOCOLS if p in available_protocols(ids, mods, roles))

    names = QUICK if args.quick else tuple(CANDIDATES)
    embeddings, timings, checks = {}, {}, {}
    for name in names:
        t = time.perf_counter()
        parts = [vis_emb]
        for m in ("nir", "thermal"):
            imgs = render(layout, items, CANDIDATES[name][m], m, args.seed)
            if name == "realistic":  # the in-memory rendering is what prepare_folder.py wrote
                checks[m] = bool(np.array_equal(imgs, np.asarray(dev.images)[items["probes"][m]]))
            parts.append(embed(model, imgs, progress=False))
        embeddings[name] = np.concatenate(parts)
        timings[name] = round(time.perf_counter() - t, 1)
        print(f"{name}: rendered and embedded in {timings[name]} s", flush=True)
    if not all(checks.values()):
        raise SystemExit(f"the realistic rendering differs from the layout's images: {checks}")

    boot = bootstrap_protocols(embeddings, ids, mods, protocols, fars=(), n_boot=args.boot, seed=args.seed,
                               auc=True, roles=roles)
    results: dict[str, Any] = {}
    for name, emb in embeddings.items():
        scored = score_protocols(emb, ids, mods, protocols, roles)
        results[name] = {}
        for p in protocols:
            m = protocol_metrics(scored[p])
            row = {k: m[k] for k in ("rank1", "auc", "eer", "n_probes", "n_gallery")}
            for metric in ("rank1", "auc", "eer"):
                row[f"{metric}_ci"] = [round(v, 4) for v in boot.interval(name, p, metric)]
            results[name][p] = row
    thermal_eer = results["realistic"]["thermal->vis"]["eer"]
    record = {
        "what": "The unadapted official EdgeFace-XXS (float) on the DEV identities of a practice set made from real "
                "photos, per simulated-sensor severity",
        "command": "HFR_ASSETS=../shared/assets python benchmarks/sensor_calibration.py"
                   + (f" --per-identity {args.per_identity}" if args.per_identity and not args.quick else "")
                   + (" --quick" if args.quick else ""),
        "settings": {"sources": list(SOURCES), "split": SPLIT, "seed": args.seed, "per_identity": args.per_identity,
                     "bootstrap": args.boot, "level": 0.95, "quick": args.quick, "checkpoint": checkpoint.name},
        "dev": {"identities": int(len(np.unique(dev.identities))), "vis_gallery": int((roles == "gallery").sum()),
                "probes": {m: int(((mods == m) & (roles == "probe")).sum()) for m in ("vis", "nir", "thermal")},
                "identity_names": sorted(set(items["names"].tolist()))},
        "published": PUBLISHED, "target_thermal_eer": list(TARGET_EER),
        "default": "realistic", "default_in_target": TARGET_EER[0] <= thermal_eer <= TARGET_EER[1],
        "nir_gap_smaller_than_thermal": results["realistic"]["nir->vis"]["eer"] < thermal_eer,
        "candidates": {n: {m: describe(CANDIDATES[n][m]) for m in ("nir", "thermal")} for n in names},
        "results": results, "layout_matches_rendering": checks,
        "seconds": {"build_practice_set": round(t_build, 1), "per_candidate": timings,
                    "total": round(time.perf_counter() - t0, 1)},
        "machine": machine(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "calibration.md").write_text(markdown(record))
    print(markdown(record))
    return record


def _fmt(row: dict[str, Any], metric: str, pct: bool) -> str:
    lo, hi = row[f"{metric}_ci"]
    if pct:
        return f"{100 * row[metric]:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{row[metric]:.3f} [{lo:.3f}, {hi:.3f}]"


def markdown(record: dict[str, Any]) -> str:
    """The calibration table as Markdown."""
    dev = record["dev"]
    lo_t, hi_t = record["target_thermal_eer"]
    lines = [
        "# Sensor calibration: the simulated severities against the real EdgeFace-XXS (dev identities)",
        "",
        f"Generated by `{record['command']}`. {record['what']}: {dev['identities']} dev identities, "
        f"{dev['vis_gallery']} VIS gallery templates, probes VIS {dev['probes']['vis']}, NIR {dev['probes']['nir']}, "
        f"thermal {dev['probes']['thermal']}. The eval identities' images were never read. 95 % bootstrap "
        f"intervals over identities ({record['settings']['bootstrap']} paired resamples).",
        "",
        f"Target: thermal->VIS EER {100 * lo_t:.0f}-{100 * hi_t:.0f} % "
        f"(published: {record['published']['source']}: EER {100 * record['published']['thermal->vis']['eer']:.2f} %, "
        f"rank-1 {100 * record['published']['thermal->vis']['rank1']:.2f} %), NIR->VIS a smaller gap. "
        f"Default `realistic` in target: **{record['default_in_target']}**; NIR gap smaller than thermal: "
        f"**{record['nir_gap_smaller_than_thermal']}**.",
        "",
        "| severity | NIR->VIS EER | NIR rank-1 | NIR AUC | thermal->VIS EER | thermal rank-1 | thermal AUC "
        "| VIS->VIS EER |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, res in record["results"].items():
        n, t, v = res.get("nir->vis"), res.get("thermal->vis"), res.get("vis->vis")
        cells = [_fmt(n, "eer", True), _fmt(n, "rank1", False), _fmt(n, "auc", False),
                 _fmt(t, "eer", True), _fmt(t, "rank1", False), _fmt(t, "auc", False),
                 _fmt(v, "eer", True) if v else "-"]
        lines.append(f"| {'**realistic** (default)' if name == 'realistic' else name} | " + " | ".join(cells) + " |")
    lines += ["", "Candidate settings (fields not listed are the defaults of the settings classes):", ""]
    defaults = json.loads(json.dumps({"NIRSettings": asdict(NIRSettings()),  # tuples as lists, as the JSON has them
                                      "ThermalSettings": asdict(ThermalSettings())}))
    for name, c in record["candidates"].items():
        parts = []
        for m in ("nir", "thermal"):
            s = c[m]
            if isinstance(s, str):
                parts.append(f"{m}: {s}")
            else:
                base = defaults[s["class"]]
                diff = {k: v for k, v in s.items() if k != "class" and base.get(k) != v}
                parts.append(f"{m}: {s['class']}({', '.join(f'{k}={v}' for k, v in diff.items())})")
        lines.append(f"- `{name}`: " + "; ".join(parts))
    sec, mach = record["seconds"], record["machine"]
    lines += ["", f"Run time: {sec['total']:.0f} s in all (practice set {sec['build_practice_set']:.0f} s; per "
              f"candidate {', '.join(f'{k} {v:.0f} s' for k, v in sec['per_candidate'].items())}), on a shared, busy "
              "machine: not a benchmark of speed.",
              "", f"Machine: {mach['cpu']}, {mach['logical_cores']} logical cores, {mach['torch_threads']} torch "
              "threads; "
              f"{mach['platform']}; Python {mach['python']}, torch {mach['torch']}, timm {mach['timm']}, numpy "
              f"{mach['numpy']}, scipy {mach['scipy']}, Pillow {mach['pillow']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
