"""CASIA NIR-VIS 2.0 -> standard layout (VIS gallery, NIR probes).

Point ``--root`` at the ``NIR-VIS-2.0`` folder of your licensed copy (the folder that holds
``s1`` .. ``s4`` and ``protocols``)::

    python data_scripts/casia_nir_vis2.py --root /data/NIR-VIS-2.0 --out /data/layouts/casia_nir_vis2 \\
        [--annotations /data/NIR-VIS-2.0-eyes] [--size 112] [--limit N]
    python -m data_scripts.casia_nir_vis2 ...        # the same, from the repository root

Protocols written (from the official lists in ``protocols/``):

* ``view2_1`` .. ``view2_10`` (View 2, the 10 evaluation folds): train = ``vis_train_k`` +
  ``nir_train_k``; eval = gallery ``vis_gallery_k`` (one VIS image per test subject) and probes
  ``nir_probe_k`` (all their NIR images).  ``default`` is a copy of ``view2_1``.
* ``view1`` (View 1, development): train = ``vis_train_dev`` + ``nir_train_dev``; dev = gallery
  ``vis_gallery_dev``, probes ``nir_probe_dev``.  Tune on it; report the mean (and std) over the
  ten View 2 folds.

List lines use Windows separators (``s2\\NIR\\10117\\016.bmp``); the subject is field 3, the
modality field 2.  A line's extension may not match the file on disk: ``.jpg``, then ``.bmp``
(then other image extensions) are tried, as Bob and other loaders do.

Alignment: eye centres from the ``.pos`` files (``--annotations DIR``: ``DIR/sN/MOD/<id>/<NNN>.pos``,
first line 4 numbers).  Which eye comes first is unconfirmed, so the two points are ordered by x.
Images without a ``.pos`` file are centre-cropped, and the count is reported.  ``--crops128`` reads
the 128x128 face crops in the ``<MOD>_128x128`` folders (layout unconfirmed) instead of the raw
frames, and resizes them (no alignment).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

try:
    from ._common import (DatasetError, Item, drop_leaks, expect_dir, expect_file, find_case_insensitive,
                          find_with_extensions, finish, limit_identities, make_parser, read_text, require_root,
                          rows, run_cli, safe_name)
except ImportError:  # run as a script: python data_scripts/casia_nir_vis2.py
    from _common import (DatasetError, Item, drop_leaks, expect_dir, expect_file, find_case_insensitive,
                         find_with_extensions, finish, limit_identities, make_parser, read_text, require_root,
                         rows, run_cli, safe_name)

FOLDER = "NIR-VIS-2.0"
HOLDS = "s1..s4 and protocols"
DATASET = "CASIA NIR-VIS 2.0"
SOURCE = ("CASIA NIR-VIS 2.0 Face Database, CBSR / Institute of Automation, Chinese Academy of Sciences "
          "(Li et al., CVPRW 2013)")
LICENCE = ("Obtained from CASIA/CBSR under a signed release agreement; research use only, no redistribution. "
           "Do not share these images or this layout.")
MODALITY = {"VIS": "vis", "NIR": "nir"}
_SESSION = re.compile(r"^s\d+$", re.IGNORECASE)


def parse_list(path: Path, encoding: str | None = None) -> list[tuple[int, str]]:
    """(line number, path with '/' separators) of every non-empty line of a protocol list.

    UTF-8, or UTF-16 (with or without a byte-order mark, as Windows tools save lists), is detected;
    another encoding is refused by name unless ``encoding`` says which it is: never garbled.
    """
    out = []
    text = read_text(path, "protocol list", encoding)
    for n, line in enumerate(text.splitlines(), start=1):
        tokens = line.strip().split()
        if tokens:
            out.append((n, tokens[0].replace("\\", "/")))
    return out


def split_entry(entry: str, list_file: Path, line: int) -> tuple[str, str, str, str]:
    """(session, MOD, subject, file name) of a list entry such as ``s2/NIR/10117/016.bmp``."""
    parts = [p for p in entry.split("/") if p not in ("", ".")]
    starts = [i for i, p in enumerate(parts) if _SESSION.match(p)]
    if not starts or len(parts) - starts[0] < 4:
        raise DatasetError(f"{list_file}, line {line}: {entry!r} is not of the form sN\\MOD\\<subject>\\<file> "
                           "(e.g. s2\\NIR\\10117\\016.bmp). Is this an original CASIA NIR-VIS 2.0 list?")
    i = starts[0]
    if ".." in parts[i:]:
        raise DatasetError(f"{list_file}, line {line}: {entry!r} climbs out of its folder through '..'; a list entry "
                           "names an image under --root (sN\\MOD\\<subject>\\<file>). Fix the line.")
    session, mod, subject, fname = parts[i], parts[i + 1], parts[i + 2], parts[-1]
    base = mod.upper().split("_")[0]
    if base not in MODALITY:
        raise DatasetError(f"{list_file}, line {line}: modality folder {mod!r} in {entry!r} is neither VIS nor NIR.")
    return session, base, subject, fname


def read_pos(path: Path) -> np.ndarray | None:
    """Eye centres (2, 2) from the first line of a ``.pos`` file (4 numbers), or None when unreadable."""
    try:
        first = read_text(path, ".pos file").strip().splitlines()[0]
        values = [float(v) for v in re.split(r"[\s,;]+", first.strip()) if v][:4]
    except (OSError, IndexError, ValueError):  # DatasetError (not a text file) is a ValueError
        return None
    if len(values) < 4:
        return None
    return np.asarray(values, dtype=np.float64).reshape(2, 2)


def build_parser():
    p = make_parser("casia_nir_vis2.py", __doc__ + "\nSee data_scripts/README.md.")
    p.add_argument("--annotations", type=Path, default=None, metavar="DIR",
                   help="folder of eye-centre .pos files laid out as sN/MOD/<subject>/<NNN>.pos")
    p.add_argument("--folds", type=int, nargs="+", default=list(range(1, 11)), metavar="K",
                   help="View 2 folds to write (default 1..10)")
    p.add_argument("--no-view1", action="store_true", help="do not write the View 1 (development) protocol")
    p.add_argument("--crops128", action="store_true",
                   help="read the 128x128 crops in <MOD>_128x128 folders instead of the raw frames")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    root = require_root(args.root, FOLDER, HOLDS)
    pdir = expect_dir(root, "protocols", FOLDER, HOLDS)
    bad_folds = [k for k in args.folds if not 1 <= k <= 10]
    if bad_folds:
        raise DatasetError(f"--folds {bad_folds}: View 2 has folds 1..10.")
    annot = None
    if args.annotations is not None:
        annot = Path(args.annotations)
        if not annot.is_dir():
            raise DatasetError(f"--annotations {annot}: no such folder. Give the folder that holds the eye "
                               "files as sN/MOD/<subject>/<NNN>.pos.")

    # which lists each protocol needs: {protocol: (split, [(list name, role)])}
    wanted: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for k in sorted(set(args.folds)):
        wanted[f"view2_{k}"] = ("eval", [(f"vis_train_{k}", "train"), (f"nir_train_{k}", "train"),
                                         (f"vis_gallery_{k}", "gallery"), (f"nir_probe_{k}", "probe")])
    if not args.no_view1:
        wanted["view1"] = ("dev", [("vis_train_dev", "train"), ("nir_train_dev", "train"),
                                   ("vis_gallery_dev", "gallery"), ("nir_probe_dev", "probe")])
    lists: dict[str, list[tuple[int, str]]] = {}
    list_paths: dict[str, Path] = {}
    for _, needed in wanted.values():
        for lname, _ in needed:
            if lname not in lists:
                list_paths[lname] = expect_file(root, f"protocols/{lname}.txt", FOLDER, HOLDS)
                lists[lname] = parse_list(list_paths[lname], args.encoding)

    # one Item per distinct source image
    items: dict[str, Item] = {}
    entries: dict[str, list[str]] = {}
    missing: set[str] = set()
    no_pos = 0
    for lname, lines in lists.items():
        keys = []
        for n, entry in lines:
            session, mod, subject, fname = split_entry(entry, list_paths[lname], n)
            stem = Path(fname).stem
            key = f"{session}/{mod}/{subject}/{stem}".lower()
            keys.append(key)
            if key in items or key in missing:
                continue
            folder = f"{mod}_128x128" if args.crops128 else mod
            src = find_with_extensions(root / session / folder / subject / fname)
            if src is None and not args.crops128:  # the session / modality folder names may differ in case
                src = find_with_extensions(root / session.lower() / mod / subject / fname) or \
                    find_with_extensions(root / session.upper() / mod / subject / fname)
            if src is None:
                missing.add(key)
                continue
            eyes = None
            if annot is not None and not args.crops128:
                pos = find_case_insensitive(annot / session / mod / subject / f"{stem}.pos")
                eyes = read_pos(pos) if pos is not None else None
                no_pos += eyes is None
            items[key] = Item(source=src, identity=safe_name(subject), modality=MODALITY[mod],
                              name=safe_name(f"{session.lower()}_{stem}"), key=src.relative_to(root).as_posix(),
                              eyes=eyes, info={"session": session.lower()})
        entries[lname] = keys
    if not items:
        raise DatasetError(f"none of the images named in {pdir} was found under {root} (e.g. "
                           f"{root}/s2/NIR/<subject>/001.bmp); is --root the folder that holds {HOLDS}?")
    keep = limit_identities((it.identity for it in items.values()), args.limit)

    notes = []
    if missing:
        notes.append(f"{len(missing)} listed image(s) were not found (with .jpg/.bmp fallback) and were "
                     f"left out, e.g. {sorted(missing)[:3]}")
    if annot is not None and no_pos:
        notes.append(f"{no_pos} image(s) had no readable .pos eye file under {annot}")
    if annot is not None and args.crops128:
        notes.append("--annotations ignored with --crops128 (the eyes refer to the raw frames)")
    if annot is None and not args.crops128:
        notes.append("no --annotations given: every image is centre-cropped, not aligned")

    def listed(lname: str) -> list[Item]:
        out, seen = [], set()
        for key in entries[lname]:
            it = items.get(key)
            if it is not None and it.identity in keep and key not in seen:
                seen.add(key)
                out.append(it)
        return out

    protocols: dict[str, list] = {}
    for pname, (split, needed) in wanted.items():
        train = [it for lname, role in needed if role == "train" for it in listed(lname)]
        gallery = [it for lname, role in needed if role == "gallery" for it in listed(lname)]
        probe = [it for lname, role in needed if role == "probe" for it in listed(lname)]
        train, dropped = drop_leaks(train, {it.identity for it in gallery + probe})
        if dropped:
            notes.append(f"{pname}: subjects {dropped[:10]} are in both the training and the test lists; their "
                         "training images were left out so that no identity leaks")
        protocols[pname] = rows("train", "train", train) + rows(split, "gallery", gallery) \
            + rows(split, "probe", probe)
    default = next(n for n in wanted if n.startswith("view2_")) if args.folds else "view1"
    align = ("128x128 crops resized (--crops128)" if args.crops128 else
             "eye centres (.pos) mapped to the template eyes by a similarity transform" if annot is not None
             else "centre crop (no annotations given)")
    return finish(args, protocols, default=default, dataset=DATASET, converter="data_scripts/casia_nir_vis2.py",
                  source=SOURCE, licence=LICENCE, alignment=align, notes=notes)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
