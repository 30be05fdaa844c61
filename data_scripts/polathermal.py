"""Polathermal (ARL Polarimetric Thermal Face Database) -> standard layout (VIS gallery, thermal S0 probes).

Point ``--root`` at the ``Registered`` folder of your copy (the folder that holds ``Visible/``
and ``Polarimetric/``)::

    python data_scripts/polathermal.py --root /data/Polathermal/Registered --out /data/layouts/polathermal \\
        [--seed 0] [--splits 5] [--size 112] [--limit N]
    python -m data_scripts.polathermal ...           # the same, from the repository root

Files read: ``Visible/IOD87_B/A<NN>_IOD87_B_VI_f<MM>.png`` (baseline VIS),
``Visible/IOD87_E/A<NN>_IOD87_E_VI_f<MM>.png`` (expression VIS) and, anywhere under
``Polarimetric/``, ``A<NN>_R<1-3>_<B|E>_S0_f<WW>.png`` (conventional thermal, "S0").  S1, S2 and
DoLP images are counted but not converted (the layout has no polarimetric modality).  The
16-bit PNGs are divided by 257 to 8 bits, as Bob does.

Protocols, for each of ``--splits`` (default 5) seeded identity splits of 25 training / 35 test
subjects (``split1`` .. ``split5``; Bob calls the test group "dev", here it is ``eval``):

* ``VIS-thermal-overall-splitN``: gallery = the 4 VIS baseline images of each test subject;
  probes = all their S0 images (48 each).  ``default`` is ``VIS-thermal-overall-split1``.
* ``VIS-thermal-expression-splitN``: probes = S0 expression (E) images only.
* ``VIS-thermal-R1-splitN``, ``-R2-``, ``-R3-``: probes = S0 images at range 1 / 2 / 3
  (2.5 / 5 / 7.5 m).
* ``VIS-VIS-splitN``: probes = the VIS expression images.
* train (every protocol of a split): all VIS and S0 images of the 25 training subjects.

The splits are drawn here (``numpy.random.default_rng([seed, split])``), so they are not Bob's
(whose lists could not be read): report them as this converter's splits.

Alignment: the images are registered, so every image gets the same eye centres, (65, 106) and
(140, 106) as (x, y), the values Bob assigns.  Unconfirmed: those are 75 px apart, while the VIS
folder name says an inter-pupil distance of 87 px; check a few aligned faces and, if needed,
pass ``--eyes-vis`` / ``--eyes-thermal X1,Y1,X2,Y2``.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

try:
    from ._common import (DatasetError, Item, expect_dir, finish, limit_identities, make_parser, natural_sorted,
                          require_root, rows, run_cli, scaled_count, seeded_identity_splits)
except ImportError:  # run as a script: python data_scripts/polathermal.py
    from _common import (DatasetError, Item, expect_dir, finish, limit_identities, make_parser, natural_sorted,
                         require_root, rows, run_cli, scaled_count, seeded_identity_splits)

FOLDER = "Registered"
HOLDS = "Visible/ (IOD87_B, IOD87_E) and Polarimetric/"
DATASET = "Polathermal"
SOURCE = ("ARL Polarimetric Thermal Face Database, U.S. Army Research Laboratory (Hu et al., CVPRW 2016); "
          "registered release")
LICENCE = ("Obtained on request from the U.S. Army Research Laboratory under the owners' terms; no "
           "redistribution. Do not share these images or this layout.")
DEFAULT_EYES = (65.0, 106.0, 140.0, 106.0)
N_SUBJECTS, N_TRAIN = 60, 25
_VIS = re.compile(r"^A(\d+)[_-]IOD\d+[_-]([BE])[_-]VI[_-]f(\d+)\.(png|tiff?|bmp|jpe?g)$", re.IGNORECASE)
_POL = re.compile(r"^A(\d+)[_-]R([123])[_-]([BE])[_-](S0|S1|S2|DP|DoLP)[_-]f(\d+)\.(png|tiff?|bmp|jpe?g)$",
                  re.IGNORECASE)


def _eyes(text: str | None, what: str) -> np.ndarray:
    if text is None:
        return np.asarray(DEFAULT_EYES, dtype=np.float64).reshape(2, 2)
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise DatasetError(f"{what} {text!r}: give four numbers X1,Y1,X2,Y2 (the two eye centres in pixels).")
    return np.asarray(values, dtype=np.float64).reshape(2, 2)


def build_parser():
    p = make_parser("polathermal.py", __doc__ + "\nSee data_scripts/README.md.", seeded=True)
    p.add_argument("--splits", type=int, default=5, help="number of seeded 25/35 splits (default 5)")
    p.add_argument("--train-ids", type=int, default=None,
                   help=f"training subjects per split (default {N_TRAIN}; scaled down with --limit)")
    p.add_argument("--eyes-vis", default=None, metavar="X1,Y1,X2,Y2",
                   help=f"eye centres of the registered VIS images (default {','.join(map(str, DEFAULT_EYES))})")
    p.add_argument("--eyes-thermal", default=None, metavar="X1,Y1,X2,Y2",
                   help="eye centres of the registered thermal images (default: the same)")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.splits < 1:
        raise DatasetError(f"--splits {args.splits}: give at least 1.")
    root = require_root(args.root, FOLDER, HOLDS)
    vis_b = expect_dir(root, "Visible/IOD87_B", FOLDER, HOLDS)
    pol_dir = expect_dir(root, "Polarimetric", FOLDER, HOLDS)
    vis_e = root / "Visible" / "IOD87_E"
    eyes = {"vis": _eyes(args.eyes_vis, "--eyes-vis"), "thermal": _eyes(args.eyes_thermal, "--eyes-thermal")}
    notes = ["eye centres are fixed for every registered image (Bob's values unless --eyes-* given); unconfirmed"]

    items: list[Item] = []
    for folder in (vis_b, vis_e):
        if not folder.is_dir():
            notes.append(f"{folder} is missing: no VIS expression images, so no VIS-VIS protocol")
            continue
        for f in sorted(folder.rglob("*")):
            m = _VIS.match(f.name)
            if m and f.is_file():
                ident = f"A{int(m.group(1)):02d}"
                items.append(Item(source=f, identity=ident, modality="vis", name=f.stem,
                                  key=f.relative_to(root).as_posix(), eyes=eyes["vis"],
                                  info={"kind": m.group(2).upper()}))
    other: dict[str, int] = {}
    unmatched = []
    for f in sorted(pol_dir.rglob("*")):
        if not f.is_file():
            continue
        m = _POL.match(f.name)
        if not m:
            unmatched.append(f.name)
            continue
        channel = m.group(4).upper()
        if channel != "S0":
            other[channel] = other.get(channel, 0) + 1
            continue
        ident = f"A{int(m.group(1)):02d}"
        items.append(Item(source=f, identity=ident, modality="thermal", name=f.stem,
                          key=f.relative_to(root).as_posix(), eyes=eyes["thermal"],
                          info={"range": f"R{m.group(2)}", "kind": m.group(3).upper()}))
    if not any(it.modality == "vis" and it.info["kind"] == "B" for it in items):
        raise DatasetError(f"no VIS baseline image named like A01_IOD87_B_VI_f01.png in {vis_b}; is --root the "
                           f"folder that holds {HOLDS}?")
    if not any(it.modality == "thermal" for it in items):
        seen = ", ".join(unmatched[:3]) or "nothing"
        raise DatasetError(f"no thermal S0 image named like A01_R1_B_S0_f01.png under {pol_dir} (found: {seen}). "
                           "The thermal file-name pattern is unconfirmed: report the names your copy uses.")
    if unmatched:
        notes.append(f"{len(unmatched)} file(s) under Polarimetric/ do not match A<NN>_R<r>_<B|E>_<S0|S1|S2|DP>"
                     f"_f<NN> and were ignored, e.g. {unmatched[:3]}")
    if other:
        notes.append("not converted (no polarimetric modality in the layout): "
                     + ", ".join(f"{k} {v}" for k, v in sorted(other.items())))

    keep = limit_identities((it.identity for it in items), args.limit)
    items = [it for it in items if it.identity in keep]
    ids = natural_sorted(keep)
    n_train = args.train_ids if args.train_ids is not None else scaled_count(len(ids), N_TRAIN, N_SUBJECTS)
    if len(ids) != N_SUBJECTS:
        notes.append(f"{len(ids)} subjects (the database has {N_SUBJECTS}); {n_train} per split in train")

    def pick(idents, modality, **info) -> list[Item]:
        return [it for it in items if it.identity in idents and it.modality == modality
                and all(it.info.get(k) == v for k, v in info.items())]

    probes = {"overall": {}, "expression": {"kind": "E"}, "R1": {"range": "R1"}, "R2": {"range": "R2"},
              "R3": {"range": "R3"}}
    protocols: dict[str, list] = {}
    for s, (train_ids, test_ids) in enumerate(seeded_identity_splits(ids, n_train, args.splits, args.seed), 1):
        train, test = set(train_ids), set(test_ids)
        train_rows = rows("train", "train", pick(train, "vis") + pick(train, "thermal"))
        gallery = rows("eval", "gallery", pick(test, "vis", kind="B"))
        for pname, flt in probes.items():
            probe_rows = rows("eval", "probe", pick(test, "thermal", **flt))
            if probe_rows:
                protocols[f"VIS-thermal-{pname}-split{s}"] = train_rows + gallery + probe_rows
        probe_rows = rows("eval", "probe", pick(test, "vis", kind="E"))
        if probe_rows:
            protocols[f"VIS-VIS-split{s}"] = train_rows + gallery + probe_rows
    return finish(args, protocols, default="VIS-thermal-overall-split1", dataset=DATASET,
                  converter="data_scripts/polathermal.py", source=SOURCE, licence=LICENCE,
                  alignment="fixed eye centres of the registered images mapped to the template eyes", notes=notes)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
