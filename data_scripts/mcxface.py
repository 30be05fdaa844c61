"""MCXFace (Idiap Multi-Channel Cross-spectral Face) -> standard layout, from a folder of per-channel images + a CSV.

How the MCXFace images and protocol files are laid out could not be confirmed, so this converter
asks for a CSV that describes your copy: point ``--root`` at the folder of images and ``--csv`` at
the file (default ``<root>/mcxface.csv``)::

    python data_scripts/mcxface.py --root /data/MCXFace --csv /data/MCXFace/mcxface.csv \\
        --out /data/layouts/mcxface [--seed 0] [--splits 5] [--size 112] [--limit N]
    python -m data_scripts.mcxface ...               # the same, from the repository root

The CSV (header required; column names are matched case-insensitively):

* ``path``: the image, relative to ``--root`` (aliases ``PATH``, ``file``, ``filename``; a missing
  extension or a ``.jpg``/``.png`` mix-up is tolerated);
* ``identity``: the subject (aliases ``reference_id``, ``subject_id``, ``subject``, ``client_id``);
* ``channel``: ``COLOR`` (or ``RGB``/``VIS``), ``NIR``, ``THERMAL``, ``SWIR`` or ``DEPTH`` (alias ``modality``);
* optional ``session``: subjects seen in one session only are always put in train, as in Bob;
* optional eye centres ``reye_x, reye_y, leye_x, leye_y`` (Bob's names; ``left_eye_x``, ... also
  accepted), shared by the registered channels of one frame: a row without eyes takes those of a
  row with the same identity, session and ``frame`` (optional column), when there is one;
* optional ``split`` (or ``group``): ``train``/``world`` or ``dev``/``eval``/``test``, to use your own
  split instead of the seeded ones (then protocols end in ``-given``).

Protocols ``<SOURCE>-<TARGET>-split<N>`` (Bob's names): SOURCE images of the test subjects form the
gallery, TARGET images the probes; same-channel COLOR-COLOR, NIR-NIR, THERMAL-THERMAL, SWIR-SWIR,
DEPTH-DEPTH and cross-channel COLOR-NIR, COLOR-THERMAL, COLOR-SWIR, COLOR-DEPTH, for the channels
present.  ``--splits`` (default 5) seeded splits of about 30 training / 21 test subjects (Bob: ~30 /
20; his lists could not be read, so these are this converter's).  Gallery = the SOURCE images of
each test subject's first session (first image when there is no session column); probes = the
TARGET images of the other sessions (of all other images when there is no session column).  Test
subjects are ``eval`` (Bob calls this group "dev").  ``default``: the first present of COLOR-NIR,
COLOR-THERMAL, COLOR-SWIR, COLOR-DEPTH, COLOR-COLOR (split 1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

try:
    from ._common import (DatasetError, Item, check_listed_path, distinct_names, find_with_extensions, finish,
                          limit_identities, make_parser, natural_key, natural_sorted, read_csv_rows, require_root,
                          rows, run_cli, safe_name, scaled_count, seeded_identity_splits)
except ImportError:  # run as a script: python data_scripts/mcxface.py
    from _common import (DatasetError, Item, check_listed_path, distinct_names, find_with_extensions, finish,
                         limit_identities, make_parser, natural_key, natural_sorted, read_csv_rows, require_root,
                         rows, run_cli, safe_name, scaled_count, seeded_identity_splits)

FOLDER = "MCXFace"
HOLDS = "the per-channel images that your CSV lists"
DATASET = "MCXFace"
SOURCE = ("MCXFace, Idiap Research Institute (George, Unal, Marcel), derived from HQ-WMCA; channels COLOR, DEPTH, "
          "THERMAL, NIR, SWIR")
LICENCE = ("Obtained from the Idiap Research Institute under its licence agreement (wording unconfirmed); no "
           "redistribution. Do not share these images or this layout.")
CHANNELS = {"color": "COLOR", "rgb": "COLOR", "vis": "COLOR", "nir": "NIR", "thermal": "THERMAL",
            "swir": "SWIR", "depth": "DEPTH"}
MODALITY = {"COLOR": "vis", "NIR": "nir", "THERMAL": "thermal", "SWIR": "swir", "DEPTH": "depth"}
PAIRS = [("COLOR", "NIR"), ("COLOR", "THERMAL"), ("COLOR", "SWIR"), ("COLOR", "DEPTH"), ("COLOR", "COLOR"),
         ("NIR", "NIR"), ("THERMAL", "THERMAL"), ("SWIR", "SWIR"), ("DEPTH", "DEPTH")]
ALIASES = {"path": ["path", "file", "filename"],
           "identity": ["identity", "reference_id", "subject_id", "subject", "client_id"],
           "channel": ["channel", "modality"], "session": ["session"], "frame": ["frame"],
           "split": ["split", "group"]}
EYE_COLUMNS = [["reye_x", "reye_y", "leye_x", "leye_y"], ["right_eye_x", "right_eye_y", "left_eye_x", "left_eye_y"],
               ["left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y"]]
SPLIT_WORDS = {"train": "train", "world": "train", "dev": "eval", "eval": "eval", "test": "eval"}
N_SUBJECTS, N_TRAIN = 51, 30


def read_csv(path: Path, encoding: str | None = None) -> tuple[list[dict[str, str]], dict[str, str | None],
                                                               list[str] | None]:
    """Rows, {field: column name or None} and the eye columns (or None) of the user's CSV.

    UTF-8 (or UTF-16/32 with a byte-order mark) is detected; another encoding (a Latin-1 export)
    is refused by name unless ``encoding`` (``--encoding``) says which it is.
    """
    reader = read_csv_rows(path, "--csv", encoding)
    header = [c.strip() for c in reader.fieldnames or []]
    data = [{(k or "").strip(): (v or "").strip() for k, v in r.items() if isinstance(k, str) or k is None}
            for r in reader]
    low = {c.lower(): c for c in header}
    cols = {f: next((low[a] for a in names if a in low), None) for f, names in ALIASES.items()}
    missing = [f for f in ("path", "identity", "channel") if cols[f] is None]
    if missing:
        raise DatasetError(f"{path}: no column for {missing} (header is {header}). The CSV needs columns path, "
                           "identity and channel (see data_scripts/README.md, MCXFace).")
    eye_cols = next(([low[c] for c in group] for group in EYE_COLUMNS if all(c in low for c in group)), None)
    return data, cols, eye_cols


def build_parser():
    p = make_parser("mcxface.py", __doc__ + "\nSee data_scripts/README.md.", seeded=True)
    p.add_argument("--csv", type=Path, default=None, help="the CSV describing the images (default <root>/mcxface.csv)")
    p.add_argument("--splits", type=int, default=5, help="number of seeded identity splits (default 5)")
    p.add_argument("--train-ids", type=int, default=None,
                   help=f"training subjects per split (default {N_TRAIN}; scaled down with --limit)")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.splits < 1:
        raise DatasetError(f"--splits {args.splits}: give at least 1.")
    root = require_root(args.root, FOLDER, HOLDS)
    csv_path = Path(args.csv) if args.csv is not None else root / "mcxface.csv"
    if not csv_path.is_file():
        raise DatasetError(f"expected the CSV that describes your MCXFace copy at {csv_path} (columns path, identity, "
                           "channel[, session, reye_x, reye_y, leye_x, leye_y]); pass --csv FILE, see "
                           "data_scripts/README.md.")
    data, cols, eye_cols = read_csv(csv_path, args.encoding)
    notes = ["MCXFace file layout and protocol lists unconfirmed: images and subjects come from your CSV"]

    # eyes shared by the registered channels of one frame
    frame_eyes: dict[tuple[str, str, str], np.ndarray] = {}

    def eyes_of(r: dict[str, str]) -> np.ndarray | None:
        if eye_cols is None:
            return None
        try:
            return np.asarray([float(r[c]) for c in eye_cols], dtype=np.float64).reshape(2, 2)
        except (TypeError, ValueError):
            return None

    def frame_key(r: dict[str, str]) -> tuple[str, str, str] | None:
        if cols["frame"] is None:
            return None
        return (r[cols["identity"]], r[cols["session"]] if cols["session"] else "", r[cols["frame"]])

    for r in data:
        e, fk = eyes_of(r), frame_key(r)
        if e is not None and fk is not None:
            frame_eyes.setdefault(fk, e)

    # subjects' names kept readable (José, 张伟) and distinct ('a b' and 'a_b' are two subjects)
    names = distinct_names(r[cols["identity"]] for r in data)
    renamed = sorted(f"{raw!r} -> {new}" for raw, (new, _) in names.items() if new != raw)
    if renamed:
        notes.append(f"{len(renamed)} subject name(s) changed to be layout names: {', '.join(renamed[:10])}")
    items: list[Item] = []
    missing, bad_channel = [], set()
    given_split: dict[str, str] = {}
    for n, r in enumerate(data, start=2):
        channel = CHANNELS.get(r[cols["channel"]].lower())
        if channel is None:
            bad_channel.add(r[cols["channel"]])
            continue
        rel = r[cols["path"]].replace("\\", "/")
        check_listed_path(rel, root, f"{csv_path}, line {n}")
        src = find_with_extensions(root / rel, (".jpg", ".png", ".jpeg", ".bmp", ".tif", ".tiff"))
        if src is None:
            missing.append(rel)
            continue
        ident = names[r[cols["identity"]]][0]
        session = r[cols["session"]] if cols["session"] else ""
        e = eyes_of(r)
        if e is None and frame_key(r) is not None:
            e = frame_eyes.get(frame_key(r))
        if cols["split"] is not None:
            word = SPLIT_WORDS.get(r[cols["split"]].lower())
            if word is None:
                raise DatasetError(f"{csv_path}, line {n}: split {r[cols['split']]!r}; use train/world or "
                                   "dev/eval/test.")
            if given_split.setdefault(ident, word) != word:
                raise DatasetError(f"{csv_path}, line {n}: subject {ident!r} is in both {given_split[ident]!r} and "
                                   f"{word!r}; a subject belongs to one split.")
        items.append(Item(source=src, identity=ident, modality=MODALITY[channel],
                          name=safe_name(str(Path(rel).with_suffix(""))), key=src.relative_to(root).as_posix(),
                          eyes=e, info={"channel": channel, "session": session}))
    if bad_channel:
        raise DatasetError(f"{csv_path}: unknown channel(s) {sorted(bad_channel)[:5]}; use COLOR, NIR, THERMAL, "
                           "SWIR or DEPTH.")
    if not items:
        raise DatasetError(f"none of the {len(data)} images listed in {csv_path} was found under {root} (e.g. "
                           f"{root / missing[0] if missing else root}); is --root the folder that holds {HOLDS}?")
    if missing:
        notes.append(f"{len(missing)} listed image(s) not found and left out, e.g. {missing[:3]}")

    keep = limit_identities((it.identity for it in items), args.limit)
    items = [it for it in items if it.identity in keep]
    items.sort(key=lambda it: (natural_key(it.identity), natural_key(it.info["session"]), natural_key(it.name)))
    ids = natural_sorted(keep)
    sessions = {i: natural_sorted(it.info["session"] for it in items if it.identity == i) for i in ids}
    has_sessions = cols["session"] is not None

    if cols["split"] is not None:
        splits = [([i for i in ids if given_split[i] == "train"], [i for i in ids if given_split[i] == "eval"])]
        suffixes = ["given"]
        notes.append(f"split from the CSV column {cols['split']!r}")
    else:
        single = [i for i in ids if has_sessions and len(sessions[i]) < 2]
        n_train = args.train_ids if args.train_ids is not None else scaled_count(len(ids), N_TRAIN, N_SUBJECTS)
        n_train = max(n_train, len(single)) if args.train_ids is None else n_train
        splits = seeded_identity_splits(ids, n_train, args.splits, args.seed, always_train=single)
        suffixes = [f"split{s}" for s in range(1, args.splits + 1)]
        notes.append(f"seeded splits: {n_train} train / {len(ids) - n_train} eval subjects"
                     + (f" ({len(single)} single-session subjects always in train)" if single else ""))

    present = {it.info["channel"] for it in items}
    protocols: dict[str, list] = {}
    for (train_ids, test_ids), suffix in zip(splits, suffixes):
        train, test = set(train_ids), set(test_ids)
        for src_ch, tgt_ch in PAIRS:
            if src_ch not in present or tgt_ch not in present:
                continue
            gallery, probes = [], []
            for ident in natural_sorted(test):
                own = [it for it in items if it.identity == ident]
                pool = [it for it in own if it.info["channel"] == src_ch]
                if not pool:
                    continue
                if has_sessions:
                    first = sessions[ident][0]
                    gal = [it for it in pool if it.info["session"] == first]
                    prb = [it for it in own if it.info["channel"] == tgt_ch and it.info["session"] != first]
                else:
                    gal = pool[:1]
                    prb = [it for it in own if it.info["channel"] == tgt_ch and it is not gal[0]]
                gallery += gal
                probes += prb
            if not probes:
                continue
            train_items = [it for it in items if it.identity in train and it.info["channel"] in (src_ch, tgt_ch)]
            protocols[f"{src_ch}-{tgt_ch}-{suffix}"] = (rows("train", "train", train_items)
                                                        + rows("eval", "gallery", gallery)
                                                        + rows("eval", "probe", probes))
    default = next((f"{s}-{t}-{suffixes[0]}" for s, t in PAIRS if f"{s}-{t}-{suffixes[0]}" in protocols), None)
    if default is None:
        raise DatasetError(f"{csv_path}: no protocol has probes (each test subject needs images in two sessions, "
                           "or two images when there is no session column).")
    n_eyes = sum(it.eyes is not None for it in items)
    align = "eye centres from the CSV mapped to the template eyes" if n_eyes else "centre crop (no eyes in the CSV)"
    return finish(args, protocols, default=default, dataset=DATASET, converter="data_scripts/mcxface.py",
                  source=SOURCE, licence=LICENCE, alignment=align, notes=notes)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
