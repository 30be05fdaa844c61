"""Your own photos -> standard layout: detect, align, (optionally) simulate NIR/thermal, split.

    python data_scripts/prepare_folder.py --source DIR [DIR ...] --out LAYOUT \\
        [--modality vis] [--pseudo nir,thermal] [--size 112] [--split 0.5,0.2,0.3] [--seed 0] \\
        [--detector hog|cnn|none] [--skip-unreadable] [--overwrite] [--no-progress]

Input, per ``--source`` folder, either ``<source>/<identity>/<image>`` (one modality, named by
``--modality``, default ``vis``) or ``<source>/<modality>/<identity>/<image>`` (every first-level
folder a modality name: ``vis``, ``nir``, ``thermal`` ...).  JPEG, PNG, PGM, BMP or TIFF; grey or
colour; 16-bit images are scaled to 8 bits as the dataset converters do.  Other files are ignored
(and counted).  With several sources, identities are prefixed by their source folder's name.

Each photo goes through dlib's face detector and 68-point landmarks
(:mod:`hfr_tutorial.data.detect`), reduced to five points and aligned to the 112x112 template
(:func:`hfr_tutorial.data.align.align_face`).  With several faces the largest is taken (a photo of
a person is centred on that person); a photo with no face found is **centre-cropped**, and every
such photo, like every photo with several faces, is listed in ``alignment_report.csv`` and in the
summary: nothing is dropped silently.  ``--detector none`` centre-crops everything (faces already
cropped).

``--pseudo nir,thermal`` adds simulated modalities made from each aligned VIS face by
:mod:`hfr_tutorial.data.spectral` (landmarks: the template's, since the face is aligned), so a user
with only RGB photos gets a practice cross-spectral set; ``dataset.json["simulated_modalities"]``
says which modalities are simulated.  Simulated images show what the method does with a shift of
low-level appearance; they say nothing about a real sensor's noise, optics or emissivity.

Splits (seeded, identity-disjoint): fractions of identities for train, dev and eval
(``--split``, default 0.5,0.2,0.3).  Dev and eval need identities with at least two VIS photos:
the first (in natural order) is the gallery template, the others VIS probes, and simulated probes
are made only from the non-gallery photos (a probe made from the gallery photo itself would be the
same picture).  Identities with a single photo go to train.  One protocol, ``default``.

The source is never written to.  Work goes to ``<out>.partial`` and is renamed to ``<out>`` at the
end; an interrupted run resumes there with the same arguments; a finished layout written with the
same arguments is left as it is ("up to date"), with other arguments it needs ``--overwrite``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

try:
    from ._common import (DatasetError, centre_crop_landmarks, natural_key, natural_sorted, read_image, run_cli,
                          safe_name, warp_to_template)
except ImportError:  # run as a script: python data_scripts/prepare_folder.py
    from _common import (DatasetError, centre_crop_landmarks, natural_key, natural_sorted, read_image, run_cli,
                         safe_name, warp_to_template)

from hfr_tutorial.data.align import template
from hfr_tutorial.data.faceset import KNOWN_MODALITIES
from hfr_tutorial.data.layout import LAYOUT_FORMAT, LAYOUT_VERSION, PROTOCOL_COLUMNS, validate_layout

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".tif", ".tiff")
CONVERTER = "data_scripts/prepare_folder.py"
PSEUDO = ("nir", "thermal")
REPORT = "alignment_report.csv"


# ---------------------------------------------------------------------- arguments

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prepare_folder.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, nargs="+", required=True, metavar="DIR",
                   help="folder(s) of photos: <source>/<identity>/<image> or <source>/<modality>/<identity>/<image>")
    p.add_argument("--out", type=Path, required=True, help="folder to write the standard layout to")
    p.add_argument("--modality", default="vis", choices=KNOWN_MODALITIES,
                   help="modality of a <source>/<identity>/<image> folder (default vis)")
    p.add_argument("--pseudo", default="", metavar="MODS",
                   help="simulated modalities to add from every VIS face, comma-separated: nir,thermal (default none)")
    p.add_argument("--size", type=int, default=112, help="side of the aligned faces in pixels (default 112)")
    p.add_argument("--split", default="0.5,0.2,0.3", metavar="TRAIN,DEV,EVAL",
                   help="fractions of identities in train, dev and eval (default 0.5,0.2,0.3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the identity split and the simulation (default 0)")
    p.add_argument("--detector", default="hog", choices=("hog", "cnn", "none"),
                   help="dlib HOG (default), dlib CNN (slower, more non-frontal faces) or none (centre crop)")
    p.add_argument("--crop-fraction", type=float, default=1.0, metavar="F",
                   help="centre crop for photos with no face found: a square of F times the shorter side (default 1.0)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="leave out files that do not decode (listed in the report) instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="replace a layout at --out written with other arguments")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_pseudo(text: str) -> list[str]:
    mods = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in mods if m not in PSEUDO]
    if bad:
        raise DatasetError(f"--pseudo {text!r}: {bad} cannot be simulated; choose from {list(PSEUDO)} "
                           "(e.g. --pseudo nir,thermal).")
    return sorted(set(mods), key=PSEUDO.index)


def parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0 or not 0.99 <= sum(parts) <= 1.01 or parts[0] <= 0:
        raise DatasetError(f"--split {text!r}: give three fractions train,dev,eval that add up to 1, with some "
                           "training identities (e.g. --split 0.5,0.2,0.3).")
    return parts  # type: ignore[return-value]


# ---------------------------------------------------------------------- finding the photos

def scan_sources(sources: Sequence[Path], modality: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every photo as ``{source, identity, modality, name, key}``, and notes on what was ignored."""
    photos: list[dict[str, Any]] = []
    ignored = 0
    prefix = len(sources) > 1
    for src in sources:
        src = Path(src)
        if not src.is_dir():
            raise DatasetError(f"--source {src}: no such folder. Give a folder of <identity>/<image> or "
                               "<modality>/<identity>/<image> photos.")
        subdirs = sorted(p for p in src.iterdir() if p.is_dir())
        if not subdirs:
            raise DatasetError(f"--source {src}: holds no sub-folder. Put each person's photos in a folder named "
                               "after them: <source>/<identity>/<image>.")
        by_modality = all(d.name.lower() in KNOWN_MODALITIES for d in subdirs)
        groups = [(d.name.lower(), d) for d in subdirs] if by_modality else [(modality, src)]
        for mod, folder in groups:
            for ident_dir in sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
                identity = safe_name(f"{src.name}-{ident_dir.name}" if prefix else ident_dir.name)
                for f in sorted(ident_dir.rglob("*"), key=lambda p: natural_key(p.as_posix())):
                    if not f.is_file():
                        continue
                    if f.suffix.lower() not in IMAGE_EXTENSIONS:
                        ignored += 1
                        continue
                    stem = safe_name(f.relative_to(ident_dir).with_suffix("").as_posix().replace("/", "_"))
                    photos.append({"source": f, "identity": identity, "modality": mod, "name": stem,
                                   "key": f.relative_to(src).as_posix(), "root": str(src)})
            if by_modality:
                ignored += sum(1 for p in folder.iterdir() if p.is_file())
        ignored += sum(1 for p in src.iterdir() if p.is_file())  # e.g. a README or manifest beside the folders
    if not photos:
        raise DatasetError(f"--source {', '.join(map(str, sources))}: no image files ({', '.join(IMAGE_EXTENSIONS)}) "
                           "found under <identity>/ folders.")
    seen: dict[str, Path] = {}
    for ph in photos:
        target = f"{ph['modality']}/{ph['identity']}/{ph['name']}"
        if target in seen:
            raise DatasetError(f"{ph['source']} and {seen[target]} would both become images/{target}.png; rename one.")
        seen[target] = ph["source"]
    notes = [f"{ignored} file(s) that are not images were ignored"] if ignored else []
    return photos, notes


def check_readable(photos: list[dict[str, Any]], skip: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Decode every photo's header before any work; unreadable files stop the run (or are skipped with --skip-unreadable)."""
    bad = []
    for ph in photos:
        try:
            with Image.open(ph["source"]) as im:
                im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            bad.append((ph, f"{type(err).__name__}: {err}"))
    if bad and not skip:
        listed = "\n  ".join(f"{ph['source']}: {why}" for ph, why in bad[:20])
        raise DatasetError(f"{len(bad)} file(s) do not decode as images:\n  {listed}\nRe-save or remove them, or pass "
                           "--skip-unreadable to leave them out (they are then listed in the report).")
    skipped = {id(ph) for ph, _ in bad}
    return [ph for ph in photos if id(ph) not in skipped], [f"{ph['source']}: unreadable ({why}), left out"
                                                           for ph, why in bad]


# ---------------------------------------------------------------------- splits and protocol

def split_identities(vis_counts: dict[str, int], fractions: tuple[float, float, float],
                     seed: int) -> dict[str, str]:
    """{identity: split}: seeded, identity-disjoint; dev/eval only for identities with >= 2 VIS photos."""
    ids = natural_sorted(vis_counts)
    eligible = [i for i in ids if vis_counts[i] >= 2]
    n = len(ids)
    n_dev, n_eval = int(round(fractions[1] * n)), int(round(fractions[2] * n))
    if fractions[1] > 0:
        n_dev = max(n_dev, 1)
    if fractions[2] > 0:
        n_eval = max(n_eval, 1)
    if n_dev + n_eval > len(eligible) or n - n_dev - n_eval < 1:
        raise DatasetError(f"{n} identities ({len(eligible)} with at least two VIS photos) cannot fill --split "
                           f"{fractions}: dev and eval need {n_dev + n_eval} identities with two or more VIS photos "
                           "and train at least one. Add photos, or lower the dev/eval fractions.")
    order = [eligible[i] for i in np.random.default_rng([int(seed), 0x5A1]).permutation(len(eligible))]
    split = {i: "train" for i in ids}
    for i in order[:n_dev]:
        split[i] = "dev"
    for i in order[n_dev:n_dev + n_eval]:
        split[i] = "eval"
    return split


def protocol_rows(records: list[dict[str, Any]], split: dict[str, str]) -> list[dict[str, str]]:
    """Rows of ``default.csv``: train images as ``train``; in dev/eval the first VIS photo is the gallery."""
    rows = []
    gallery: dict[str, str] = {}
    for r in sorted((r for r in records if r["modality"] == "vis"), key=lambda r: natural_key(r["name"])):
        gallery.setdefault(r["identity"], r["name"])
    for r in records:
        s = split[r["identity"]]
        if s == "train":
            role = "train"
        elif r["modality"] == "vis" and r["name"] == gallery.get(r["identity"]):
            role = "gallery"
        elif r.get("from_vis") == gallery.get(r["identity"]):
            continue  # a simulated copy of the gallery photo would be the same picture
        else:
            role = "probe"
        rows.append({"split": s, "role": role, "identity": r["identity"], "modality": r["modality"], "path": r["path"]})
    return rows


# ---------------------------------------------------------------------- the run

def settings_of(args: argparse.Namespace, pseudo: list[str]) -> dict[str, Any]:
    return {"sources": [str(Path(s).resolve()) for s in args.source], "modality": args.modality, "pseudo": pseudo,
            "size": int(args.size), "split": list(parse_split(args.split)), "seed": int(args.seed),
            "detector": args.detector, "crop_fraction": float(args.crop_fraction),
            "skip_unreadable": bool(args.skip_unreadable)}


def _check_out(out: Path, sources: Sequence[Path], settings: dict[str, Any], overwrite: bool) -> bool:
    """True when ``out`` already holds this exact layout (nothing to do); raises when it may not be replaced."""
    out_r = out.resolve()
    for src in sources:
        src_r = Path(src).resolve()
        if out_r == src_r or src_r in out_r.parents or out_r in src_r.parents:
            raise DatasetError(f"--out {out} lies inside (or holds) --source {src}; the source is never written to. "
                               "Choose an output folder outside it.")
    if (out / "dataset.json").is_file():
        try:
            info = json.loads((out / "dataset.json").read_text())
        except (OSError, json.JSONDecodeError):
            info = {}
        if info.get("format") != LAYOUT_FORMAT:
            raise DatasetError(f"--out {out}: its dataset.json is not a {LAYOUT_FORMAT}; refusing to replace it. "
                               "Choose another folder.")
        if info.get("prepare_folder") == settings:
            return True
        if not overwrite:
            raise DatasetError(f"--out {out}: a layout written with other arguments is there. Pass --overwrite to "
                               "replace it, or choose another folder.")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"--out {out}: exists and is neither empty nor a layout. Choose a new folder.")
    return False


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    pseudo = parse_pseudo(args.pseudo)
    fractions = parse_split(args.split)
    size = int(args.size)
    template(size)
    settings = settings_of(args, pseudo)
    out = Path(args.out)
    if _check_out(out, args.source, settings, args.overwrite):
        print(f"{out}: up to date (written by an earlier run with the same arguments); nothing to do.")
        return json.loads((out / "dataset.json").read_text())

    photos, notes = scan_sources(args.source, args.modality)
    photos, unreadable = check_readable(photos, args.skip_unreadable)
    if pseudo and not any(ph["modality"] == "vis" for ph in photos):
        raise DatasetError("--pseudo simulates NIR/thermal from VIS photos, but no VIS photo was found "
                           "(check --modality and the folder names).")
    detector = None
    if args.detector != "none":
        from hfr_tutorial.data.detect import DetectorUnavailable, FaceDetector

        try:
            detector = FaceDetector(method=args.detector)  # fails here, before any work, when dlib is missing
        except DetectorUnavailable as err:
            raise DatasetError(f"{err} (or pass --detector none to centre-crop faces that are already cropped).") from None

    partial = out.with_name(out.name + ".partial")
    if (partial / "settings.json").is_file() and json.loads((partial / "settings.json").read_text()) != settings:
        raise DatasetError(f"{partial}: an interrupted run with other arguments left this folder. Rerun with its "
                           f"arguments to resume ({(partial / 'settings.json')}), or delete the folder.")
    partial.mkdir(parents=True, exist_ok=True)
    (partial / "settings.json").write_text(json.dumps(settings, indent=1))
    log_path = partial / "progress.jsonl"
    done: dict[str, dict[str, Any]] = {}
    if log_path.is_file():
        for line in log_path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the interruption: that photo is redone
            if (partial / rec["path"]).is_file():
                done[rec["source"]] = rec
        if done:
            print(f"resuming in {partial}: {len(done)} of {len(photos)} photos already aligned")

    from tqdm import tqdm

    records: list[dict[str, Any]] = []
    with open(log_path, "a") as log:
        for ph in tqdm(photos, desc="detect + align", unit="photo", disable=bool(args.no_progress)):
            key = str(ph["source"])
            if key in done:
                records.append(done[key])
                continue
            img = read_image(ph["source"])
            faces = detector.detect(img) if detector is not None else []
            if faces:
                pts, method = faces[0].landmarks, "detected"
                box = [round(float(v), 1) for v in faces[0].box]
            else:
                pts = centre_crop_landmarks(img.shape[1], img.shape[0], size, float(args.crop_fraction))
                method, box = ("centre-crop (no face found)" if detector is not None else "centre-crop"), None
            face = warp_to_template(img, pts, size)
            rel = f"images/{ph['modality']}/{ph['identity']}/{ph['name']}.png"
            (partial / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(face).save(partial / rel, format="PNG")
            rec = {"source": key, "path": rel, "identity": ph["identity"], "modality": ph["modality"],
                   "name": ph["name"], "faces_found": len(faces), "alignment": method, "box": box}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            records.append(rec)
    if detector is not None and not any(r["faces_found"] for r in records):
        raise DatasetError(f"No face was found in any of the {len(records)} photos of {', '.join(map(str, args.source))}. "
                           "Are these face photos? Try --detector cnn (more poses), or --detector none for faces "
                           f"already cropped. Work so far is in {partial}.")

    simulated: list[dict[str, Any]] = []
    if pseudo:
        from hfr_tutorial.data.spectral import simulate

        lm = template(size)[None].astype(np.float32)
        vis = [r for r in records if r["modality"] == "vis"]
        for r in tqdm(vis, desc="simulate " + "+".join(pseudo), unit="face", disable=bool(args.no_progress)):
            face = np.asarray(Image.open(partial / r["path"]).convert("RGB"))
            for mod in pseudo:
                rel = f"images/{mod}/{r['identity']}/{r['name']}.png"
                if not (partial / rel).is_file():
                    seed = int(hashlib.sha1(f"{args.seed}:{mod}:{r['path']}".encode()).hexdigest()[:8], 16)
                    img = simulate(face[None], mod, lm, seed=seed)[0]
                    (partial / rel).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(img).save(partial / rel, format="PNG")
                simulated.append({"path": rel, "identity": r["identity"], "modality": mod, "name": r["name"],
                                  "from_vis": r["name"]})

    vis_counts: dict[str, int] = {}
    for r in records:
        vis_counts.setdefault(r["identity"], 0)
        vis_counts[r["identity"]] += r["modality"] == "vis"
    split = split_identities(vis_counts, fractions, args.seed)
    rows = protocol_rows(records + simulated, split)
    (partial / "protocols").mkdir(exist_ok=True)
    with open(partial / "protocols" / "default.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(PROTOCOL_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    with open(partial / REPORT, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["source", "path", "identity", "faces_found", "alignment", "box"])
        writer.writeheader()
        for r in records:
            writer.writerow({k: r[k] for k in writer.fieldnames})
    centre = [r for r in records if r["alignment"].startswith("centre-crop")]
    several = [r for r in records if r["faces_found"] > 1]
    if centre:
        notes.append(f"{len(centre)} photo(s) were centre-cropped" + (" (no face found)" if detector else "")
                     + ": " + ", ".join(Path(r["source"]).name for r in centre[:10]))
    if several:
        notes.append(f"{len(several)} photo(s) showed several faces; the largest was taken: "
                     + ", ".join(Path(r["source"]).name for r in several[:10]))
    notes += unreadable
    counts = {"detected": sum(r["alignment"] == "detected" for r in records), "centre-crop": len(centre)}
    modalities = [m for m in KNOWN_MODALITIES if any(r["modality"] == m for r in records + simulated)]
    info = {
        "format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "name": safe_name(out.name), "modalities": modalities,
        "image_size": size,
        "alignment": (f"dlib {args.detector.upper()} detector + 68-point landmarks -> 5 points -> similarity "
                      "transform to the ArcFace template" if detector else "centre crop (no detector)"),
        "source": ", ".join(settings["sources"]), "licence": "your own photos: keep their owners' consent and licence",
        "simulated_modalities": pseudo,
        "simulation": ("pseudo-NIR / pseudo-thermal images simulated from the aligned VIS photos by "
                       "hfr_tutorial.data.spectral: practice data, not real sensor images") if pseudo else None,
        "identities": natural_sorted(vis_counts), "splits": {s: sum(v == s for v in split.values())
                                                             for s in ("train", "dev", "eval")},
        "protocols": ["default"], "default_protocol": "default", "converter": CONVERTER,
        "alignment_counts": counts, "photos_with_several_faces": len(several), "notes": notes,
        "prepare_folder": settings,
    }
    (partial / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    validate_layout(partial, protocol="default", decode=False)
    log_path.unlink()
    (partial / "settings.json").unlink()
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)

    print(f"wrote {len(records)} aligned photos" + (f" + {len(simulated)} simulated images" if simulated else "")
          + f" of {len(vis_counts)} identities to {out}")
    print(f"  alignment: {counts['detected']} detected, {counts['centre-crop']} centre-cropped; "
          f"{len(several)} with several faces (largest taken); report: {out / REPORT}")
    print("  splits (identities): " + ", ".join(f"{k} {v}" for k, v in info["splits"].items())
          + f"; protocol: {out / 'protocols' / 'default.csv'} ({len(rows)} rows)")
    for note in notes:
        print(f"  note: {note}")
    return info


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
