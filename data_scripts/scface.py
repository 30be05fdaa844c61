"""SCface (Surveillance Cameras Face) -> standard layout (mugshot gallery; VIS and NIR surveillance probes).

Point ``--root`` at your SCface folder (the one that holds ``mugshot_frontal_cropped_all``,
``surveillance_cameras_distance_1`` .. ``_3`` and ``surveillance_cameras_IR_cam8``)::

    python data_scripts/scface.py --root /data/SCface --out /data/layouts/scface \\
        [--annotations SCface/scface_annotations.txt] [--size 112] [--limit N]
    python -m data_scripts.scface ...                # the same, from the repository root

Files read: ``mugshot_frontal_cropped_all/<sid>_frontal.<ext>`` (VIS mugshot, any extension and
case), ``<sid>_cam<c>_<d>.<ext>`` anywhere under ``surveillance_cameras_distance_<d>/`` (the camera
sub-folder name is unconfirmed and not used: camera and distance come from the file name; cam1-5
are visible, cam6-7 IR night mode = nir) and ``surveillance_cameras_IR_cam8/<sid>_cam8.<ext>``
(NIR mugshot).  Distance 1 is the farthest (4.2 m), 3 the closest (1.0 m).

Subjects 1-43 are train, 44-87 dev, 88-130 eval (Bob's split).  Protocols:

* ``combined``, ``close``, ``medium``, ``far`` (Bob's VIS protocols): gallery = the frontal VIS
  mugshot; probes = cam1-5 at all distances, or at distance 3 / 2 / 1; train = mugshots and
  cam1-5 images of the training subjects.
* ``vis-nir`` (the cross-spectral protocol; ``default``), ``vis-nir-close``, ``-medium``, ``-far``:
  gallery = the frontal VIS mugshot; probes = IR cam6 and cam7 (all distances, or one);
  train = every VIS and NIR image of the training subjects.
* ``nir-nir``: gallery = the IR mugshot (cam8); probes = cam6/cam7 at all distances.  (Bob's "IR"
  protocol may use other distances; unconfirmed.)

Alignment: the eye centres of the annotation file that comes with SCface (``--annotations``;
by default ``<root>/scface_annotations.txt`` when present): one line per image,
``<basename> x1 y1 x2 y2 xn yn xm ym`` (eyes, nose tip, mouth centre).  The faces are aligned
on the two eyes; images without a line are centre-cropped and counted.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

try:
    from ._common import (DatasetError, Item, expect_dir, finish, limit_identities, make_parser, natural_key,
                          read_text, require_root, rows, run_cli)
except ImportError:  # run as a script: python data_scripts/scface.py
    from _common import (DatasetError, Item, expect_dir, finish, limit_identities, make_parser, natural_key,
                         read_text, require_root, rows, run_cli)

FOLDER = "SCface"
HOLDS = "mugshot_frontal_cropped_all, surveillance_cameras_distance_1..3 and surveillance_cameras_IR_cam8"
DATASET = "SCface"
SOURCE = ("SCface - Surveillance Cameras Face Database, University of Zagreb, FER (Grgic, Delac, Grgic, "
          "MTAP 2011), http://www.scface.org")
LICENCE = ("Obtained from the University of Zagreb under a signed licence agreement; research use only, no "
           "redistribution. Do not share these images or this layout.")
_EXT = r"\.(jpe?g|png|bmp|tiff?)$"
_FRONTAL = re.compile(r"^(\d+)_frontal" + _EXT, re.IGNORECASE)
_CAM = re.compile(r"^(\d+)_cam([1-7])_([1-3])" + _EXT, re.IGNORECASE)
_CAM8 = re.compile(r"^(\d+)_cam8" + _EXT, re.IGNORECASE)
DISTANCES = {"close": "3", "medium": "2", "far": "1"}


def split_of(subject: int) -> str:
    return "train" if subject <= 43 else "dev" if subject <= 87 else "eval"


def read_annotations(path: Path, encoding: str | None = None) -> dict[str, np.ndarray]:
    """{basename lower-case: (2, 2) eye centres} from the SCface annotation file (name + 8 integers a line)."""
    out = {}
    for n, line in enumerate(read_text(path, "--annotations", encoding).splitlines(), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) < 9:
            raise DatasetError(f"{path}, line {n}: {len(tokens) - 1} numbers after the name; each line is "
                               "'<basename> x1 y1 x2 y2 xn yn xm ym' (eyes, nose tip, mouth centre).")
        try:
            values = [float(v) for v in tokens[1:9]]
        except ValueError:
            raise DatasetError(f"{path}, line {n}: {tokens[1:9]} are not numbers.") from None
        name = re.sub(_EXT, "", tokens[0], flags=re.IGNORECASE).lower()
        out[Path(name).name] = np.asarray(values[:4], dtype=np.float64).reshape(2, 2)
    return out


def build_parser():
    p = make_parser("scface.py", __doc__ + "\nSee data_scripts/README.md.")
    p.add_argument("--annotations", type=Path, default=None, metavar="FILE",
                   help="the SCface annotation file (default: <root>/scface_annotations.txt when present)")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    root = require_root(args.root, FOLDER, HOLDS)
    mug_dir = expect_dir(root, "mugshot_frontal_cropped_all", FOLDER, HOLDS)
    dist_dirs = sorted(d for d in root.iterdir() if d.is_dir()
                       and re.match(r"^surveillance_cameras_distance_[1-3]$", d.name, re.IGNORECASE))
    if not dist_dirs:
        expect_dir(root, "surveillance_cameras_distance_1", FOLDER, HOLDS)
    cam8_dir = root / "surveillance_cameras_IR_cam8"
    notes = []
    annot_path = args.annotations
    if annot_path is None and (root / "scface_annotations.txt").is_file():
        annot_path = root / "scface_annotations.txt"
    if annot_path is not None and not Path(annot_path).is_file():
        raise DatasetError(f"--annotations {annot_path}: no such file (the SCface annotation text file, one line "
                           "'<basename> x1 y1 ... xm ym' per image).")
    eyes = read_annotations(Path(annot_path), args.encoding) if annot_path is not None else {}
    if annot_path is None:
        notes.append("no annotation file: every image is centre-cropped, not aligned (surveillance faces are small; "
                     "give --annotations)")

    items: list[Item] = []
    seen: set[str] = set()

    def add(f: Path, subject: str, modality: str, **info) -> None:
        name = f.name.rsplit(".", 1)[0]
        if name.lower() in seen:  # the same picture in a second folder (e.g. surveillance_cameras_all)
            return
        seen.add(name.lower())
        sid = int(subject)
        items.append(Item(source=f, identity=f"{sid:03d}", modality=modality, name=name,
                          key=f.relative_to(root).as_posix(), eyes=eyes.get(name.lower()),
                          info={"subject": sid, **info}))

    for f in sorted(mug_dir.iterdir()):
        m = _FRONTAL.match(f.name)
        if m and f.is_file():
            add(f, m.group(1), "vis", camera="frontal")
    for d in dist_dirs:
        for f in sorted(d.rglob("*")):
            m = _CAM.match(f.name)
            if m and f.is_file():
                cam = int(m.group(2))
                add(f, m.group(1), "vis" if cam <= 5 else "nir", camera=f"cam{cam}", distance=m.group(3))
    if cam8_dir.is_dir():
        for f in sorted(cam8_dir.iterdir()):
            m = _CAM8.match(f.name)
            if m and f.is_file():
                add(f, m.group(1), "nir", camera="cam8")
    else:
        notes.append(f"{cam8_dir.name}/ not found: no nir-nir protocol")
    if not any(it.info["camera"] == "frontal" for it in items):
        raise DatasetError(f"no mugshot named like 001_frontal.JPG in {mug_dir}; is --root the folder that holds "
                           f"{HOLDS}?")
    if not any("distance" in it.info for it in items):
        raise DatasetError(f"no surveillance image named like 001_cam1_1.jpg under {root}/surveillance_cameras_"
                           f"distance_<d>/; is --root the folder that holds {HOLDS}?")
    if eyes:
        missing = sum(it.eyes is None for it in items)
        if missing:
            notes.append(f"{missing} image(s) have no line in {Path(annot_path).name}")
    too_big = sorted({it.info["subject"] for it in items if not 1 <= it.info["subject"] <= 130})
    if too_big:
        notes.append(f"subject ids {too_big[:5]} are outside 1..130; they are put in eval")

    keep = limit_identities((it.identity for it in items), args.limit)
    items = [it for it in items if it.identity in keep]
    items.sort(key=lambda it: (it.info["subject"], natural_key(it.name)))

    def sel(split: str, cameras: Sequence[str], distance: str | None = None) -> list[Item]:
        return [it for it in items if split_of(it.info["subject"]) == split and it.info["camera"] in cameras
                and (distance is None or it.info.get("distance") == distance)]

    vis_cams = ["cam1", "cam2", "cam3", "cam4", "cam5"]
    ir_cams = ["cam6", "cam7"]
    definitions = {  # name: (train cameras, gallery camera, probe cameras, distance)
        "combined": (["frontal"] + vis_cams, "frontal", vis_cams, None),
        **{k: (["frontal"] + vis_cams, "frontal", vis_cams, d) for k, d in DISTANCES.items()},
        "vis-nir": (["frontal", "cam8"] + vis_cams + ir_cams, "frontal", ir_cams, None),
        **{f"vis-nir-{k}": (["frontal", "cam8"] + vis_cams + ir_cams, "frontal", ir_cams, d)
           for k, d in DISTANCES.items()},
        "nir-nir": (["cam8"] + ir_cams, "cam8", ir_cams, None),
    }
    protocols: dict[str, list] = {}
    for name, (train_cams, gal_cam, probe_cams, dist) in definitions.items():
        prows = rows("train", "train", sel("train", train_cams))
        n_test = 0
        for split in ("dev", "eval"):
            gallery = sel(split, [gal_cam])
            tested = {g.identity for g in gallery}
            probes = [it for it in sel(split, probe_cams, dist) if it.identity in tested]
            n_test += len(probes)
            prows += rows(split, "gallery", gallery) + rows(split, "probe", probes)
        if n_test:
            protocols[name] = prows
    align = "eye centres of the SCface annotation file mapped to the template eyes" if eyes else "centre crop"
    return finish(args, protocols, default="vis-nir" if "vis-nir" in protocols else "combined", dataset=DATASET,
                  converter="data_scripts/scface.py", source=SOURCE, licence=LICENCE, alignment=align, notes=notes)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
