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

A layout reads only its own files: every path of a protocol (or found under ``images/``) is
resolved, symbolic links included, and refused when it leads outside the root
(:class:`RootGuard`).  A protocol that uses one image as both a gallery template and a probe of
the same split is refused too: the image would match itself and lift rank-1.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Bring your own data").
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .faceset import KNOWN_MODALITIES, SPLITS
from .imageio import ImageTooLarge, read_rgb8, too_large_message

if TYPE_CHECKING:  # pragma: no cover
    from .faceset import FaceSet

ROLES: tuple[str, ...] = ("train", "gallery", "probe")
PROTOCOL_COLUMNS: tuple[str, ...] = ("split", "role", "identity", "modality", "path")
LAYOUT_FORMAT = "hfr-tutorial-layout"
LAYOUT_VERSION = 1
LAZY_BYTES = 1 << 30  # read lazily above 1 GiB of pixels when ``lazy=None``
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
LAYOUT_OWNED: tuple[str, ...] = ("images", "protocols", "dataset.json", "sources.csv")
"""What a layout owns inside its root: replaced by an overwrite, nothing else there is touched."""


class LayoutError(ValueError):
    """A standard layout on disk is missing something or breaks a rule (the message says how to fix it)."""


# ---------------------------------------------------------------------- images

def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Decode one face image as uint8 (H, W, 3) (grey images are replicated to 3 channels).

    16-bit images are scaled to 8 bits exactly as the ``data_scripts/`` converters scale them
    (:func:`hfr_tutorial.data.imageio.to_rgb8`: divided by 257), never clipped.  Raises
    :class:`LayoutError` naming the file when it cannot be read, does not decode or has the
    wrong size.
    """
    path = Path(path)
    try:
        arr = read_rgb8(path)
    except ImageTooLarge as err:
        raise LayoutError(str(err)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise _open_error(path, err) from None
    if size is not None and arr.shape[:2] != (size, size):
        raise LayoutError(_size_message(path, arr.shape[1], arr.shape[0], size))
    return arr


def _open_error(path: Path, err: BaseException) -> LayoutError:
    """The :class:`LayoutError` for a file that could not be opened or decoded, with the fix for that cause."""
    if isinstance(err, FileNotFoundError):
        return LayoutError(f"{path}: file not found. Restore it, or remove its row from the protocol.")
    if isinstance(err, PermissionError):
        return LayoutError(f"{path}: permission denied, so it cannot be read. Make it readable for this user "
                           "(e.g. chmod a+r on the file and its folders), or run as a user who may read it.")
    if isinstance(err, IsADirectoryError):
        return LayoutError(f"{path}: is a folder, not an image. Point the protocol row at a PNG file.")
    return LayoutError(f"{path}: does not decode as an image ({err}). Re-export it as PNG, "
                       "or delete it and its protocol rows.")


def layout_root(root: Any, what: str = "root") -> Path:
    """``root`` as a Path, or a TypeError naming the argument when it is not a path (None, a number ...)."""
    if isinstance(root, (str, os.PathLike)) and str(root) != "":
        return Path(root)
    raise TypeError(f"{what}={root!r}: give the path of a layout folder (a str or pathlib.Path), the folder "
                    "holding dataset.json, images/ and protocols/, e.g. FaceSet.from_layout('layouts/mine').")


class RootGuard:
    """Says whether a path, once resolved (symbolic links followed), still lies inside ``root``.

    Used wherever a path comes from a file (a protocol row, a converter's list) or from walking a
    folder: a ``..`` or a link to ``/home/someone/secret.png`` must not make a layout, or a
    converter, read a file outside the folder the user named.  Folders are resolved once and
    cached, so checking every row of a large protocol costs one ``lstat`` per file.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.real_root = Path(os.path.realpath(root))
        self._dirs: dict[Path, Path] = {}

    def real(self, path: str | os.PathLike) -> Path:
        """``path`` with every symbolic link resolved (a loop is left unresolved; opening it then fails)."""
        path = Path(os.path.abspath(path))
        parent = self._dirs.get(path.parent)
        if parent is None:
            parent = self._dirs[path.parent] = Path(os.path.realpath(path.parent))
        if os.path.islink(path):
            return Path(os.path.realpath(path))
        return parent / path.name

    def outside(self, path: str | os.PathLike) -> Path | None:
        """Where ``path`` really leads when that is outside the root, else None."""
        real = self.real(path)
        return None if real.is_relative_to(self.real_root) else real


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

    Everything is written to a temporary sibling folder first and moved into ``root`` at the
    end, so an interrupted write leaves ``root`` as it was.  ``overwrite=True`` replaces what a
    layout owns there (:data:`LAYOUT_OWNED`: images/, protocols/, dataset.json, sources.csv),
    so no protocol or image of the previous layout survives; other files in ``root`` are kept.
    """
    root = Path(root)
    check_layout_target(root, overwrite)
    names = fs.identity_names
    used = np.unique(fs.identities)
    bad = [str(names[i]) for i in used if not _SAFE_NAME.match(str(names[i]))]
    if bad:
        raise LayoutError(f"Identity names {bad[:5]} cannot be folder names (letters, digits, '._+-' only, "
                          "not starting with a dot). Rename the identities before writing the layout.")
    rel_paths = [(Path("images") / str(fs.modalities[i]) / str(names[fs.identities[i]]) / f"{i:06d}.png").as_posix()
                 for i in range(len(fs))]
    all_protocols = _protocols_to_write(fs, rel_paths, protocols)  # checked before any image is written
    staged = staging_dir(root)
    try:
        iterator: Any = range(len(fs))
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc=f"writing {root.name}", unit="img")
        for i in iterator:
            target = staged / rel_paths[i]
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(fs.images[i], dtype=np.uint8)).save(target, format="PNG")
        info = {
            "format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "name": name or fs.name,
            "modalities": [m for m in KNOWN_MODALITIES if m in set(fs.modalities.tolist())],
            "image_size": fs.image_size, "alignment": alignment,
            "source": source or str(fs.meta.get("source", "")),
            "licence": licence, "n_images": len(fs), "identities": [str(n) for n in names],
        }
        (staged / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
        for pname, prow in all_protocols.items():
            write_protocol_csv(staged / "protocols" / f"{pname}.csv", prow)
        install_layout(staged, root)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return root


def _protocols_to_write(fs: "FaceSet", rel_paths: Sequence[str],
                        protocols: Mapping[str, Any] | None) -> dict[str, list[dict[str, str]]]:
    """The default protocol (from the set's splits) plus ``protocols``, each name and row checked."""
    names = fs.identity_names
    out: dict[str, list[dict[str, str]]] = {}
    rows = _default_rows(fs)
    if rows is not None:
        for row, rel, i in zip(rows, rel_paths, range(len(fs))):
            row.update(identity=str(names[fs.identities[i]]), modality=str(fs.modalities[i]), path=rel)
        out["default"] = rows
    for pname, prow in (protocols or {}).items():
        if hasattr(prow, "to_dict"):
            prow = prow.to_dict("records")
        out[pname] = [dict(r) for r in prow]
    for pname, prow in out.items():
        if not _SAFE_NAME.match(pname):
            raise LayoutError(f"Protocol name {pname!r} cannot be a file name; use letters, digits and '._+-'.")
        for r in prow:
            missing = [c for c in PROTOCOL_COLUMNS if c not in r]
            if missing:
                raise LayoutError(f"Protocol {pname!r}: a row lacks columns {missing}; every row needs "
                                  f"{list(PROTOCOL_COLUMNS)}.")
    return out


def write_protocol_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write one protocol CSV (header :data:`PROTOCOL_COLUMNS`, one line per row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(PROTOCOL_COLUMNS))
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r[c] for c in PROTOCOL_COLUMNS})


# ---------------------------------------------------------------------- replacing a layout safely

def check_layout_target(root: str | Path, overwrite: bool, *, hint: str = "pass overwrite=True") -> None:
    """Refuse, before anything is written, a target folder that a layout may not be written to.

    Refused: ``root`` is a file; it holds a layout and ``overwrite`` is False (``hint`` says how
    the caller's user asks to overwrite, e.g. ``"pass --overwrite"``); its dataset.json is not
    one of ours (nothing is deleted then); it holds images/ or protocols/ without a dataset.json
    (an interrupted write) and ``overwrite`` is False.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise LayoutError(f"{root}: is a file, not a folder. Choose a folder (new or empty) for the layout.")
    info_path = root / "dataset.json"
    if info_path.exists():
        if not overwrite:
            raise LayoutError(f"{info_path}: a layout already exists here. Choose another folder or {hint} "
                              "to replace it.")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if not isinstance(info, dict) or info.get("format") != LAYOUT_FORMAT:
            raise LayoutError(f"{info_path}: not the dataset.json of a {LAYOUT_FORMAT}; refusing to replace "
                              "anything there. Choose another folder.")
    elif not overwrite and any((root / d).exists() for d in ("images", "protocols")):
        raise LayoutError(f"{root}: holds images/ or protocols/ but no dataset.json (left by an interrupted "
                          f"write?). Choose another folder, or {hint} to replace them.")


def staging_dir(root: str | Path) -> Path:
    """A fresh, empty temporary sibling of ``root`` (``.<name>.partial``) to write a layout into.

    The name is fixed, so what an interrupted (even killed) write left there is removed by the
    next attempt; it lies next to ``root`` so that moving it into place is a rename.
    """
    root = Path(os.path.abspath(root))
    staged = root.parent / f".{root.name}.partial"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    return staged


def install_layout(staged: str | Path, root: str | Path) -> None:
    """Move the layout written in ``staged`` into ``root``, replacing what ``root``'s layout owned.

    Only renames: ``root`` never holds a mix of two layouts.  An absent ``root`` becomes
    ``staged``; otherwise the entries of :data:`LAYOUT_OWNED` in ``root`` are moved aside, the new
    ones moved in, and the old ones deleted (put back if a move fails).
    """
    staged, root = Path(staged), Path(os.path.abspath(root))
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, root)
        return
    old = root.parent / f".{root.name}.replaced"
    if old.exists():
        shutil.rmtree(old)
    old.mkdir()
    moved_out = [n for n in LAYOUT_OWNED if (root / n).exists() or (root / n).is_symlink()]
    for n in moved_out:
        os.replace(root / n, old / n)
    moved_in: list[str] = []
    try:
        for child in sorted(staged.iterdir()):
            os.replace(child, root / child.name)
            moved_in.append(child.name)
    except BaseException:
        for n in moved_in:
            os.replace(root / n, staged / n)
        for n in moved_out:
            os.replace(old / n, root / n)
        raise
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staged, ignore_errors=True)


# ---------------------------------------------------------------------- reading and validation

def read_dataset_json(root: str | Path) -> dict[str, Any]:
    """Parse and check ``<root>/dataset.json``."""
    root = layout_root(root)
    path = root / "dataset.json"
    if root.exists() and not root.is_dir():
        hint = (f"give its folder {root.parent}" if root.name == "dataset.json"
                else "give the folder holding dataset.json, images/ and protocols/")
        raise LayoutError(f"{root}: is a file, not a folder; a layout is a folder. Point to the root of a "
                          f"standard layout: {hint}.")
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder. Point to the root of a standard layout "
                          "(the folder holding dataset.json, images/ and protocols/).")
    if not path.is_file():
        raise LayoutError(f"{path}: missing. Every layout needs a dataset.json with at least name, modalities "
                          "and image_size; FaceSet.write_layout or the data_scripts/ converters write one.")
    try:
        info = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LayoutError(f"{path}: not valid UTF-8 JSON ({err}). Fix the syntax.") from None
    except OSError as err:
        raise _open_error(path, err) from None
    if not isinstance(info, dict):
        raise LayoutError(f"{path}: holds a JSON {type(info).__name__}, not an object with name, modalities "
                          "and image_size. Fix the file.")
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
    """The rows of a protocol CSV (a UTF-8 byte-order mark and CRLF line ends are fine)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [(f or "").strip() for f in (reader.fieldnames or [])]
            missing = [c for c in PROTOCOL_COLUMNS if c not in fields]
            if missing:
                raise LayoutError(f"{path}: missing columns {missing}. The header must be "
                                  f"{','.join(PROTOCOL_COLUMNS)}.")
            reader.fieldnames = fields
            return [dict(r) for r in reader]
    except UnicodeDecodeError as err:
        raise LayoutError(f"{path}: not UTF-8 text ({err}). Save the protocol as UTF-8 CSV.") from None
    except OSError as err:
        raise _open_error(path, err) from None


def relative_path_problem(rel: str) -> str:
    """Why a protocol path may not be used ('' when it is fine): it must be relative and stay inside the root."""
    text = rel.replace("\\", "/")
    pure = PurePosixPath(text)
    if not text:
        return "is empty"
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", text):
        return "is absolute"
    if ".." in pure.parts:
        return "leaves the layout root through '..'"
    return ""


def _image_problem(f: Path, size: int, decode: bool) -> str:
    """What is wrong with one image file of a layout ('' when nothing): unreadable, not PNG data, wrong size."""
    try:
        with Image.open(f) as im:
            kind, (w, h) = im.format, im.size
        if kind != "PNG":
            return (f"{f}: holds {kind or 'unknown'} data, not PNG; the layout stores lossless PNG. Re-save it as "
                    "PNG (e.g. PIL: Image.open(f).save(f, format='PNG')).")
        if (w, h) != (size, size):
            return _size_message(f, w, h, size)
        if decode:
            load_image(f, size)
    except LayoutError as err:
        return str(err)
    except Image.DecompressionBombError as err:
        return too_large_message(f, err)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        return str(_open_error(f, err))
    return ""


SPLIT_PAIRS: tuple[tuple[str, str], ...] = (("train", "dev"), ("train", "eval"), ("dev", "eval"))
"""Pairs of splits that may share no identity."""


def _check_rows(root: Path, rows: list[dict[str, str]], source: Path | None, size: int, decode: bool) -> list[str]:
    """Every problem of the rows, one message each (empty list = fine).

    The one place the layout's rules live: :func:`validate_layout` and :func:`read_layout` both
    call it, so what one accepts the other reads.
    """
    where = str(source) if source is not None else str(root / "images")
    if not rows:
        if source is not None:
            return [f"{source}: has a header but no rows, so it uses no image. Add one row per image use "
                    f"({','.join(PROTOCOL_COLUMNS)}) or delete the file."]
        return [f"{root / 'images'}: holds no images. Put faces in images/<modality>/<identity>/<name>.png."]
    problems: list[str] = []
    guard = RootGuard(root)
    uses: dict[tuple[str, Path], dict[str, int]] = {}  # (split, real file) -> {role: first row}
    for n, r in enumerate(rows, start=2):  # row 1 is the header
        loc = f"{where}, row {n}" if source is not None else where
        if any(r.get(c) is None for c in PROTOCOL_COLUMNS):
            problems.append(f"{loc}: has fewer than the {len(PROTOCOL_COLUMNS)} fields "
                            f"{','.join(PROTOCOL_COLUMNS)}. Complete the row or remove it.")
            continue
        if r["modality"] not in KNOWN_MODALITIES:
            problems.append(f"{loc}: unknown modality {r['modality']!r}. Allowed: {list(KNOWN_MODALITIES)}.")
            continue
        if source is not None:
            if r["split"] not in SPLITS:
                problems.append(f"{loc}: split {r['split']!r} must be one of {list(SPLITS)}.")
            if r["role"] not in ROLES:
                problems.append(f"{loc}: role {r['role']!r} must be one of {list(ROLES)}.")
        why = relative_path_problem(r["path"])
        if why:
            problems.append(f"{loc}: path {r['path']!r} {why}; paths must be relative to the layout root {root} "
                            "and stay inside it (e.g. images/<modality>/<identity>/<name>.png). Fix the row.")
            continue
        f = root / r["path"]
        escape = guard.outside(f)
        if escape is not None:
            problems.append(f"{loc}: {r['path']!r} is a symbolic link (or lies under one) that leads to {escape}, "
                            f"outside the layout root {guard.real_root}; a layout reads only its own files. Put the "
                            "image itself in the layout (replace the link by a copy of the file) or remove the row.")
            continue
        if not f.is_file():
            problems.append(f"{loc}: file {r['path']!r} is absent. Restore {f} or remove the row.")
            continue
        if source is not None and r["role"] in ("gallery", "probe"):
            seen = uses.setdefault((r["split"], guard.real(f)), {})
            other = "probe" if r["role"] == "gallery" else "gallery"
            if other in seen:
                problems.append(f"{loc}: {r['path']!r} is a {r['split']} {r['role']}, and row {seen[other]} uses "
                                f"the same image as a {other}: it would match itself and count as a correct "
                                "answer. Give each image one role in a split (remove one of the two rows).")
            seen.setdefault(r["role"], n)
        parts = Path(r["path"]).parts
        if len(parts) == 4 and parts[0] == "images" and (parts[1] != r["modality"] or parts[2] != r["identity"]):
            problems.append(f"{loc}: path {r['path']!r} lies under images/{parts[1]}/{parts[2]}/ but the row says "
                            f"modality={r['modality']!r}, identity={r['identity']!r}. Make them agree.")
        if f.suffix.lower() in (".jpg", ".jpeg"):
            problems.append(f"{f}: JPEG is lossy; the layout stores PNG. Re-export it as PNG.")
        else:
            why = _image_problem(f, size, decode)
            if why:
                problems.append(why)
        if len(problems) >= 20:
            problems.append("... (stopped after 20 problems)")
            break
    if source is not None:
        by_split: dict[str, set[str]] = {s: set() for s in SPLITS}
        for r in rows:
            if r.get("split") in by_split and r.get("identity") is not None:
                by_split[r["split"]].add(r["identity"])
        for a, b in SPLIT_PAIRS:
            leak = sorted(by_split[a] & by_split[b])
            if leak:
                what = "training and testing" if a == "train" else "choosing settings (dev) and reporting (eval)"
                problems.append(f"{source}: identities {leak[:10]} appear in both {a!r} and {b!r}: a leak between "
                                f"{what}, refused. Give each identity one split.")
    return problems


def _checked_rows(root: Path, protocol: str | None, decode: bool,
                  doing: str) -> tuple[dict[str, Any], Path | None, list[dict[str, str]]]:
    """dataset.json, the protocol file (None: every image) and its rows, or a LayoutError listing every problem."""
    info = read_dataset_json(root)
    source = _choose_protocol(root, protocol)
    if source is not None:
        escape = RootGuard(root).outside(source)
        if escape is not None:
            raise LayoutError(f"{source}: a symbolic link to {escape}, outside the layout root {root}; a layout "
                              "reads only its own files. Copy the protocol into protocols/ instead of linking it.")
    rows = _read_protocol(source) if source is not None else _scan_images(root, info)
    problems = _check_rows(root, rows, source, int(info["image_size"]), decode)
    if problems:
        raise LayoutError(f"{len(problems)} problem(s) {doing} the layout at {root}:\n  " + "\n  ".join(problems))
    return info, source, rows


def validate_layout(root: str | Path, protocol: str | None = None, decode: bool = True) -> dict[str, Any]:
    """Check a layout; raise :class:`LayoutError` listing every problem, else return a short report.

    ``decode=True`` decodes every image (slow for big sets); ``False`` reads headers only.  The
    rules are those :func:`read_layout` applies (one checking function serves both).
    """
    root = layout_root(root)
    info, source, rows = _checked_rows(root, protocol, decode, "in")
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

    root = layout_root(root)
    info, source, rows = _checked_rows(root, protocol, False, "reading")
    size = int(info["image_size"])
    if lazy is None:
        lazy = len(rows) * size * size * 3 > LAZY_BYTES
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
        iterator: Any = range(len(rows))
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
