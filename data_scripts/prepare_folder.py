"""Your own photos -> standard layout: detect, align, (optionally) simulate NIR/thermal, split.

    python data_scripts/prepare_folder.py --source DIR [DIR ...] --out LAYOUT \\
        [--modality vis] [--pseudo nir,thermal] [--severity realistic|mild] [--palette NAME|auto] \\
        [--glasses FILE] [--size 112] [--split 0.5,0.2,0.3] [--seed 0] [--per-identity N] \\
        [--near-duplicate BITS] \\
        [--detector hog|cnn|none] [--skip-unreadable] [--overwrite] [--no-progress]

Input, per ``--source`` folder, either ``<source>/<identity>/<image>`` (one modality, named by
``--modality``, default ``vis``) or ``<source>/<modality>/<identity>/<image>`` (every first-level
folder a modality name: ``vis``, ``nir``, ``thermal`` ...).  JPEG, PNG, PGM, BMP or TIFF; grey or
colour; 16-bit images are scaled to 8 bits as the dataset converters do.  Other files are ignored
(and counted).  With several sources, identities are prefixed by their source folder's name.
``--per-identity N`` keeps N photos of each identity, evenly spread over their natural order (the
first, the last, and between): a quick, smaller layout.

Each photo goes through dlib's face detector and 68-point landmarks
(:mod:`hfr_tutorial.data.detect`), reduced to five points and aligned to the 112x112 template
(:func:`hfr_tutorial.data.align.align_face`).  With several faces the largest is taken (a photo of
a person is centred on that person).  A photo where no face is found is tried once more with a
border of its mean colour around it: tight face crops (Extended Yale B's) leave the detector no
margin, and then it finds them (recorded as "detected (padded)").  A photo with no face found even
then is **centre-cropped**, and every such photo, like every photo with several faces, is listed in
``alignment_report.csv`` and in the summary: nothing is dropped silently.  ``--detector none``
centre-crops everything (faces already cropped).

``--palette NAME|auto`` (thermal photos only): thermal exports in false colour (``ironbow``,
``inferno``, ``rainbow``) or ``black-hot`` are mapped back to one white-hot channel by the nearest
colour on the palette's curve (:mod:`hfr_tutorial.data.palette`) before alignment, so the model
sees what a thermal sensor measured.  ``auto`` detects the palette per source folder and stops,
showing the figures, when the guess is not confident (then name it).  The palette and the share
of pixels off its curve (overlays, text) are recorded in ``dataset.json``.

``--pseudo nir,thermal`` adds simulated modalities made from each aligned VIS face by
:mod:`hfr_tutorial.data.spectral` (landmarks: the template's, since the face is aligned), so a user
with only RGB photos gets a practice cross-spectral set; ``dataset.json["simulated_modalities"]``
says which modalities are simulated.  ``--severity realistic`` (default) models the sensors (emission
without colour or texture, a microbolometer's few pixels, fixed-pattern noise, automatic gain;
active NIR light, glints, pupils), calibrated so that the official EdgeFace-XXS shows about the
published unadapted thermal gap; ``--severity mild`` is the earlier, gentle simulation.  The
severity is recorded in ``dataset.json``.  Glasses are not detected: ``--glasses FILE`` lists the
VIS photos that show them (``<identity>/<file>``, one a line), simulated with cold, opaque lenses in
thermal and lens glints in NIR; every other face is simulated bare.  Simulated images are practice
data: they say nothing about a given sensor's noise, optics or emissivity, nor about a person's real
heat pattern.

Splits (seeded, identity-disjoint): fractions of identities for train, dev and eval
(``--split``, default 0.5,0.2,0.3).  Dev and eval need identities with at least two VIS photos:
the first (in natural order) is the gallery template, the others VIS probes, and simulated probes
are made only from the non-gallery photos (a probe made from the gallery photo itself would be the
same picture).  Probes whose aligned face is a near-duplicate of the gallery face (the same picture
re-encoded or re-cropped, or a neighbouring video frame: difference hashes of the aligned faces
within ``--near-duplicate`` bits of 256, default 20, 0 turns the check off) are left out too, with
their simulated copies, and listed in the notes.  Identities with a single photo go to train.  One
protocol, ``default``.

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
from hfr_tutorial.data.palette import DEFAULT_TOLERANCE, PALETTES, detect_palette, palette_to_grey
from hfr_tutorial.data.spectral import DEFAULT_SEVERITY, SEVERITIES
from hfr_tutorial.data.layout import LAYOUT_FORMAT, LAYOUT_VERSION, PROTOCOL_COLUMNS, validate_layout

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".tif", ".tiff")
CONVERTER = "data_scripts/prepare_folder.py"
PSEUDO = ("nir", "thermal")
REPORT = "alignment_report.csv"
NEAR_DUPLICATE_BITS = 20  # of a 256-bit difference hash; LFW's two re-cropped pairs: 10 and 17, other LFW pairs >= 33
PALETTE_MIN_CONFIDENCE = 0.75  # --palette auto: share of pixels on the winning curve


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
    p.add_argument("--severity", default=DEFAULT_SEVERITY, choices=SEVERITIES,
                   help="how hard the simulated sensors are: realistic (default, calibrated on a real model) or mild")
    p.add_argument("--palette", default=None, metavar="NAME|auto",
                   help="thermal photos exported in a palette: " + ", ".join(PALETTES) + " or auto (detect); mapped "
                        "back to one white-hot channel (default: used as they are)")
    p.add_argument("--glasses", type=Path, default=None, metavar="FILE",
                   help="a list of the VIS photos that show glasses (<identity>/<file>, one a line): simulated with "
                        "cold, opaque lenses in thermal and glints in NIR (glasses are not detected)")
    p.add_argument("--per-identity", type=int, default=0, metavar="N",
                   help="keep N photos of each identity, evenly spread over their natural order (default 0: all)")
    p.add_argument("--near-duplicate", type=int, default=NEAR_DUPLICATE_BITS, metavar="BITS",
                   help="probes within BITS (of 256) of their gallery face's difference hash are left out "
                        f"(default {NEAR_DUPLICATE_BITS}; 0: no check)")
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


def parse_palette(text: str | None) -> str | None:
    """``--palette``: a palette name of :data:`hfr_tutorial.data.palette.PALETTES`, ``auto`` or ``None``."""
    if text is None:
        return None
    key = text.strip().lower()
    if key != "auto" and key not in PALETTES:
        raise DatasetError(f"--palette {text!r}: unknown; choose one of {list(PALETTES)} or auto "
                           "(e.g. --palette ironbow).")
    return key


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

def scan_sources(sources: Sequence[Path], modality: str,
                 per_identity: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """Every photo as ``{source, identity, modality, name, key}``, and notes on what was ignored.

    ``per_identity`` > 0 keeps that many photos of each identity and modality, evenly spread over
    their natural order (the first, the last and between: a video's frames far apart).
    """
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
                files = []
                for f in sorted(ident_dir.rglob("*"), key=lambda p: natural_key(p.as_posix())):
                    if not f.is_file():
                        continue
                    if f.suffix.lower() not in IMAGE_EXTENSIONS:
                        ignored += 1
                        continue
                    files.append(f)
                if per_identity and len(files) > per_identity:  # evenly spread: the first, the last, between
                    files = [files[int(i)] for i in np.round(np.linspace(0, len(files) - 1, per_identity))]
                for f in files:
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


def gallery_names(records: list[dict[str, Any]]) -> dict[str, str]:
    """{identity: name of its gallery photo}: the first VIS photo in natural order."""
    gallery: dict[str, str] = {}
    for r in sorted((r for r in records if r["modality"] == "vis"), key=lambda r: natural_key(r["name"])):
        gallery.setdefault(r["identity"], r["name"])
    return gallery


def difference_hash(image: np.ndarray, side: int = 16) -> np.ndarray:
    """A ``side`` x ``side`` difference hash (bool): is each pixel of a small grey copy brighter than its left one.

    Robust to re-encoding, small crops and brightness changes, so two copies of one picture hash
    within a few bits, while two photos of a person taken apart differ in about half of them.
    """
    grey = Image.fromarray(np.asarray(image)).convert("L").resize((side + 1, side), Image.BILINEAR)
    a = np.asarray(grey, dtype=np.float32)
    return (a[:, 1:] > a[:, :-1]).ravel()


def near_duplicate_probes(records: list[dict[str, Any]], split: dict[str, str], root: Path,
                          bits: int) -> dict[tuple[str, str], int]:
    """{(identity, VIS name): distance} of dev/eval VIS photos within ``bits`` of their gallery photo's hash."""
    if bits <= 0:
        return {}
    gallery = gallery_names(records)
    vis = [r for r in records if r["modality"] == "vis" and split.get(r["identity"]) in ("dev", "eval")]
    hashes = {(r["identity"], r["name"]): difference_hash(np.asarray(Image.open(root / r["path"]))) for r in vis}
    out = {}
    for (ident, name), h in hashes.items():
        g = gallery.get(ident)
        if g is None or name == g:
            continue
        d = int((h != hashes[(ident, g)]).sum())
        if d <= bits:
            out[(ident, name)] = d
    return out


def protocol_rows(records: list[dict[str, Any]], split: dict[str, str],
                  exclude: set[tuple[str, str]] | dict[tuple[str, str], int] = frozenset()) -> list[dict[str, str]]:
    """Rows of ``default.csv``: train images as ``train``; in dev/eval the first VIS photo is the gallery.

    Never a probe: a simulated copy of the gallery photo, nor (with ``exclude``, pairs of identity
    and VIS photo name) a near-duplicate of it or a simulated copy of one.
    """
    rows = []
    gallery = gallery_names(records)
    for r in records:
        s = split[r["identity"]]
        source_photo = r.get("from_vis", r["name"] if r["modality"] == "vis" else None)
        if s == "train":
            role = "train"
        elif r["modality"] == "vis" and r["name"] == gallery.get(r["identity"]):
            role = "gallery"
        elif r.get("from_vis") is not None and r["from_vis"] == gallery.get(r["identity"]):
            continue  # a simulated copy of the gallery photo would be the same picture
        elif source_photo is not None and (r["identity"], source_photo) in exclude:
            continue  # a near-duplicate of the gallery photo (or a simulated copy of one)
        else:
            role = "probe"
        rows.append({"split": s, "role": role, "identity": r["identity"], "modality": r["modality"], "path": r["path"]})
    return rows


# ---------------------------------------------------------------------- the run

def settings_of(args: argparse.Namespace, pseudo: list[str]) -> dict[str, Any]:
    return {"sources": [str(Path(s).resolve()) for s in args.source], "modality": args.modality, "pseudo": pseudo,
            "severity": args.severity if pseudo else None, "palette": parse_palette(args.palette),
            "size": int(args.size), "split": list(parse_split(args.split)), "seed": int(args.seed),
            "per_identity": int(args.per_identity), "near_duplicate": int(args.near_duplicate),
            "glasses": _glasses_entries(args.glasses),
            "detector": args.detector, "crop_fraction": float(args.crop_fraction),
            "skip_unreadable": bool(args.skip_unreadable)}


def _glasses_entries(path: Path | None) -> list[str] | None:
    """The entries of a ``--glasses`` file, sorted (part of the settings: a changed list is a changed layout)."""
    if path is None or not Path(path).is_file():
        return None
    entries = (ln.split("#", 1)[0].strip() for ln in Path(path).read_text().splitlines())
    return sorted(e for e in entries if e)


def pseudo_seed(seed: int, modality: str, vis_path: str) -> int:
    """The simulation seed of one simulated image: from ``--seed``, the modality and the VIS face's layout path.

    Stable across runs, interruptions and machines, and different for every image and modality.
    """
    return int(hashlib.sha1(f"{seed}:{modality}:{vis_path}".encode()).hexdigest()[:8], 16)


def simulate_face(face: np.ndarray, modality: str, severity: Any, seed: int, vis_path: str,
                  glasses: bool = False) -> np.ndarray:
    """The simulated ``modality`` image of one aligned VIS face, exactly as ``--pseudo`` writes it.

    The thermal camera's fixed pattern is the same for the whole layout (``camera_seed=seed``: one
    camera); the temporal noise differs per image (:func:`pseudo_seed`).  ``glasses``: the photo
    shows glasses (``--glasses``; realistic severity only).
    """
    from hfr_tutorial.data.spectral import simulate

    lm = template(face.shape[0])[None].astype(np.float32)
    extra = {"camera_seed": int(seed)} if modality == "thermal" and severity != "mild" else {}
    return simulate(face[None], modality, lm, seed=pseudo_seed(seed, modality, vis_path), severity=severity,
                    glasses=[True] if glasses else None, **extra)[0]


def read_glasses_list(path: Path | None, photos: list[dict[str, Any]], severity: str) -> set[str]:
    """The VIS photos (``source`` paths) named in a ``--glasses`` file, checked before any work.

    One photo per line, as ``<identity>/<file>`` (the file name, with or without extension), or its
    path relative to its ``--source`` folder; ``#`` starts a comment.  A line matching no photo stops
    the run: a typo would silently simulate bare eyes behind cold glasses.
    """
    if path is None:
        return set()
    if severity == "mild":
        raise DatasetError("--glasses needs --severity realistic (the mild simulation has no glasses).")
    try:
        lines = [ln.split("#", 1)[0].strip() for ln in Path(path).read_text().splitlines()]
    except OSError as err:
        raise DatasetError(f"--glasses {path}: cannot be read ({err}).") from None
    index: dict[str, str] = {}
    for ph in photos:
        if ph["modality"] != "vis":
            continue
        src = str(ph["source"])
        stem = Path(ph["key"]).with_suffix("").as_posix()
        for k in (ph["key"], stem, f"{ph['identity']}/{ph['name']}", f"{ph['identity']}/{Path(ph['source']).name}",
                  f"{Path(ph['source']).parent.name}/{Path(ph['source']).name}",
                  f"{Path(ph['source']).parent.name}/{Path(ph['source']).stem}"):
            index.setdefault(k, src)
    chosen, missing = set(), []
    for ln in (ln for ln in lines if ln):
        if ln in index:
            chosen.add(index[ln])
        else:
            missing.append(ln)
    if missing:
        raise DatasetError(f"--glasses {path}: {len(missing)} line(s) match no VIS photo: {missing[:10]}. Write "
                           "<identity>/<file> or the path under its --source folder.")
    return chosen


def simulation_settings(severity: str, pseudo: Sequence[str]) -> dict[str, Any]:
    """The simulated sensors' settings behind ``severity``, for ``dataset.json`` (what made these images)."""
    from dataclasses import asdict

    from hfr_tutorial.data.spectral import settings_for

    out: dict[str, Any] = {}
    for mod in pseudo:
        st = settings_for(mod, severity)
        out[mod] = ("mild (hfr_tutorial.data.spectral.mild defaults)" if st is None
                    else json.loads(json.dumps(asdict(st))))  # tuples as lists, as dataset.json reads back
    return out


def detect_faces(detector: Any, img: np.ndarray, pad: float = 0.25) -> tuple[list[Any], bool]:
    """Faces in ``img``, largest first, and whether a padded copy was needed.

    dlib's detector needs some context around a face; a tight crop (the face filling the image)
    is often missed.  A photo with no face found is padded by ``pad`` of its longer side with its
    mean colour on every side and tried again; landmarks are mapped back to the photo.
    """
    faces = detector.detect(img)
    if faces:
        return faces, False
    p = int(round(pad * max(img.shape[:2])))
    fill = np.round(img.reshape(-1, img.shape[-1]).mean(axis=0)).astype(np.uint8)
    padded = np.empty((img.shape[0] + 2 * p, img.shape[1] + 2 * p, img.shape[2]), np.uint8)
    padded[...] = fill
    padded[p:p + img.shape[0], p:p + img.shape[1]] = img
    found = detector.detect(padded)
    moved = [type(f)(box=tuple(v - p for v in f.box), landmarks=f.landmarks - p, score=f.score) for f in found]
    return moved, bool(moved)


def choose_palettes(photos: list[dict[str, Any]], palette: str | None) -> dict[str, dict[str, Any]]:
    """{source folder: {palette, confidence, note}} for the thermal photos; ``auto`` detects per source.

    A folder holds one camera's exports, so one palette per source; ``auto`` pools up to 16 photos of a
    source and stops (before any work) when the guess is ambiguous or below
    :data:`PALETTE_MIN_CONFIDENCE`, showing the fraction of pixels on each palette's curve.
    """
    if palette is None:
        return {}
    thermal = [ph for ph in photos if ph["modality"] == "thermal"]
    if not thermal:
        raise DatasetError(f"--palette {palette}: no thermal photos were found (it applies to <source>/thermal/<identity>/"
                           "<image> folders, or --modality thermal). Leave --palette out for VIS or NIR photos.")
    out: dict[str, dict[str, Any]] = {}
    for root in sorted({ph["root"] for ph in thermal}):
        if palette != "auto":
            out[root] = {"palette": palette, "confidence": None, "note": "named with --palette"}
            continue
        sample = [ph for ph in thermal if ph["root"] == root][:16]
        match = detect_palette([read_image(ph["source"]) for ph in sample])
        shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(match.fractions.items(), key=lambda kv: -kv[1]))
        if match.ambiguous or match.confidence < PALETTE_MIN_CONFIDENCE:
            raise DatasetError(f"--palette auto: the palette of the thermal photos in {root} is not clear (best guess "
                               f"{match.name}, {match.confidence:.0%} of pixels on its curve; {shares}; {match.note}). "
                               f"Name it: --palette {'|'.join(PALETTES)}.")
        out[root] = {"palette": match.name, "confidence": round(match.confidence, 4), "note": match.note}
    return out


def to_white_hot(img: np.ndarray, palette: str) -> tuple[np.ndarray, float]:
    """A thermal export in ``palette`` as one white-hot channel (uint8 (H, W, 3)); the share of pixels off the curve."""
    grey, dist = palette_to_grey(img, palette)
    return np.repeat(grey[..., None], 3, axis=2), float((dist > DEFAULT_TOLERANCE).mean())


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

    if args.per_identity < 0:
        raise DatasetError(f"--per-identity {args.per_identity}: give a number of photos (0 keeps all).")
    photos, notes = scan_sources(args.source, args.modality, int(args.per_identity))
    photos, unreadable = check_readable(photos, args.skip_unreadable)
    if pseudo and not any(ph["modality"] == "vis" for ph in photos):
        raise DatasetError("--pseudo simulates NIR/thermal from VIS photos, but no VIS photo was found "
                           "(check --modality and the folder names).")
    palettes = choose_palettes(photos, settings["palette"])
    if args.glasses is not None and not pseudo:
        raise DatasetError("--glasses says which photos to simulate with glasses: it needs --pseudo nir,thermal.")
    glasses = read_glasses_list(args.glasses, photos, args.severity)
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
            palette, off_palette = None, None
            if ph["modality"] == "thermal" and ph["root"] in palettes:
                palette = palettes[ph["root"]]["palette"]
                img, off_palette = to_white_hot(img, palette)
            faces, padded = detect_faces(detector, img) if detector is not None else ([], False)
            if faces:
                pts, method = faces[0].landmarks, "detected (padded)" if padded else "detected"
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
            if palette is not None:
                rec.update(palette=palette, off_palette=round(off_palette, 4))
            log.write(json.dumps(rec) + "\n")
            log.flush()
            records.append(rec)
    if detector is not None and not any(r["faces_found"] for r in records):
        raise DatasetError(f"No face was found in any of the {len(records)} photos of {', '.join(map(str, args.source))}. "
                           "Are these face photos? Try --detector cnn (more poses), or --detector none for faces "
                           f"already cropped. Work so far is in {partial}.")

    simulated: list[dict[str, Any]] = []
    if pseudo:
        vis = [r for r in records if r["modality"] == "vis"]
        for r in tqdm(vis, desc=f"simulate {'+'.join(pseudo)} ({args.severity})", unit="face",
                      disable=bool(args.no_progress)):
            face = np.asarray(Image.open(partial / r["path"]).convert("RGB"))
            for mod in pseudo:
                rel = f"images/{mod}/{r['identity']}/{r['name']}.png"
                if not (partial / rel).is_file():
                    img = simulate_face(face, mod, args.severity, int(args.seed), r["path"],
                                        glasses=r["source"] in glasses)
                    (partial / rel).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(img).save(partial / rel, format="PNG")
                simulated.append({"path": rel, "identity": r["identity"], "modality": mod, "name": r["name"],
                                  "from_vis": r["name"]})

    vis_counts: dict[str, int] = {}
    for r in records:
        vis_counts.setdefault(r["identity"], 0)
        vis_counts[r["identity"]] += r["modality"] == "vis"
    split = split_identities(vis_counts, fractions, args.seed)
    duplicates = near_duplicate_probes(records, split, partial, int(args.near_duplicate))
    rows = protocol_rows(records + simulated, split, duplicates)
    (partial / "protocols").mkdir(exist_ok=True)
    with open(partial / "protocols" / "default.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(PROTOCOL_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    with open(partial / REPORT, "w", newline="") as fh:
        fields = ["source", "path", "identity", "faces_found", "alignment", "box"]
        fields += ["palette", "off_palette"] if palettes else []
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in records:
            writer.writerow({k: r.get(k) for k in writer.fieldnames})
    centre = [r for r in records if r["alignment"].startswith("centre-crop")]
    several = [r for r in records if r["faces_found"] > 1]
    if centre:
        notes.append(f"{len(centre)} photo(s) were centre-cropped" + (" (no face found)" if detector else "")
                     + ": " + ", ".join(Path(r["source"]).name for r in centre[:10]))
    if several:
        notes.append(f"{len(several)} photo(s) showed several faces; the largest was taken: "
                     + ", ".join(Path(r["source"]).name for r in several[:10]))
    if duplicates:
        notes.append(f"{len(duplicates)} probe photo(s) left out (with their simulated copies) as near-duplicates of "
                     f"their identity's gallery photo (difference hash within {args.near_duplicate} of 256 bits): "
                     + ", ".join(f"{i}/{n} ({d})" for (i, n), d in sorted(duplicates.items())[:10]))
    notes += unreadable
    padded = sum(r["alignment"] == "detected (padded)" for r in records)
    if padded:
        notes.append(f"{padded} photo(s) were detected only with a border added (tight face crops)")
    counts = {"detected": sum(r["alignment"].startswith("detected") for r in records), "centre-crop": len(centre)}
    modalities = [m for m in KNOWN_MODALITIES if any(r["modality"] == m for r in records + simulated)]
    info = {
        "format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "name": safe_name(out.name), "modalities": modalities,
        "image_size": size,
        "alignment": (f"dlib {args.detector.upper()} detector + 68-point landmarks -> 5 points -> similarity "
                      "transform to the ArcFace template" if detector else "centre crop (no detector)"),
        "source": ", ".join(settings["sources"]), "licence": "your own photos: keep their owners' consent and licence",
        "simulated_modalities": pseudo,
        "simulation": (f"pseudo-NIR / pseudo-thermal images simulated from the aligned VIS photos by "
                       f"hfr_tutorial.data.spectral, severity {args.severity!r}: practice data, not real sensor images")
        if pseudo else None,
        "simulation_severity": args.severity if pseudo else None,
        "simulation_settings": simulation_settings(args.severity, pseudo) if pseudo else None,
        "simulated_with_glasses": len(glasses) if pseudo else None,
        "thermal_palette": {"requested": settings["palette"], "sources": palettes,
                            "max_off_palette": max((r.get("off_palette") or 0.0 for r in records), default=0.0)}
        if palettes else None,
        "near_duplicate_probes_left_out": len(duplicates),
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
