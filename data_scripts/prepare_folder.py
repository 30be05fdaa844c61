"""Your own photos -> standard layout: detect, align, (optionally) simulate NIR/thermal, split.

    python data_scripts/prepare_folder.py --source DIR [DIR ...] --out LAYOUT \\
        [--modality vis] [--pseudo nir,thermal] [--severity realistic|mild] [--palette NAME|auto] \\
        [--glasses FILE] [--size 112] [--split 0.5,0.2,0.3] [--seed 0] [--per-identity N] \\
        [--near-duplicate BITS] \\
        [--detector hog|cnn|none] [--skip-unreadable] [--overwrite] [--no-progress]

Input, per ``--source`` folder, either ``<source>/<identity>/<image>`` (one modality, named by
``--modality``, default ``vis``) or ``<source>/<modality>/<identity>/<image>`` (first-level folders
named ``vis``, ``nir``, ``thermal`` ..., any case; a source where some first-level folders are
modality names and others are not, such as ``ir`` or ``RGB``, is refused with the accepted names,
before any work).  JPEG, PNG, PGM, BMP or TIFF; grey or colour; 16-bit images are scaled to 8 bits
as the dataset converters do; the EXIF orientation of phone photos is applied.  Everything else is
listed by name in the summary and in ``dataset.json["skipped_files"]``: hidden entries
(``.thumbnails``, ``.DS_Store``) and system folders (``__MACOSX``), photos in formats not read here
(GIF, WebP, HEIC: convert them to JPEG or PNG), other files.  Only files inside each source are
read: a symbolic link that leads out of it is refused.

Identities are the folder names, kept readable: letters of every script are kept (``Zoë``,
``张伟``) and other characters become ``_``; a name that cannot be kept (its bytes are not UTF-8,
say) becomes an ASCII slug plus a hash of the original, and two names that would end up equal
(``Anna Maria`` and ``Anna_Maria``, or ``anna`` and ``Anna`` on a case-insensitive disk) both get
the hash; ``dataset.json["identity_folders"]`` maps every identity back to its folder.  With several
sources, identities are prefixed by their source's folder name (numbered when two sources have the
same folder name): a folder ``anna`` in two sources is two identities, never merged, because equal
folder names in two collections do not make one person, and merging two people would train and
score them as one.  To combine a person's photos, put them in one folder.  ``--per-identity N``
keeps N photos of each identity (and modality), evenly spread over their natural order (the first,
the last, and between): a quick, smaller layout.

Each photo goes through dlib's face detector and 68-point landmarks
(:mod:`hfr_tutorial.data.detect`), reduced to five points and aligned to the 112x112 template
(:func:`hfr_tutorial.data.align.align_face`).  With several faces the largest is taken (a photo of
a person is centred on that person).  A photo where no face is found is tried once more with a
border of its mean colour around it: tight face crops (Extended Yale B's) leave the detector no
margin, and then it finds them (recorded as "detected (padded)").  A photo with no face found even
then is **centre-cropped**, and every such photo, like every photo with several faces, is listed in
``alignment_report.csv`` and in the summary: nothing is dropped silently.  ``--detector none``
centre-crops everything (faces already cropped).  ``--size`` must be a multiple of 16 (EdgeFace's
input); any size but 112, the official weights' input, is warned about and noted in
``dataset.json["image_size_warning"]``.

``--palette NAME|auto`` (thermal photos only): thermal exports in false colour (``ironbow``,
``inferno``, ``rainbow``) or ``black-hot`` are mapped back to one white-hot channel by the nearest
colour on the palette's curve (:mod:`hfr_tutorial.data.thermal_palettes`) before alignment, so the
model sees what a thermal sensor measured.  ``auto`` detects the palette per source folder and
stops, before any work, showing the figures, when the guess is not confident (then name it).  The
palette and the share of pixels off its curve (overlays, text) are recorded in ``dataset.json``.

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

Splits (seeded, identity-disjoint), decided before any alignment: fractions of identities for
train, dev and eval (``--split``, default 0.5,0.2,0.3).  Dev and eval need identities with at least
two VIS photos: the first (in natural order) is the gallery template, the others VIS probes, and
simulated probes are made only from the non-gallery photos (a probe made from the gallery photo
itself would be the same picture).  Dev and eval hold none or at least two identities each (a
score needs an impostor pair); a split that would give one is refused with a ``--split`` that
works.  Identities with a single photo go to train.  One protocol, ``default``.  Identical photos
(the same bytes) are found by their SHA-256: under two identities in different splits they are
refused (a leak), otherwise listed (``dataset.json["duplicates"]``); a probe identical to its
identity's gallery photo is left out of the protocol.  So are probes whose aligned face is a
near-duplicate of the gallery face (the same picture re-encoded or re-cropped, or a neighbouring
video frame: difference hashes of the aligned faces within ``--near-duplicate`` bits of 256,
default 20, 0 turns the check off), with their simulated copies; they are listed in the notes.

The source is never written to.  Work goes to ``<out>.partial`` and is renamed to ``<out>`` at the
end.  Every image is written to a scratch file and renamed into place, and an interrupted run
resumes only from the images whose bytes it verifies against its log (a photo whose source
changed, or whose output is damaged, is redone); a ``.partial`` left with other alignment settings
(or another ``--palette``) is cleared by the next run, and simulated images made with other
simulation settings (``--seed``, ``--severity``, ``--glasses`` ...) are made again.  A finished
layout is "up to date" (left as it is) only when it was written with the same arguments from the
same photos: ``source_manifest.csv`` lists every photo read (name, size, modification time); when
the photos changed, or the arguments differ, replacing the layout needs ``--overwrite``, and the
message says what changed.

Taught in ``notebooks/07_real_edgeface.ipynb`` (a practice layout from real photos); the layout
itself in ``notebooks/00_data_and_modality_gap.ipynb`` ("Bring your own data").
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

try:
    from ._common import (DatasetError, centre_crop_landmarks, check_crop_fraction, check_seed, check_size,
                          distinct_names, is_utf8_name, natural_key, natural_sorted, printable, read_image,
                          readable_name, run_cli, safe_name, warp_to_template)
except ImportError:  # run as a script: python data_scripts/prepare_folder.py
    from _common import (DatasetError, centre_crop_landmarks, check_crop_fraction, check_seed, check_size,
                         distinct_names, is_utf8_name, natural_key, natural_sorted, printable, read_image,
                         readable_name, run_cli, safe_name, warp_to_template)

from hfr_tutorial.data.align import template
from hfr_tutorial.data.faceset import KNOWN_MODALITIES
from hfr_tutorial.data.imageio import too_large_message
from hfr_tutorial.data.layout import LAYOUT_FORMAT, LAYOUT_VERSION, PROTOCOL_COLUMNS, RootGuard, validate_layout
from hfr_tutorial.data.spectral import DEFAULT_SEVERITY, SEVERITIES
from hfr_tutorial.data.thermal_palettes import DEFAULT_TOLERANCE, PALETTES, detect_palette, palette_to_grey

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".tif", ".tiff")
CONVERTIBLE = (".gif", ".webp", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".dng", ".cr2", ".cr3", ".nef", ".arw",
               ".orf", ".rw2", ".raw", ".psd", ".svg")
"""Photo formats not read here: listed by name with the advice to convert them to JPEG or PNG."""
SYSTEM_NAMES = ("__macosx", "thumbs.db", "desktop.ini", "@eadir", "$recycle.bin", "system volume information")
"""Entries that file managers and operating systems leave in photo folders (skipped like hidden ones)."""
MODALITY_ALIASES = {"ir": "nir (a near-infrared camera) or thermal (a thermal camera)", "rgb": "vis", "color": "vis",
                    "colour": "vis", "visible": "vis", "visual": "vis", "infrared": "nir or thermal",
                    "near-infrared": "nir", "near_infrared": "nir", "nearir": "nir", "lwir": "thermal",
                    "therm": "thermal", "temperature": "thermal", "sketches": "sketch", "3d": "depth"}
"""Folder names people use for a modality, and the accepted name to rename each to."""
CONVERTER = "data_scripts/prepare_folder.py"
PSEUDO = ("nir", "thermal")
REPORT = "alignment_report.csv"
MANIFEST = "source_manifest.csv"
SCRATCH = ".writing.png"
LIST_CAP = 1000  # paths listed per kind in dataset.json (the counts are exact)
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
    p.add_argument("--size", type=int, default=112,
                   help="side of the aligned faces in pixels, a multiple of 16 (default 112, the official weights' input)")
    p.add_argument("--split", default="0.5,0.2,0.3", metavar="TRAIN,DEV,EVAL",
                   help="fractions of identities in train, dev and eval (default 0.5,0.2,0.3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the identity split and the simulation (default 0)")
    p.add_argument("--detector", default="hog", choices=("hog", "cnn", "none"),
                   help="dlib HOG (default), dlib CNN (slower, more non-frontal faces) or none (centre crop)")
    p.add_argument("--crop-fraction", type=float, default=1.0, metavar="F",
                   help="centre crop for photos with no face found: a square of F times the shorter side (default 1.0)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="leave out files that do not decode (listed in the report) instead of stopping")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a layout at --out written with other arguments or from photos that changed since")
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
    """``--palette``: a palette name of :data:`hfr_tutorial.data.thermal_palettes.PALETTES`, ``auto`` or ``None``."""
    if text is None:
        return None
    key = text.strip().lower()
    if key != "auto" and key not in PALETTES:
        raise DatasetError(f"--palette {text!r}: unknown; choose one of {list(PALETTES)} or auto "
                           "(e.g. --palette ironbow).")
    return key


def check_per_identity(n: int) -> int:
    """``--per-identity``: 0 (all photos) or a positive number of photos per identity."""
    if n < 0:
        raise DatasetError(f"--per-identity {n}: give a number of photos (0 keeps all).")
    return int(n)


def parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or not all(np.isfinite(parts)) or min(parts) < 0 or not 0.99 <= sum(parts) <= 1.01 \
            or parts[0] <= 0:
        raise DatasetError(f"--split {text!r}: give three fractions train,dev,eval that add up to 1, with some "
                           "training identities (e.g. --split 0.5,0.2,0.3).")
    return parts  # type: ignore[return-value]


# ---------------------------------------------------------------------- finding the photos

@dataclass
class Scan:
    """What :func:`scan_sources` found: the photos, and everything it did not take, by name."""

    photos: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # why -> source-relative paths (printable)
    identity_folders: dict[str, str] = field(default_factory=dict)  # identity -> its folder(s), printable
    renamed: dict[str, str] = field(default_factory=dict)  # identity -> original folder name, when they differ
    labels: dict[str, str] = field(default_factory=dict)  # prefix -> source folder (several sources)
    notes: list[str] = field(default_factory=list)

    def skip(self, why: str, where: str) -> None:
        self.skipped.setdefault(why, []).append(printable(where))


SKIP_WHY = {
    "hidden": "hidden or system entries skipped",
    "convert": "photos in a format not read here skipped (convert them to JPEG or PNG to include them)",
    "not_image": "file(s) that are not images were ignored",
    "loose": "image(s) lie directly in a source or modality folder, not in a person's folder, and were skipped "
             "(move each into <identity>/)",
    "broken_link": "broken symbolic link(s) skipped",
    "empty": "person folder(s) hold no photo read here and give no identity",
}


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_NAMES


def _check_sources(sources: Sequence[Path]) -> list[Path]:
    """The sources as folders; refuses a missing one, the same folder twice, or one inside another."""
    out, real = [], []
    for src in sources:
        src = Path(src)
        if src.is_file():
            raise DatasetError(f"--source {src}: is a file, not a folder. Give the folder that holds the people's "
                               f"folders (its folder {src.parent}?).")
        if not src.is_dir():
            raise DatasetError(f"--source {src}: no such folder. Give a folder of <identity>/<image> or "
                               "<modality>/<identity>/<image> photos.")
        r = src.resolve()
        for prev, prev_r in zip(out, real):
            if r == prev_r or prev_r in r.parents or r in prev_r.parents:
                raise DatasetError(f"--source {src} and --source {prev} are the same folder or one holds the other: "
                                   "their photos would be read twice, as two sets of people. Give each folder once.")
        out.append(src)
        real.append(r)
    return out


def source_labels(sources: Sequence[Path]) -> list[str]:
    """The identity prefix of each source ('' for a single source): its folder name, numbered when two share it."""
    if len(sources) == 1:
        return [""]
    labels: list[str] = []
    for src in sources:
        base = readable_name(Path(src).resolve().name or "source")[0]
        label, k = base, 2
        while label.casefold() in {x.casefold() for x in labels}:
            label, k = f"{base}-{k}", k + 1
        labels.append(label)
    return labels


def _modality_groups(src: Path, modality: str, scan: Scan) -> list[tuple[str, Path]]:
    """[(modality, folder of identity folders)] of one source; refuses unknown modality folders by name."""
    subdirs = []
    for p in sorted(src.iterdir(), key=lambda p: natural_key(p.name)):
        if _is_hidden(p.name):
            scan.skip("hidden", f"{src.name}/{p.name}" + ("/" if p.is_dir() else ""))
        elif p.is_dir():
            subdirs.append(p)
    if not subdirs:
        raise DatasetError(f"--source {src}: holds no sub-folder. Put each person's photos in a folder named "
                           "after them: <source>/<identity>/<image>.")
    lowered = [d.name.lower() for d in subdirs]
    if not any(n in KNOWN_MODALITIES or n in MODALITY_ALIASES for n in lowered):
        return [(modality, src)]  # <source>/<identity>/: its loose files are listed by scan_sources
    for p in sorted(src.iterdir(), key=lambda p: natural_key(p.name)):
        if not _is_hidden(p.name) and not p.is_dir():  # a README or manifest beside the modality folders
            kind = "loose" if p.suffix.lower() in IMAGE_EXTENSIONS else \
                "convert" if p.suffix.lower() in CONVERTIBLE else "not_image" if p.is_file() else "broken_link"
            scan.skip(kind, f"{src.name}/{p.name}")
    unknown = [d.name for d in subdirs if d.name.lower() not in KNOWN_MODALITIES]
    if unknown:
        fixes = "; ".join(f"rename {n!r} to {MODALITY_ALIASES[n.lower()]}" for n in unknown
                          if n.lower() in MODALITY_ALIASES)
        known = [d.name for d in subdirs if d.name.lower() in KNOWN_MODALITIES]
        raise DatasetError(
            f"--source {src}: its first-level folders are read as modalities ({', '.join(known + unknown)}), but "
            f"{unknown} {'is' if len(unknown) == 1 else 'are'} not a modality this project knows. Accepted modality "
            f"folders (any case): {', '.join(KNOWN_MODALITIES)}. " + (f"Fix: {fixes}. " if fixes else "")
            + f"If {unknown[0]!r} is a person, put the people under one modality folder instead "
              f"(<source>/vis/<identity>/), or give a folder of people only with --modality.")
    twice = sorted({n for n in lowered if lowered.count(n) > 1})
    if twice:
        raise DatasetError(f"--source {src}: folders {[d.name for d in subdirs if d.name.lower() in twice]} are the "
                           "same modality in another case; merge them into one folder.")
    return [(d.name.lower(), d) for d in subdirs]


def _walk(folder: Path, rel: str, guard: RootGuard, src: Path, scan: Scan, seen: set[Path]) -> list[tuple[Path, str]]:
    """Image files under ``folder`` as (path, path relative to the identity folder), hidden entries pruned.

    Every entry is resolved: one that leads outside the source (a symbolic link) is refused; a folder
    reached twice (a link loop) is read once.
    """
    real = guard.real(folder)
    if real in seen:
        return []
    seen.add(real)
    found: list[tuple[Path, str]] = []
    for p in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        sub = f"{rel}/{p.name}" if rel else p.name
        where = f"{src.name}/{p.relative_to(src).as_posix()}"
        if _is_hidden(p.name):
            scan.skip("hidden", where + ("/" if p.is_dir() else ""))
            continue
        escape = guard.outside(p)
        if escape is not None:
            raise DatasetError(f"{printable(str(p))}: a symbolic link to {printable(str(escape))}, outside --source "
                               f"{guard.real_root}; only photos inside the source folder are read. Copy the file (or "
                               "folder) into the source instead of linking it, or give its folder as another --source.")
        if p.is_dir():
            found += _walk(p, sub, guard, src, scan, seen)
        elif not p.is_file():
            scan.skip("broken_link", where)
        elif p.suffix.lower() in IMAGE_EXTENSIONS:
            found.append((p, sub))
        else:
            scan.skip("convert" if p.suffix.lower() in CONVERTIBLE else "not_image", where)
    return found


def spread(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` of ``items`` evenly spread over their order (the first, the last and between: a video's frames far
    apart); all of them when ``n`` is 0 or there are no more than ``n``."""
    if not n or len(items) <= n:
        return list(items)
    return [items[int(i)] for i in np.round(np.linspace(0, len(items) - 1, n))]


def scan_sources(sources: Sequence[Path], modality: str, per_identity: int = 0) -> Scan:
    """Every photo as ``{source, identity, modality, name, key, size, mtime_ns}``, and what was not taken.

    ``per_identity`` > 0 keeps that many photos of each identity and modality (:func:`spread`); the
    count left out is in the notes.
    """
    sources = _check_sources(sources)
    scan = Scan()
    n_found = 0
    labels = source_labels(sources)
    if len(sources) > 1:
        scan.labels = {lab: printable(str(Path(s).resolve())) for lab, s in zip(labels, sources)}
        names = [Path(s).resolve().name for s in sources]
        if len({n.casefold() for n in names}) < len(names):
            scan.notes.append("several --source folders have the same name; their identities are kept apart with the "
                              f"prefixes {labels} (equal folder names in two sources are never merged into one person)")
    for src, label in zip(sources, labels):
        guard = RootGuard(src)
        groups = _modality_groups(src, modality, scan)
        people: dict[str, list[tuple[str, Path]]] = {}  # folder name -> [(modality, folder)]
        for mod, folder in groups:
            for p in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
                where = f"{src.name}/{p.relative_to(src).as_posix()}"
                if _is_hidden(p.name):
                    if folder != src:  # the source's own entries were listed by _modality_groups
                        scan.skip("hidden", where + ("/" if p.is_dir() else ""))
                    continue
                escape = guard.outside(p)
                if escape is not None:
                    raise DatasetError(f"{printable(str(p))}: a symbolic link to {printable(str(escape))}, outside "
                                       f"--source {guard.real_root}; only photos inside the source folder are read. "
                                       "Copy the folder into the source instead of linking it, or give it as another "
                                       "--source.")
                if p.is_dir():
                    people.setdefault(p.name, []).append((mod, p))
                elif p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                    scan.skip("loose", where)
                elif p.is_file():
                    scan.skip("convert" if p.suffix.lower() in CONVERTIBLE else "not_image", where)
                else:
                    scan.skip("broken_link", where)
        names = distinct_names(people)
        for folder_name, places in sorted(people.items(), key=lambda kv: natural_key(names[kv[0]][0])):
            base, _ = names[folder_name]
            identity = f"{label}-{base}" if label else base
            shown = printable(folder_name)
            scan.identity_folders[identity] = printable(", ".join(sorted({p.relative_to(src).as_posix()
                                                                          for _, p in places})))
            if base != folder_name:
                scan.renamed[identity] = shown
            for mod, ident_dir in places:
                found = _walk(ident_dir, "", guard, src, scan, set())
                if not found:
                    scan.skip("empty", f"{src.name}/{ident_dir.relative_to(src).as_posix()}/")
                n_found += len(found)
                for f, rel in spread(found, per_identity):
                    stem, _ = readable_name(rel.rsplit(".", 1)[0].replace("/", "_"))
                    st = f.stat()
                    scan.photos.append({"source": f, "identity": identity, "modality": mod, "name": stem,
                                        "key": printable(f"{label}/{f.relative_to(src).as_posix()}" if label
                                                         else f.relative_to(src).as_posix()),
                                        "root": str(src), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    if not scan.photos:
        raise DatasetError(f"--source {', '.join(map(str, sources))}: no image files ({', '.join(IMAGE_EXTENSIONS)}) "
                           "found under <identity>/ folders." + _skipped_summary(scan))
    seen: dict[str, Path] = {}
    for ph in scan.photos:
        target = f"{ph['modality']}/{ph['identity']}/{ph['name']}"
        if target in seen:
            raise DatasetError(f"{printable(str(ph['source']))} and {printable(str(seen[target]))} would both become "
                               f"images/{target}.png (their names differ only in characters a layout cannot keep, or "
                               "in the extension); rename one.")
        seen[target] = ph["source"]
    if len(scan.photos) < n_found:
        scan.notes.append(f"--per-identity {per_identity}: {len(scan.photos)} of the {n_found} photos were kept (at "
                          "most that many of each identity and modality, evenly spread)")
    scan.notes += _skip_notes(scan)
    return scan


def _skip_notes(scan: Scan) -> list[str]:
    notes = []
    for why, paths in scan.skipped.items():
        head = SKIP_WHY[why]
        notes.append(f"{len(paths)} {head}: " + ", ".join(paths[:10]) + (" ..." if len(paths) > 10 else ""))
    bad_names = [p["key"] for p in scan.photos if not is_utf8_name(str(p["source"]))]
    if bad_names:
        notes.append(f"{len(bad_names)} photo(s) have names that are not UTF-8 (bytes shown as \\xNN) and were given "
                     "ASCII names in the layout: " + ", ".join(bad_names[:10]) + ". Rename them (e.g. convmv -f latin1 "
                     "-t utf-8 -r --notest DIR) to keep their letters.")
    if scan.renamed:
        shown = [f"{v!r} -> {k}" for k, v in list(scan.renamed.items())[:10]]
        notes.append(f"{len(scan.renamed)} identity folder name(s) changed to be a layout name (the original is in "
                     "dataset.json identity_folders): " + ", ".join(shown))
    return notes


def _skipped_summary(scan: Scan) -> str:
    if not scan.skipped:
        return ""
    return " Skipped: " + "; ".join(f"{SKIP_WHY[w]}: {', '.join(p[:5])}" for w, p in scan.skipped.items())


def source_manifest(photos: Sequence[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every photo read, sorted: the source as it was when the layout was written."""
    return sorted((ph["key"], int(ph["size"]), int(ph["mtime_ns"])) for ph in photos)


def manifest_digest(manifest: Sequence[tuple[str, int, int]]) -> str:
    h = hashlib.sha256()
    for key, size, mtime in manifest:
        h.update(f"{key}\t{size}\t{mtime}\n".encode("utf-8", "backslashreplace"))
    return h.hexdigest()


def _read_manifest(path: Path) -> dict[str, tuple[int, int]] | None:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return {r["path"]: (int(r["size"]), int(r["mtime_ns"])) for r in csv.DictReader(fh)}
    except (OSError, KeyError, ValueError, TypeError):
        return None


def manifest_changes(old: dict[str, tuple[int, int]], new: Sequence[tuple[str, int, int]]) -> str:
    """'2 photo(s) added (a, b); 1 removed (c)' between two manifests ('' when equal)."""
    now = {k: (s, m) for k, s, m in new}
    added = [k for k in now if k not in old]
    removed = [k for k in old if k not in now]
    changed = [k for k in now if k in old and now[k] != old[k]]
    parts = [f"{len(v)} photo(s) {what} ({', '.join(v[:5])}{' ...' if len(v) > 5 else ''})"
             for what, v in (("added", added), ("removed", removed), ("modified", changed)) if v]
    return "; ".join(parts)


def check_readable(photos: list[dict[str, Any]], skip: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Read every photo once before any work: its SHA-256 (duplicates) and its header (unreadable files).

    Unreadable files (not an image, truncated, over the decompression-bomb limit) stop the run
    naming each one, or with ``--skip-unreadable`` are left out and listed.
    """
    bad = []
    for ph in photos:
        try:
            data = Path(ph["source"]).read_bytes()
            ph["sha256"] = hashlib.sha256(data).hexdigest()
            with Image.open(io.BytesIO(data)) as im:
                im.verify()
        except Image.DecompressionBombError as err:
            bad.append((ph, too_large_message(Path(printable(str(ph["source"]))), err)))
        except PermissionError:
            bad.append((ph, "permission denied (make it readable for this user)"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            bad.append((ph, f"{type(err).__name__}: {err}"))
    if bad and not skip:
        listed = "\n  ".join(printable(f"{ph['source']}: {why}") for ph, why in bad[:20])
        raise DatasetError(f"{len(bad)} file(s) cannot be read as images:\n  {listed}\nRe-save, resize or remove them, "
                           "or pass --skip-unreadable to leave them out (they are then listed in the report).")
    skipped = {id(ph) for ph, _ in bad}
    return [ph for ph in photos if id(ph) not in skipped], [printable(f"{ph['source']}: unreadable ({why}), left out")
                                                           for ph, why in bad]


# ---------------------------------------------------------------------- splits and protocol

def split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """(dev, eval) identities for ``n`` identities: rounded fractions, at least one where the fraction is not 0."""
    n_dev, n_eval = int(round(fractions[1] * n)), int(round(fractions[2] * n))
    if fractions[1] > 0:
        n_dev = max(n_dev, 1)
    if fractions[2] > 0:
        n_eval = max(n_eval, 1)
    return n_dev, n_eval


def split_problem(n: int, n_eligible: int, fractions: tuple[float, float, float]) -> str:
    """Why ``fractions`` cannot split ``n`` identities (``n_eligible`` with two VIS photos); '' when they can."""
    n_dev, n_eval = split_counts(n, fractions)
    if n_dev + n_eval > n_eligible or n - n_dev - n_eval < 1:
        return (f"dev and eval need {n_dev + n_eval} identities with two or more VIS photos ({n_eligible} have them) "
                "and train at least one")
    lonely = [s for s, k in (("dev", n_dev), ("eval", n_eval)) if k == 1]
    if lonely:
        return (f"{' and '.join(lonely)} would hold a single identity, and a split with one identity cannot be "
                "measured (its scores need impostor pairs: two different people)")
    return ""


def suggest_split(n: int, n_eligible: int, fractions: tuple[float, float, float]) -> str | None:
    """A ``--split`` value that works for these identities, close to ``fractions`` (None when none can)."""
    want_dev, want_eval = split_counts(n, fractions)
    best: tuple | None = None
    for n_dev in [0] + list(range(2, n)):
        for n_eval in range(2, n):
            n_train = n - n_dev - n_eval
            if n_train < 1 or n_dev + n_eval > n_eligible:
                continue
            # prefer: a dev split kept when one was asked, enough training identities, closeness to the request
            score = ((n_dev > 0) != (want_dev > 0), n_train < 2, n_dev == 0 and n_train < 4,
                     abs(n_dev - want_dev) + abs(n_eval - want_eval))
            if best is None or score < best[0]:
                best = (score, n_dev, n_eval)
    if best is None:
        return None
    _, n_dev, n_eval = best
    for digits in (2, 3, 4):
        f_dev, f_eval = round(n_dev / n, digits), round(n_eval / n, digits)
        text = f"{round(1 - f_dev - f_eval, digits):g},{f_dev:g},{f_eval:g}"
        try:
            parsed = parse_split(text)
        except DatasetError:
            continue
        if split_counts(n, parsed) == (n_dev, n_eval) and not split_problem(n, n_eligible, parsed):
            return text
    return None


def split_identities(vis_counts: dict[str, int], fractions: tuple[float, float, float],
                     seed: int) -> dict[str, str]:
    """{identity: split}: seeded, identity-disjoint; dev/eval only for identities with >= 2 VIS photos.

    Refuses (before any alignment) fractions that leave train empty, need more eligible identities
    than there are, or give dev or eval exactly one identity; the error gives a ``--split`` that works.
    """
    ids = natural_sorted(vis_counts)
    eligible = [i for i in ids if vis_counts[i] >= 2]
    n = len(ids)
    why = split_problem(n, len(eligible), fractions)
    if why:
        fix = suggest_split(n, len(eligible), fractions)
        shown = ",".join(f"{f:g}" for f in fractions)
        raise DatasetError(f"{n} identities ({len(eligible)} with at least two VIS photos) cannot be split with --split "
                           f"{shown}: {why}. " + (f"Use --split {fix}, or add people (and photos)." if fix else
                                                  "Add people: dev and eval need at least two identities with two or "
                                                  "more VIS photos each, and train one more (or use --split 1,0,0 to "
                                                  "put everyone in train)."))
    n_dev, n_eval = split_counts(n, fractions)
    order = [eligible[i] for i in np.random.default_rng([int(seed), 0x5A1]).permutation(len(eligible))]
    split = {i: "train" for i in ids}
    for i in order[:n_dev]:
        split[i] = "dev"
    for i in order[n_dev:n_dev + n_eval]:
        split[i] = "eval"
    return split


def find_duplicates(photos: Sequence[dict[str, Any]], split: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Identical photos (same SHA-256): notes, and the groups (source paths); refuses copies across splits."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for ph in photos:
        groups.setdefault(ph["sha256"], []).append(ph)
    dup = [g for g in groups.values() if len(g) > 1]
    across, other_ids, same_id = [], [], []
    for g in dup:
        ids = list(dict.fromkeys(ph["identity"] for ph in g))
        shown = ", ".join(f"{ph['key']} ({ph['identity']}, {split[ph['identity']]})" for ph in g)
        if len({split[i] for i in ids}) > 1:
            across.append(shown)
        elif len(ids) > 1:
            other_ids.append(shown)
        else:
            same_id.append(shown)
    if across:
        raise DatasetError(f"{len(across)} photo(s) are filed, byte for byte, under identities that fall in different "
                           "splits, so one picture would be trained on and tested (or tested as two people):\n  "
                           + "\n  ".join(across[:10]) + "\nRemove the copy filed under the wrong person (or both if "
                           "unsure), then run the same command again.")
    notes = []
    if other_ids:
        notes.append(f"{len(other_ids)} photo(s) appear, byte for byte, under two identities (one is probably filed "
                     "under the wrong person; check them): " + "; ".join(other_ids[:5]))
    if same_id:
        notes.append(f"{len(same_id)} photo(s) appear twice in one identity's folder (a probe identical to the "
                     "gallery photo is left out of the protocol): " + "; ".join(same_id[:5]))
    return notes, [[printable(ph["key"]) for ph in g] for g in dup]


def gallery_photos(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{identity: record of its gallery photo}: its first real VIS photo in natural order."""
    gallery: dict[str, dict[str, Any]] = {}
    for r in sorted((r for r in records if r["modality"] == "vis" and "from_vis" not in r),
                    key=lambda r: natural_key(r["name"])):
        gallery.setdefault(r["identity"], r)
    return gallery


def difference_hash(image: np.ndarray, side: int = 16) -> np.ndarray:
    """A ``side`` x ``side`` difference hash (bool): is each pixel of a small grey copy brighter than its left one.

    Robust to re-encoding, small crops and brightness changes, so two copies of one picture hash
    within a few bits, while two photos of a person taken apart differ in about half of them.
    """
    grey = Image.fromarray(np.asarray(image)).convert("L").resize((side + 1, side), Image.BILINEAR)
    a = np.asarray(grey, dtype=np.float32)
    return (a[:, 1:] > a[:, :-1]).ravel()


def near_duplicate_probes(records: Sequence[dict[str, Any]], split: dict[str, str], root: Path,
                          bits: int) -> dict[tuple[str, str], int]:
    """{(identity, VIS name): distance} of dev/eval VIS photos within ``bits`` of their gallery photo's hash.

    Hashes of the aligned faces under ``root``; ``bits`` 0 turns the check off.  A photo byte-identical
    to the gallery photo is not listed here: :func:`protocol_rows` leaves it out as an identical copy.
    """
    if bits <= 0:
        return {}
    gallery = gallery_photos(records)
    out: dict[tuple[str, str], int] = {}
    hashes: dict[str, np.ndarray] = {}

    def hash_of(r: dict[str, Any]) -> np.ndarray:
        if r["path"] not in hashes:
            with Image.open(root / r["path"]) as im:
                hashes[r["path"]] = difference_hash(np.asarray(im.convert("RGB")))
        return hashes[r["path"]]

    for r in records:
        g = gallery.get(r["identity"])
        if (r["modality"] != "vis" or "from_vis" in r or split.get(r["identity"]) not in ("dev", "eval")
                or g is None or r is g or (g.get("sha256") is not None and r.get("sha256") == g["sha256"])):
            continue
        d = int((hash_of(r) != hash_of(g)).sum())
        if d <= bits:
            out[(r["identity"], r["name"])] = d
    return out


def protocol_rows(records: list[dict[str, Any]], split: dict[str, str],
                  exclude: set[tuple[str, str]] | dict[tuple[str, str], int] = frozenset()
                  ) -> tuple[list[dict[str, str]], int]:
    """Rows of ``default.csv`` and how many probe copies of a gallery photo were left out.

    Train images are ``train``; in dev/eval the first VIS photo is the gallery; a probe that is
    the gallery photo again (a simulated copy of it, or a byte-identical duplicate) is left out,
    and so is (with ``exclude``, pairs of identity and VIS photo name: :func:`near_duplicate_probes`)
    a near-duplicate of it or a simulated copy of one.
    """
    rows = []
    gallery = gallery_photos(records)
    copies = 0
    for r in records:
        s = split[r["identity"]]
        g = gallery.get(r["identity"])
        source_photo = r.get("from_vis", r["name"] if r["modality"] == "vis" else None)
        if s == "train":
            role = "train"
        elif g is not None and r is g:
            role = "gallery"
        elif g is not None and (r.get("from_vis") == g["name"]
                                or (g.get("sha256") is not None and r.get("sha256") == g["sha256"])):
            copies += r.get("from_vis") != g["name"]  # simulated copies of the gallery are expected, not counted
            continue  # the gallery picture again: it would match itself
        elif source_photo is not None and (r["identity"], source_photo) in exclude:
            continue  # a near-duplicate of the gallery photo (or a simulated copy of one)
        else:
            role = "probe"
        rows.append({"split": s, "role": role, "identity": r["identity"], "modality": r["modality"], "path": r["path"]})
    return rows, copies


# ---------------------------------------------------------------------- the run

def settings_of(args: argparse.Namespace, pseudo: list[str]) -> dict[str, Any]:
    """The arguments that decide the layout (recorded in ``dataset.json["prepare_folder"]``)."""
    return {"sources": [printable(str(Path(s).resolve())) for s in args.source], "modality": args.modality,
            "pseudo": pseudo, "severity": args.severity if pseudo else None, "palette": parse_palette(args.palette),
            "size": int(args.size), "split": list(parse_split(args.split)), "seed": int(args.seed),
            "per_identity": int(args.per_identity), "near_duplicate": int(args.near_duplicate),
            "glasses": _glasses_entries(args.glasses),
            "detector": args.detector, "crop_fraction": float(args.crop_fraction),
            "skip_unreadable": bool(args.skip_unreadable)}


ALIGNMENT_KEYS = ("sources", "modality", "palette", "size", "detector", "crop_fraction")
"""The settings an aligned photo depends on: a ``.partial`` made with others is cleared, not resumed."""
SIMULATION_KEYS = ("size", "pseudo", "seed", "severity", "glasses")
"""The settings a simulated image depends on: simulated images made with others are made again."""


def _glasses_lines(path: Path) -> list[str]:
    """The entries of a ``--glasses`` file (comments and blank lines dropped); DatasetError when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"--glasses {path}: cannot be read ({err}). Give a UTF-8 text file listing one "
                           "<identity>/<file> a line.") from None
    return [e for e in (ln.split("#", 1)[0].strip() for ln in text.splitlines()) if e]


def _glasses_entries(path: Path | None) -> list[str] | None:
    """The entries of a ``--glasses`` file, sorted (part of the settings: a changed list is a changed layout)."""
    return None if path is None else sorted(_glasses_lines(path))


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
    lines = _glasses_lines(path)
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
    for ln in lines:
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
        raise DatasetError(f"--palette {palette}: no thermal photos were found (it applies to "
                           "<source>/thermal/<identity>/<image> folders, or --modality thermal). Leave --palette out "
                           "for VIS or NIR photos.")
    out: dict[str, dict[str, Any]] = {}
    for root in sorted({ph["root"] for ph in thermal}):
        if palette != "auto":
            out[root] = {"palette": palette, "confidence": None, "note": "named with --palette"}
            continue
        sample = [ph for ph in thermal if ph["root"] == root][:16]
        match = detect_palette([read_image(ph["source"]) for ph in sample])
        shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(match.fractions.items(), key=lambda kv: -kv[1]))
        if match.ambiguous or match.confidence < PALETTE_MIN_CONFIDENCE:
            raise DatasetError(f"--palette auto: the palette of the thermal photos in {printable(root)} is not clear "
                               f"(best guess {match.name}, {match.confidence:.0%} of pixels on its curve; {shares}; "
                               f"{match.note}). Name it: --palette {'|'.join(PALETTES)}.")
        out[root] = {"palette": match.name, "confidence": round(match.confidence, 4), "note": match.note}
    return out


def to_white_hot(img: np.ndarray, palette: str) -> tuple[np.ndarray, float]:
    """A thermal export in ``palette`` as one white-hot channel (uint8 (H, W, 3)); the share of pixels off the curve."""
    grey, dist = palette_to_grey(img, palette)
    return np.repeat(grey[..., None], 3, axis=2), float((dist > DEFAULT_TOLERANCE).mean())


def _check_places(out: Path, sources: Sequence[Path]) -> None:
    """Refuse an --out that is, holds or lies inside a source (the source is never written to)."""
    out_r = out.resolve()
    for src in sources:
        src_r = Path(src).resolve()
        if out_r == src_r or src_r in out_r.parents or out_r in src_r.parents:
            raise DatasetError(f"--out {out} lies inside (or holds) --source {src}; the source is never written to. "
                               "Choose an output folder outside it.")
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not partial.is_dir():
        raise DatasetError(f"{partial}: is a file; prepare_folder works in this folder next to --out. Move the file "
                           "away or choose another --out.")


def _check_out(out: Path, settings: dict[str, Any], manifest: Sequence[tuple[str, int, int]], overwrite: bool) -> bool:
    """True when ``out`` already holds this exact layout (nothing to do); raises when it may not be replaced.

    "This exact layout" means the same arguments and the same photos: names, sizes and
    modification times of every photo read (``source_manifest.csv``).
    """
    if (out / "dataset.json").is_file():
        try:
            info = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if not isinstance(info, dict) or info.get("format") != LAYOUT_FORMAT:
            raise DatasetError(f"--out {out}: its dataset.json is not a {LAYOUT_FORMAT}; refusing to replace it. "
                               "Choose another folder.")
        same_args = info.get("prepare_folder") == settings
        same_photos = (info.get("source_manifest") or {}).get("sha256") == manifest_digest(manifest)
        if same_args and same_photos:
            return True
        if not overwrite:
            if not same_args:
                raise DatasetError(f"--out {out}: a layout written with other arguments is there. Pass --overwrite to "
                                   "replace it, or choose another folder.")
            old = _read_manifest(out / MANIFEST)
            what = (f"the photos under --source changed since it was written: {manifest_changes(old, manifest)}"
                    if old is not None else "it was written by an older prepare_folder that kept no list of the "
                    "source photos, so it cannot tell whether they changed")
            raise DatasetError(f"--out {out}: a layout written with the same arguments is there, but {what}. Pass "
                               "--overwrite to rebuild it from the photos as they are now, or choose another folder.")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"--out {out}: exists and is neither empty nor a layout. Choose a new folder.")
    return False


def open_partial(out: Path, key: dict[str, Any]) -> Path:
    """``<out>.partial``, ready to resume: one left with other alignment settings is cleared first."""
    partial = out.with_name(out.name + ".partial")
    marker = partial / "settings.json"
    if partial.is_dir():
        if marker.is_file():
            try:
                old = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if old != key:
                changed = sorted(k for k in key if not isinstance(old, dict) or old.get(k) != key[k])
                print(f"{partial}: left by an interrupted run with other alignment settings ({', '.join(changed)}); "
                      "cleared, starting afresh.")
                shutil.rmtree(partial)
        elif any(partial.iterdir()):
            raise DatasetError(f"{partial}: exists but was not made by prepare_folder (it has no settings.json). Move "
                               "it away or delete it, then run the same command again.")
    partial.mkdir(parents=True, exist_ok=True)
    (partial / SCRATCH).unlink(missing_ok=True)  # a write cut by a kill
    marker.write_text(json.dumps(key, indent=1), encoding="utf-8")
    return partial


def save_png(img: np.ndarray, target: Path, scratch: Path) -> str:
    """Write ``img`` to ``target`` as PNG through ``scratch`` and a rename (never half-written); its SHA-256."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    data = buf.getvalue()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(scratch, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(scratch, target)
    return hashlib.sha256(data).hexdigest()


def _sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _png_ok(path: Path, size: int) -> bool:
    """True when ``path`` is a complete PNG of ``size`` x ``size`` (decoded to the last byte)."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.format == "PNG" and im.size == (size, size)
    except (OSError, SyntaxError, ValueError):
        return False


def resumable(partial: Path, photos: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{source: record} of the photos an interrupted run aligned, verified: same source bytes, intact output."""
    log_path = partial / "progress.jsonl"
    if not log_path.is_file():
        return {}
    wanted = {str(ph["source"]): ph for ph in photos}
    done: dict[str, dict[str, Any]] = {}
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the interruption: that photo is redone
        ph = wanted.get(rec.get("source")) if isinstance(rec, dict) else None
        if ph is None or rec.get("sha256") != ph.get("sha256") or not rec.get("png_sha256"):
            continue
        if rec.get("path") != f"images/{ph['modality']}/{ph['identity']}/{ph['name']}.png":
            continue
        if _sha256_of(partial / rec["path"]) == rec["png_sha256"]:
            done[rec["source"]] = rec
    return done


def align_photos(photos: Sequence[dict[str, Any]], partial: Path, detector: Any, size: int, crop_fraction: float,
                 progress: bool, palettes: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Detect and align every photo into ``partial`` (resuming from verified work); one record per photo.

    ``palettes`` (:func:`choose_palettes`): thermal photos of those sources are mapped back to one
    white-hot channel first (:func:`to_white_hot`); a face not found is looked for again with a
    border (:func:`detect_faces`).
    """
    palettes = palettes or {}
    from tqdm import tqdm

    done = resumable(partial, photos)
    if done:
        print(f"resuming in {partial}: {len(done)} of {len(photos)} photos already aligned (verified)")
    records: list[dict[str, Any]] = []
    log_path = partial / "progress.jsonl"
    with open(log_path, "a", encoding="utf-8") as log:
        for ph in tqdm(photos, desc="detect + align", unit="photo", disable=not progress):
            key = str(ph["source"])
            if key in done:
                records.append(done[key])
                continue
            img = read_image(ph["source"])
            palette, off_palette = None, None
            if ph["modality"] == "thermal" and ph.get("root") in palettes:
                palette = palettes[ph["root"]]["palette"]
                img, off_palette = to_white_hot(img, palette)
            faces, padded = detect_faces(detector, img) if detector is not None else ([], False)
            if faces:
                pts, method = faces[0].landmarks, "detected (padded)" if padded else "detected"
                box = [round(float(v), 1) for v in faces[0].box]
            else:
                pts = centre_crop_landmarks(img.shape[1], img.shape[0], size, crop_fraction)
                method, box = ("centre-crop (no face found)" if detector is not None else "centre-crop"), None
            face = warp_to_template(img, pts, size)
            rel = f"images/{ph['modality']}/{ph['identity']}/{ph['name']}.png"
            png = save_png(face, partial / rel, partial / SCRATCH)
            rec = {"source": key, "path": rel, "identity": ph["identity"], "modality": ph["modality"],
                   "name": ph["name"], "faces_found": len(faces), "alignment": method, "box": box,
                   "sha256": ph["sha256"], "png_sha256": png}
            if palette is not None:
                rec.update(palette=palette, off_palette=round(off_palette, 4))
            log.write(json.dumps(rec) + "\n")
            log.flush()
            records.append(rec)
    return records


def simulate_modalities(records: Sequence[dict[str, Any]], pseudo: Sequence[str], partial: Path, size: int,
                        seed_base: int, progress: bool, key: dict[str, Any] | None = None,
                        severity: Any = DEFAULT_SEVERITY, glasses: set[str] | frozenset[str] = frozenset()
                        ) -> list[dict[str, Any]]:
    """Simulated NIR/thermal images of every aligned VIS face (:func:`simulate_face`, at ``severity``;
    the VIS photos whose ``source`` is in ``glasses`` with glasses).

    An intact image an interrupted try made with the same simulation settings (``key``, recorded
    in ``simulation.json``: :data:`SIMULATION_KEYS`) is kept; those made with other settings are
    deleted and made again.
    """
    from tqdm import tqdm

    marker = partial / "simulation.json"
    try:
        same = json.loads(marker.read_text(encoding="utf-8")) == key
    except (OSError, ValueError):
        same = False
    if not same:  # images of other settings go before the new marker: a later resume must not keep them
        for mod in pseudo:
            shutil.rmtree(partial / "images" / mod, ignore_errors=True)
    marker.write_text(json.dumps(key), encoding="utf-8")
    simulated: list[dict[str, Any]] = []
    vis = [r for r in records if r["modality"] == "vis"]
    for r in tqdm(vis, desc=f"simulate {'+'.join(pseudo)} ({severity})", unit="face", disable=not progress):
        face = np.asarray(Image.open(partial / r["path"]).convert("RGB"))
        for mod in pseudo:
            rel = f"images/{mod}/{r['identity']}/{r['name']}.png"
            if not _png_ok(partial / rel, size):
                img = simulate_face(face, mod, severity, seed_base, r["path"], glasses=r["source"] in glasses)
                save_png(img, partial / rel, partial / SCRATCH)
            simulated.append({"path": rel, "identity": r["identity"], "modality": mod, "name": r["name"],
                              "from_vis": r["name"], "sha256": r.get("sha256")})
    return simulated


def _remove_strays(partial: Path, keep: set[str]) -> None:
    """Delete images an earlier try left in ``partial`` that this layout does not use (a photo removed since)."""
    images = partial / "images"
    if not images.is_dir():
        return
    for f in sorted(images.rglob("*")):
        if f.is_file() and f.relative_to(partial).as_posix() not in keep:
            f.unlink()
    for d in sorted((d for d in images.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
        if not any(d.iterdir()):
            d.rmdir()


def write_tables(partial: Path, rows: Sequence[dict[str, str]], records: Sequence[dict[str, Any]],
                 manifest: Sequence[tuple[str, int, int]], palettes: bool = False) -> None:
    """protocols/default.csv, the alignment report (with each thermal photo's palette and share of pixels
    off its curve when ``palettes``) and the source manifest (UTF-8)."""
    (partial / "protocols").mkdir(exist_ok=True)
    with open(partial / "protocols" / "default.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(PROTOCOL_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    with open(partial / REPORT, "w", newline="", encoding="utf-8") as fh:
        fields = ["source", "path", "identity", "faces_found", "alignment", "box"]
        fields += ["palette", "off_palette"] if palettes else []
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in records:
            writer.writerow({k: printable(r[k]) if k == "source" else r.get(k) for k in writer.fieldnames})
    with open(partial / MANIFEST, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "size", "mtime_ns"])
        writer.writerows(manifest)


def install(partial: Path, out: Path) -> None:
    """Move the finished ``partial`` to ``out``; a layout already there is moved aside first and then deleted."""
    for leftover in ("progress.jsonl", "settings.json", "simulation.json", SCRATCH):
        (partial / leftover).unlink(missing_ok=True)
    old = out.with_name(f".{out.name}.replaced")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(partial, out)
    except BaseException:
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    pseudo = parse_pseudo(args.pseudo)
    fractions = parse_split(args.split)
    size, size_warning = check_size(args.size)
    check_seed(args.seed)
    check_crop_fraction(args.crop_fraction)
    per_identity = check_per_identity(args.per_identity)
    if args.glasses is not None and not pseudo:
        raise DatasetError("--glasses says which photos to simulate with glasses: it needs --pseudo nir,thermal.")
    if args.glasses is not None and args.severity == "mild":
        raise DatasetError("--glasses needs --severity realistic (the mild simulation has no glasses).")
    out = Path(args.out)
    _check_places(out, args.source)
    settings = settings_of(args, pseudo)
    scan = scan_sources(args.source, args.modality, per_identity)
    manifest = source_manifest(scan.photos)
    if _check_out(out, settings, manifest, args.overwrite):
        print(f"{out}: up to date (written by an earlier run with the same arguments from the same photos); "
              "nothing to do.")
        return json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    notes = list(scan.notes)
    photos, unreadable = check_readable(scan.photos, args.skip_unreadable)
    if pseudo and not any(ph["modality"] == "vis" for ph in photos):
        raise DatasetError("--pseudo simulates NIR/thermal from VIS photos, but no VIS photo was found "
                           "(check --modality and the folder names).")
    real = sorted({ph["modality"] for ph in photos} & set(pseudo))
    if real:
        raise DatasetError(f"--pseudo {','.join(pseudo)}: the sources already hold real {', '.join(real)} photos; a "
                           "simulated image would take the place of a real one. Simulate only the modalities you do "
                           "not have (" + (f"--pseudo {','.join(m for m in pseudo if m not in real)}" if set(pseudo) - set(real)
                                           else "leave --pseudo out") + ").")
    palettes = choose_palettes(photos, settings["palette"])
    glasses = read_glasses_list(args.glasses, photos, args.severity)
    vis_counts: dict[str, int] = {}
    for ph in photos:
        vis_counts[ph["identity"]] = vis_counts.get(ph["identity"], 0) + (ph["modality"] == "vis")
    split = split_identities(vis_counts, fractions, args.seed)  # before any alignment work
    dup_notes, duplicates = find_duplicates(photos, split)
    notes += dup_notes
    detector = None
    if args.detector != "none":
        from hfr_tutorial.data.detect import DetectorUnavailable, FaceDetector

        try:
            detector = FaceDetector(method=args.detector)  # fails here, before any work, when dlib is missing
        except DetectorUnavailable as err:
            raise DatasetError(f"{err} (or pass --detector none to centre-crop faces that are already cropped).") from None

    partial = open_partial(out, {k: settings[k] for k in ALIGNMENT_KEYS})
    progress = not args.no_progress
    records = align_photos(photos, partial, detector, size, float(args.crop_fraction), progress, palettes)
    if detector is not None and not any(r["faces_found"] for r in records):
        raise DatasetError(f"No face was found in any of the {len(records)} photos of {', '.join(map(str, args.source))}. "
                           "Are these face photos? Try --detector cnn (more poses), or --detector none for faces "
                           f"already cropped. Work so far is in {partial}.")
    simulated = simulate_modalities(records, pseudo, partial, size, args.seed, progress,
                                    key={k: settings[k] for k in SIMULATION_KEYS}, severity=args.severity,
                                    glasses=glasses) if pseudo else []

    near = near_duplicate_probes(records, split, partial, int(args.near_duplicate))
    rows, copies = protocol_rows(records + simulated, split, near)
    _remove_strays(partial, {r["path"] for r in records + simulated})
    write_tables(partial, rows, records, manifest, palettes=bool(palettes))
    centre = [r for r in records if r["alignment"].startswith("centre-crop")]
    several = [r for r in records if r["faces_found"] > 1]
    if centre:
        notes.append(f"{len(centre)} photo(s) were centre-cropped" + (" (no face found)" if detector else "")
                     + ": " + ", ".join(printable(Path(r["source"]).name) for r in centre[:10]))
    if several:
        notes.append(f"{len(several)} photo(s) showed several faces; the largest was taken: "
                     + ", ".join(printable(Path(r["source"]).name) for r in several[:10]))
    if copies:
        notes.append(f"{copies} probe(s) identical to their identity's gallery photo were left out of the protocol")
    if near:
        notes.append(f"{len(near)} probe photo(s) left out (with their simulated copies) as near-duplicates of their "
                     f"identity's gallery photo (difference hash within {args.near_duplicate} of 256 bits): "
                     + ", ".join(printable(f"{i}/{n} ({d})") for (i, n), d in sorted(near.items())[:10]))
    padded = sum(r["alignment"] == "detected (padded)" for r in records)
    if padded:
        notes.append(f"{padded} photo(s) were detected only with a border added (tight face crops)")
    if size_warning:
        notes.append(size_warning)
    notes += unreadable
    counts = {"detected": sum(r["alignment"].startswith("detected") for r in records), "centre-crop": len(centre)}
    modalities = [m for m in KNOWN_MODALITIES if any(r["modality"] == m for r in records + simulated)]
    info = {
        "format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "name": safe_name(out.name), "modalities": modalities,
        "image_size": size, "image_size_warning": size_warning or None,
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
        "thermal_palette": {"requested": settings["palette"],
                            "sources": {printable(k): v for k, v in palettes.items()},
                            "max_off_palette": max((r.get("off_palette") or 0.0 for r in records), default=0.0)}
        if palettes else None,
        "near_duplicate_probes_left_out": len(near),
        "identities": natural_sorted(vis_counts), "splits": {s: sum(v == s for v in split.values())
                                                             for s in ("train", "dev", "eval")},
        "protocols": ["default"], "default_protocol": "default", "converter": CONVERTER,
        "alignment_counts": counts, "photos_with_several_faces": len(several), "notes": notes,
        "identity_folders": {i: scan.identity_folders[i] for i in natural_sorted(vis_counts)},
        "renamed_identities": scan.renamed, "sources": scan.labels or None,
        "skipped_files": {w: p[:LIST_CAP] for w, p in scan.skipped.items()},
        "duplicates": duplicates[:LIST_CAP],
        "source_manifest": {"file": MANIFEST, "photos": len(manifest), "bytes": sum(m[1] for m in manifest),
                            "sha256": manifest_digest(manifest)},
        "prepare_folder": settings,
    }
    (partial / "dataset.json").write_bytes((json.dumps(info, indent=2, ensure_ascii=False) + "\n")
                                           .encode("utf-8", "backslashreplace"))
    validate_layout(partial, protocol="default", decode=False)
    install(partial, out)

    print(f"wrote {len(records)} aligned photos" + (f" + {len(simulated)} simulated images" if simulated else "")
          + f" of {len(vis_counts)} identities to {out}")
    print(f"  alignment: {counts['detected']} detected, {counts['centre-crop']} centre-cropped; "
          f"{len(several)} with several faces (largest taken); report: {out / REPORT}")
    print("  splits (identities): " + ", ".join(f"{k} {v}" for k, v in info["splits"].items())
          + f"; protocol: {out / 'protocols' / 'default.csv'} ({len(rows)} rows)")
    for note in notes:
        print(printable(f"  note: {note}"))
    if size_warning:
        print(f"warning: {size_warning}", file=sys.stderr)
    return info


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
