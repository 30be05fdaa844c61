"""Tufts Face Database -> standard layout (VIS gallery; thermal and NIR probes).

Unzip the packages you downloaded (``TD_RGB_E_Set1.zip`` .. ``TD_IR_E_Set4.zip``, ...) into one
folder and point ``--root`` at it (the folder that holds ``TD_RGB_E_Set1``, ``TD_IR_E_Set1``, ...)::

    python data_scripts/tufts.py --root /data/Tufts --out /data/layouts/tufts \\
        [--seed 0] [--splits 1] [--train-ids 50] [--boxes bounding-boxes.csv] [--size 112] [--limit N]
    python -m data_scripts.tufts ...                 # the same, from the repository root

Packages read (whichever are present; ``--packages`` restricts them): ``TD_RGB_E``, ``TD_RGB_A``
(vis), ``TD_IR_E``, ``TD_IR_A`` (thermal), ``TD_NIR_A`` (nir), each as
``<PKG>_Set<s>/<participant>/<PKG>_<k>.jpg``.  A set folder nested once more by the unzip tool
(``TD_IR_E_Set1/TD_IR_E_Set1/1/...``), or packages one folder deeper than ``--root``, are accepted.

Tufts defines no split.  This converter draws ``--splits`` seeded identity-disjoint splits
(``numpy.random.default_rng([seed, split])``), by default one split of 50 training / 63 test
participants, the sizes of the VIS-thermal protocol of DVG-Face (Fu et al., TPAMI 2021), whose
split files were not found: these are DVG-Face-like splits, not DVG-Face's.

Protocols (``splitN`` = split N; the same identity split for both):

* ``vis-thermal-splitN``: train = VIS and thermal images of the training participants; eval
  gallery = one VIS image per test participant (``TD_RGB_E_1``, the neutral expression, when
  present); eval probes = all their thermal images.  ``default`` is ``vis-thermal-split1``.
* ``vis-nir-splitN``: the same with NIR probes (only when ``TD_NIR_A`` is present).

Alignment: the database ships no landmarks.  ``--boxes`` reads third-party face boxes in the
``bounding-boxes.csv`` format of maxbbraun/tdface-annotations (``Set,Participant,File,Left,Top,
Width,Height``; thermal images only) and crops a square of ``--box-margin`` times the box around
it; ``--landmarks`` takes your own eye centres or five points; everything else is centre-cropped.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

try:
    from ._common import (IMAGE_EXTENSIONS, DatasetError, Item, finish, limit_identities, make_parser,
                          natural_key, natural_sorted, read_csv_rows, require_root, rows, run_cli, safe_name,
                          scaled_count, seeded_identity_splits)
except ImportError:  # run as a script: python data_scripts/tufts.py
    from _common import (IMAGE_EXTENSIONS, DatasetError, Item, finish, limit_identities, make_parser,
                         natural_key, natural_sorted, read_csv_rows, require_root, rows, run_cli, safe_name,
                         scaled_count, seeded_identity_splits)

FOLDER = "Tufts"
HOLDS = "the unzipped TD_RGB_E_Set1..4, TD_IR_E_Set1..4, ... folders"
DATASET = "Tufts Face Database"
SOURCE = ("Tufts Face Database, Vision and Sensing System Lab, Tufts University (Panetta et al., TPAMI 2020), "
          "http://tdface.ece.tufts.edu")
LICENCE = ("Downloaded under the Tufts Face Database terms: non-commercial research only, no redistribution or "
           "sharing. Do not share these images or this layout.")
PACKAGES = {"TD_RGB_E": "vis", "TD_RGB_A": "vis", "TD_IR_E": "thermal", "TD_IR_A": "thermal", "TD_NIR_A": "nir"}
N_PARTICIPANTS, N_TRAIN = 113, 50


def find_sets(root: Path, pkg: str) -> list[Path]:
    """The folders of one package's sets (``<PKG>_Set<s>`` in --root or one level deeper, or ``<PKG>``)."""
    pat = re.compile(rf"^{pkg}(_Set\d+)?$", re.IGNORECASE)
    found = []
    for parent in [root] + sorted(p for p in root.iterdir() if p.is_dir()):
        for d in sorted(parent.iterdir()):
            if d.is_dir() and pat.match(d.name) and d not in found:
                found.append(d)
    out = []
    for d in found:
        subs = [s for s in d.iterdir() if s.is_dir()]
        while len(subs) == 1 and pat.match(subs[0].name):  # TD_IR_E_Set1/TD_IR_E_Set1/<participant>
            d = subs[0]
            subs = [s for s in d.iterdir() if s.is_dir()]
        if any(s.name.isdigit() for s in subs) and d not in out:
            out.append(d)
    return out


def read_boxes(path: Path | None, encoding: str | None = None) -> dict[tuple[str, str], tuple[float, float, float, float]]:
    """{(participant, file name lower-case): (left, top, width, height)} from a tdface-annotations CSV."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"--boxes {path}: no such file (the bounding-boxes.csv of maxbbraun/tdface-annotations).")
    need = ["Participant", "File", "Left", "Top", "Width", "Height"]
    out = {}
    reader = read_csv_rows(path, "--boxes", encoding)
    cols = {c.strip().lower(): c for c in reader.fieldnames or []}
    missing = [c for c in need if c.lower() not in cols]
    if missing:
        raise DatasetError(f"--boxes {path}: columns {missing} missing; expected a header "
                           "Set,Participant,File,Left,Top,Width,Height.")
    for n, r in enumerate(reader, start=2):
        try:
            box = tuple(float(r[cols[c.lower()]]) for c in need[2:])
            part = str(int(float(r[cols["participant"]])))
        except (TypeError, ValueError):
            raise DatasetError(f"--boxes {path}, line {n}: {dict(r)} has a non-numeric participant or box.") \
                from None
        out[(part, Path(r[cols["file"]].strip()).name.lower())] = box
    return out


def build_parser():
    p = make_parser("tufts.py", __doc__ + "\nSee data_scripts/README.md.", seeded=True)
    p.add_argument("--splits", type=int, default=1, help="number of seeded identity splits (default 1)")
    p.add_argument("--train-ids", type=int, default=None,
                   help=f"training participants per split (default {N_TRAIN}; scaled down with --limit)")
    p.add_argument("--packages", nargs="+", default=None, choices=list(PACKAGES), metavar="PKG",
                   help=f"packages to read (default: all present of {list(PACKAGES)})")
    p.add_argument("--boxes", type=Path, default=None, metavar="CSV",
                   help="face boxes Set,Participant,File,Left,Top,Width,Height (maxbbraun/tdface-annotations)")
    p.add_argument("--box-margin", type=float, default=1.3,
                   help="side of the square crop as a multiple of the box's longer side (default 1.3)")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.splits < 1:
        raise DatasetError(f"--splits {args.splits}: give at least 1.")
    root = require_root(args.root, FOLDER, HOLDS)
    boxes = read_boxes(args.boxes, args.encoding)
    packages = args.packages or list(PACKAGES)
    items: list[Item] = []
    found_pkgs = []
    for pkg in packages:
        sets = find_sets(root, pkg)
        if sets:
            found_pkgs.append(pkg)
        for sdir in sets:
            for pdir in sorted((d for d in sdir.iterdir() if d.is_dir() and d.name.isdigit()),
                               key=lambda d: int(d.name)):
                ident = str(int(pdir.name))
                for f in sorted(pdir.rglob("*"), key=lambda f: natural_key(f.name)):
                    if not f.is_file() or f.suffix.lower() not in IMAGE_EXTENSIONS:
                        continue
                    m = re.match(rf"^{pkg}_(\d+)$", f.stem, re.IGNORECASE)
                    items.append(Item(source=f, identity=ident, modality=PACKAGES[pkg], name=safe_name(f.stem),
                                      key=f.relative_to(root).as_posix(), box=boxes.get((ident, f.name.lower())),
                                      info={"package": pkg, "k": int(m.group(1)) if m else None}))
    vis_pkgs = [p for p in found_pkgs if PACKAGES[p] == "vis"]
    if not vis_pkgs:
        wanted = [p for p in packages if PACKAGES[p] == "vis"] or ["TD_RGB_E"]
        raise DatasetError(f"expected {FOLDER}/{wanted[0]}_Set1/<participant>/{wanted[0]}_1.jpg (no "
                           f"{' or '.join(wanted)} set folder found in {root}); is --root the folder that holds "
                           f"{HOLDS}?")
    if not any(PACKAGES[p] != "vis" for p in found_pkgs):
        raise DatasetError(f"expected {FOLDER}/TD_IR_E_Set1/ (or another TD_IR_*/TD_NIR_A set folder) in {root}: "
                           f"only VIS packages were found; is --root the folder that holds {HOLDS}?")
    notes = [f"packages read: {', '.join(found_pkgs)}",
             "no official Tufts split: seeded identity splits of this converter (DVG-Face-like sizes)"]
    if not boxes and not args.landmarks:
        notes.append("no --boxes/--landmarks: every image is centre-cropped, not aligned")

    keep = limit_identities((it.identity for it in items), args.limit)
    items = [it for it in items if it.identity in keep]
    ids = natural_sorted(keep)
    n_train = args.train_ids if args.train_ids is not None else scaled_count(len(ids), N_TRAIN, N_PARTICIPANTS)
    if len(ids) != N_PARTICIPANTS or args.train_ids is not None:
        notes.append(f"{len(ids)} participants; {n_train} per split in train, {len(ids) - n_train} tested")

    def gallery_image(ident: str) -> Item | None:
        pool = [it for it in items if it.identity == ident and it.modality == "vis"]
        order = {"TD_RGB_E": 0, "TD_RGB_A": 1}
        pool.sort(key=lambda it: (order.get(it.info["package"], 2), it.info["k"] != 1,
                                  it.info["k"] if it.info["k"] is not None else 99, natural_key(it.name)))
        return pool[0] if pool else None

    protocols: dict[str, list] = {}
    no_vis: set[str] = set()
    for s, (train_ids, test_ids) in enumerate(seeded_identity_splits(ids, n_train, args.splits, args.seed), 1):
        train, gallery = set(train_ids), []
        for ident in test_ids:
            g = gallery_image(ident)
            if g is None:
                no_vis.add(ident)
            else:
                gallery.append(g)
        tested = {g.identity for g in gallery}
        for probe_mod in ("thermal", "nir"):
            probes = [it for it in items if it.modality == probe_mod and it.identity in tested]
            if not probes:
                continue
            train_items = [it for it in items if it.identity in train and it.modality in ("vis", probe_mod)]
            protocols[f"vis-{probe_mod}-split{s}"] = (rows("train", "train", train_items)
                                                      + rows("eval", "gallery", gallery)
                                                      + rows("eval", "probe", probes))
    if no_vis:
        notes.append(f"test participants without any VIS image (no gallery, probes left out): "
                     f"{natural_sorted(no_vis)[:10]}")
    default = "vis-thermal-split1" if "vis-thermal-split1" in protocols else "vis-nir-split1"
    align = ("face boxes (--boxes) as square crops; " if boxes else "") + \
        ("your landmarks (--landmarks); " if args.landmarks else "") + "centre crop otherwise"
    return finish(args, protocols, default=default, dataset=DATASET, converter="data_scripts/tufts.py",
                  source=SOURCE, licence=LICENCE, alignment=align, notes=notes, box_margin=args.box_margin)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
