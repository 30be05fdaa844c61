"""The standard on-disk layout: read, write and validate it.

Every source of real faces (the ``data_scripts/`` converters for licensed datasets, or a user's
own photos) is turned into one layout that :class:`~hfr_tutorial.data.FaceSet` reads::

    <root>/dataset.json                                  name, modalities, image size, alignment,
                                                         source, licence note, identity names
    <root>/images/<modality>/<identity>/<name>.png       aligned square faces (PNG, never JPEG)
    <root>/protocols/<protocol>.csv                      split, role, identity, modality, path

A protocol lists one row per use of an image: ``split`` (train | dev | eval), ``role`` (train |
gallery | probe), ``identity`` (the folder name), ``modality`` and ``path`` (relative to the
root).  A protocol never lets an identity of ``train`` appear in ``dev`` or ``eval``: the reader
checks it and refuses the leak.

Every problem is reported as a :class:`LayoutError` that names the file, says what is wrong and
how to fix it.  Large layouts are read lazily (:class:`LazyImages`): images are decoded when a
batch asks for them.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Bring your own data").
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .faceset import KNOWN_MODALITIES, SPLITS

if TYPE_CHECKING:  # pragma: no cover
    from .faceset import FaceSet

ROLES: tuple[str, ...] = ("train", "gallery", "probe")
PROTOCOL_COLUMNS: tuple[str, ...] = ("split", "role", "identity", "modality", "path")
LAYOUT_FORMAT = "hfr-tutorial-layout"
LAYOUT_VERSION = 1
LAZY_BYTES = 1 << 30  # read lazily above 1 GiB of pixels when ``lazy=None``
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class LayoutError(ValueError):
    """A standard layout on disk is missing something or breaks a rule (the message says how to fix it)."""


# ---------------------------------------------------------------------- images

def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Decode one face image as uint8 (H, W, 3) (grey images are replicated to 3 channels).

    Raises :class:`LayoutError` naming the file when it does not decode or has the wrong size.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB":
                im = im.convert("RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise LayoutError(f"{path}: file not found. Restore it, or remove its row from the protocol.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise LayoutError(f"{path}: does not decode as an image ({err}). Re-export it as PNG, "
                          "or delete it and its protocol rows.") from None
    if size is not None and arr.shape[:2] != (size, size):
        raise LayoutError(_size_message(path, arr.shape[1], arr.shape[0], size))
    return arr


def _size_message(path: Path, w: int, h: int, size: int) -> str:
    return (f"{path}: image is {w}x{h} but dataset.json says image_size={size}. Align or resize it to "
            f"{size}x{size} (hfr_tutorial.data.align.align_face), or fix image_size in dataset.json.")


class LazyImages:
    """Array-like view of image files, decoded on access: ``len``, ``[int]``, ``[indices]``, ``.shape``."""

    def __init__(self, paths: Sequence[str | Path], image_size: int):
        self.paths = np.asarray([str(p) for p in paths], dtype=str)
        self.image_size = int(image_size)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.image_size, self.image_size, 3)

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return load_image(self.paths[int(key)], self.image_size)
        paths = self.paths[key]
        out = np.empty((len(paths), self.image_size, self.image_size, 3), np.uint8)
        for j, p in enumerate(paths):
            out[j] = load_image(p, self.image_size)
        return out

    def subset(self, indices: np.ndarray) -> "LazyImages":
        return LazyImages(self.paths[np.asarray(indices, dtype=np.int64)], self.image_size)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[np.arange(len(self))]
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyImages({len(self)} files, {self.image_size}px)"


# ---------------------------------------------------------------------- writing

def _default_rows(fs: "FaceSet") -> list[dict[str, str]] | None:
    """The default protocol from a FaceSet's splits: train rows; first VIS image per dev/eval identity is the gallery."""
    if np.any(fs.splits == ""):
        return None
    roles = fs.roles
    if roles is None:
        roles = np.where(fs.splits == "train", "train", "probe").astype("<U7")
        for split in ("dev", "eval"):
            sub = fs.select(split=split)
            if len(sub) == 0:
                continue
            idx = np.flatnonzero(fs.splits == split)
            gal, _ = sub.gallery_probe("vis")
            roles[idx[gal]] = "gallery"
    return [{"split": str(s), "role": str(r)} for s, r in zip(fs.splits, roles)]


def write_layout(fs: "FaceSet", root: str | Path, name: str | None = None,
                 protocols: Mapping[str, Any] | None = None, *, alignment: str = "", source: str = "",
                 licence: str = "", overwrite: bool = False, progress: bool = False) -> Path:
    """Write ``fs`` as a standard layout under ``root`` and return ``root``.

    Images go to ``images/<modality>/<identity name>/<NNNNNN>.png`` (lossless PNG, so reading
    back gives identical pixels).  ``dataset.json`` records the identity names in id order, so
    identity ids survive the round trip.  The ``default`` protocol is written from the set's
    splits (when every image has one); ``protocols`` adds more, as ``{name: rows}`` where rows
    is a pandas DataFrame or a list of dicts with the columns of :data:`PROTOCOL_COLUMNS`.
    """
    root = Path(root)
    if (root / "dataset.json").exists() and not overwrite:
        raise LayoutError(f"{root / 'dataset.json'}: a layout already exists here. Choose another folder "
                          "or pass overwrite=True.")
    names = fs.identity_names
    used = np.unique(fs.identities)
    bad = [str(names[i]) for i in used if not _SAFE_NAME.match(str(names[i]))]
    if bad:
        raise LayoutError(f"Identity names {bad[:5]} cannot be folder names (letters, digits, '._+-' only, "
                          "not starting with a dot). Rename the identities before writing the layout.")
    rel_paths = []
    iterator = range(len(fs))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"writing {root.name}", unit="img")
    for i in iterator:
        rel = Path("images") / str(fs.modalities[i]) / str(names[fs.identities[i]]) / f"{i:06d}.png"
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(fs.images[i], dtype=np.uint8)).save(target, format="PNG")
        rel_paths.append(rel.as_posix())
    info = {
        "format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "name": name or fs.name,
        "modalities": [m for m in KNOWN_MODALITIES if m in set(fs.modalities.tolist())],
        "image_size": fs.image_size, "alignment": alignment, "source": source or str(fs.meta.get("source", "")),
        "licence": licence, "n_images": len(fs), "identities": [str(n) for n in names],
    }
    (root / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    all_protocols: dict[str, list[dict[str, str]]] = {}
    rows = _default_rows(fs)
    if rows is not None:
        for row, rel, i in zip(rows, rel_paths, range(len(fs))):
            row.update(identity=str(names[fs.identities[i]]), modality=str(fs.modalities[i]), path=rel)
        all_protocols["default"] = rows
    for pname, prow in (protocols or {}).items():
        if hasattr(prow, "to_dict"):
            prow = prow.to_dict("records")
        all_protocols[pname] = [dict(r) for r in prow]
    for pname, prow in all_protocols.items():
        if not _SAFE_NAME.match(pname):
            raise LayoutError(f"Protocol name {pname!r} cannot be a file name; use letters, digits and '._+-'.")
        path = root / "protocols" / f"{pname}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(PROTOCOL_COLUMNS))
            writer.writeheader()
            for r in prow:
                missing = [c for c in PROTOCOL_COLUMNS if c not in r]
                if missing:
                    raise LayoutError(f"Protocol {pname!r}: a row lacks columns {missing}; every row needs "
                                      f"{list(PROTOCOL_COLUMNS)}.")
                writer.writerow({c: r[c] for c in PROTOCOL_COLUMNS})
    return root


# ---------------------------------------------------------------------- reading and validation

def read_dataset_json(root: str | Path) -> dict[str, Any]:
    """Parse and check ``<root>/dataset.json``."""
    root = Path(root)
    path = root / "dataset.json"
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder. Point to the root of a standard layout "
                          "(the folder holding dataset.json, images/ and protocols/).")
    if not path.is_file():
        raise LayoutError(f"{path}: missing. Every layout needs a dataset.json with at least name, modalities "
                          "and image_size; FaceSet.write_layout or the data_scripts/ converters write one.")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise LayoutError(f"{path}: not valid JSON ({err}). Fix the syntax.") from None
    missing = [k for k in ("name", "modalities", "image_size") if k not in info]
    if missing:
        raise LayoutError(f"{path}: missing keys {missing}. Add them (image_size is the side in pixels, "
                          "modalities a list such as [\"vis\", \"nir\"]).")
    if not isinstance(info["image_size"], int) or info["image_size"] < 8:
        raise LayoutError(f"{path}: image_size={info['image_size']!r} must be an integer number of pixels.")
    bad = [m for m in info["modalities"] if m not in KNOWN_MODALITIES]
    if bad:
        raise LayoutError(f"{path}: unknown modalities {bad}. Allowed: {list(KNOWN_MODALITIES)} "
                          "(lower-case); rename them in dataset.json and in images/.")
    return info


def _choose_protocol(root: Path, protocol: str | None) -> Path | None:
    pdir = root / "protocols"
    available = sorted(p.stem for p in pdir.glob("*.csv")) if pdir.is_dir() else []
    if protocol is not None:
        path = pdir / f"{protocol}.csv"
        if not path.is_file():
            raise LayoutError(f"{path}: protocol {protocol!r} not found. Available: {available or 'none'}.")
        return path
    if not available:
        return None
    if "default" in available:
        return pdir / "default.csv"
    if len(available) == 1:
        return pdir / f"{available[0]}.csv"
    raise LayoutError(f"{pdir}: several protocols {available} and none named 'default'. "
                      "Pass protocol=<name> to choose one.")


def _scan_images(root: Path, info: dict[str, Any]) -> list[dict[str, str]]:
    """Rows for every image under images/ when no protocol is given (split left unassigned)."""
    rows = []
    idir = root / "images"
    if not idir.is_dir():
        raise LayoutError(f"{idir}: missing. Put faces in images/<modality>/<identity>/<name>.png.")
    for mdir in sorted(p for p in idir.iterdir() if p.is_dir()):
        if mdir.name not in KNOWN_MODALITIES:
            raise LayoutError(f"{mdir}: unknown modality folder {mdir.name!r}. Allowed: {list(KNOWN_MODALITIES)}; "
                              "rename the folder.")
        for idir_ in sorted(p for p in mdir.iterdir() if p.is_dir()):
            for f in sorted(idir_.iterdir()):
                if f.is_file():
                    rows.append({"split": "", "role": "", "identity": idir_.name, "modality": mdir.name,
                                 "path": f.relative_to(root).as_posix()})
    return rows


def _read_protocol(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in PROTOCOL_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise LayoutError(f"{path}: missing columns {missing}. The header must be "
                              f"{','.join(PROTOCOL_COLUMNS)}.")
        return [dict(r) for r in reader]


def _check_rows(root: Path, rows: list[dict[str, str]], source: Path | None, size: int, decode: bool) -> list[str]:
    """Every problem of the rows, one message each (empty list = fine)."""
    where = str(source) if source is not None else str(root / "images")
    problems: list[str] = []
    for n, r in enumerate(rows, start=2):  # row 1 is the header
        loc = f"{where}, row {n}" if source is not None else where
        if r["modality"] not in KNOWN_MODALITIES:
            problems.append(f"{loc}: unknown modality {r['modality']!r}. Allowed: {list(KNOWN_MODALITIES)}.")
            continue
        if source is not None:
            if r["split"] not in SPLITS:
                problems.append(f"{loc}: split {r['split']!r} must be one of {list(SPLITS)}.")
            if r["role"] not in ROLES:
                problems.append(f"{loc}: role {r['role']!r} must be one of {list(ROLES)}.")
        f = root / r["path"]
        if not f.is_file():
            problems.append(f"{loc}: file {r['path']!r} is absent. Restore {f} or remove the row.")
            continue
        parts = Path(r["path"]).parts
        if len(parts) == 4 and parts[0] == "images" and (parts[1] != r["modality"] or parts[2] != r["identity"]):
            problems.append(f"{loc}: path {r['path']!r} lies under images/{parts[1]}/{parts[2]}/ but the row says "
                            f"modality={r['modality']!r}, identity={r['identity']!r}. Make them agree.")
        if f.suffix.lower() in (".jpg", ".jpeg"):
            problems.append(f"{f}: JPEG is lossy; the layout stores PNG. Re-export it as PNG.")
        try:
            if decode:
                load_image(f, size)
            else:
                with Image.open(f) as im:
                    if im.size != (size, size):
                        problems.append(_size_message(f, im.size[0], im.size[1], size))
        except LayoutError as err:
            problems.append(str(err))
        except (UnidentifiedImageError, OSError) as err:
            problems.append(f"{f}: does not decode as an image ({err}). Re-export it as PNG, "
                            "or delete it and its protocol rows.")
        if len(problems) >= 20:
            problems.append("... (stopped after 20 problems)")
            break
    if source is not None:
        by_split: dict[str, set[str]] = {s: set() for s in SPLITS}
        for r in rows:
            if r["split"] in by_split:
                by_split[r["split"]].add(r["identity"])
        for other in ("dev", "eval"):
            leak = sorted(by_split["train"] & by_split[other])
            if leak:
                problems.append(f"{source}: identities {leak[:10]} appear in both 'train' and {other!r}: "
                                "a leak between training and testing, refused. Give each identity one split.")
    return problems


def validate_layout(root: str | Path, protocol: str | None = None, decode: bool = True) -> dict[str, Any]:
    """Check a layout; raise :class:`LayoutError` listing every problem, else return a short report.

    ``decode=True`` decodes every image (slow for big sets); ``False`` reads headers only.
    """
    root = Path(root)
    info = read_dataset_json(root)
    source = _choose_protocol(root, protocol)
    rows = _read_protocol(source) if source is not None else _scan_images(root, info)
    problems = _check_rows(root, rows, source, int(info["image_size"]), decode)
    if problems:
        raise LayoutError(f"{len(problems)} problem(s) in the layout at {root}:\n  " + "\n  ".join(problems))
    return {"root": str(root), "name": info["name"], "protocol": source.stem if source else None,
            "images": len(rows), "identities": len({r["identity"] for r in rows}),
            "modalities": sorted({r["modality"] for r in rows})}


def read_layout(root: str | Path, protocol: str | None = None, lazy: bool | None = None,
                progress: bool = False) -> "FaceSet":
    """Read a standard layout into a :class:`FaceSet` (checked; a leak or missing file raises).

    ``protocol``: the protocol CSV to read (default: ``default``, or the only one; with no
    protocols every image under images/ is read with its split unassigned).  ``lazy``: decode
    images on access (default: only when the pixels exceed 1 GiB).
    """
    from .faceset import FaceSet

    root = Path(root)
    info = read_dataset_json(root)
    size = int(info["image_size"])
    source = _choose_protocol(root, protocol)
    rows = _read_protocol(source) if source is not None else _scan_images(root, info)
    if lazy is None:
        lazy = len(rows) * size * size * 3 > LAZY_BYTES
    problems = _check_rows(root, rows, source, size, decode=False)
    if problems:
        raise LayoutError(f"{len(problems)} problem(s) reading the layout at {root}:\n  " + "\n  ".join(problems))
    names = list(info.get("identities") or [])
    known = set(names)
    extra = sorted({r["identity"] for r in rows} - known)
    names += extra
    id_of = {n: i for i, n in enumerate(names)}
    paths = [str(root / r["path"]) for r in rows]
    if lazy:
        images: Any = LazyImages(paths, size)
    else:
        images = np.empty((len(rows), size, size, 3), np.uint8)
        iterator = range(len(rows))
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc=f"reading {info['name']}", unit="img")
        for i in iterator:
            images[i] = load_image(paths[i], size)
    meta = {k: v for k, v in info.items() if k not in ("identities",)}
    meta["root"] = str(root)
    meta["protocol"] = source.stem if source is not None else None
    return FaceSet(images, [id_of[r["identity"]] for r in rows], [r["modality"] for r in rows],
                   splits=[r["split"] for r in rows], paths=paths, identity_names=names, name=str(info["name"]),
                   roles=[r["role"] for r in rows], meta=meta)
