"""Shared machinery of the ``data_scripts/`` converters.

Every converter turns one licensed heterogeneous-face dataset, as its owners distribute it, into
the project's standard layout (see ``hfr_tutorial/data/layout.py``)::

    <out>/dataset.json                               name, modalities, image size, alignment, ...
    <out>/images/<modality>/<identity>/<name>.png    aligned square faces (PNG)
    <out>/protocols/<protocol>.csv                   split, role, identity, modality, path
    <out>/sources.csv                                where each image came from and how it was aligned

A converter (1) finds the dataset's files and annotations and describes each image as an
:class:`Item`, (2) builds its protocols as lists of ``(split, role, item)`` rows, and (3) hands
both to :func:`finish`, which aligns and writes every image once, writes the protocol CSVs (plus
``default.csv``, a copy of the headline protocol, so ``FaceSet.from_layout(out)`` needs no
argument), writes ``dataset.json`` and checks the result with the library's ``validate_layout``.

Alignment, best available first: your own landmarks (``--landmarks``), the dataset's five
landmarks, its two eye centres (a similarity transform taking the eyes exactly to the template's
eye positions), a face box (a square crop around it), and, when there is no annotation at all, a
plain centre crop.  All of them go through :func:`hfr_tutorial.data.align.align_face`: eyes, boxes
and crops are turned into the five points that put them where they belong in the template.

What a converter reads is checked before any work: every source image must lie inside ``--root``
once resolved (a ``..`` in a list, an absolute path or a symbolic link leading out is refused,
:func:`check_sources_inside`); text files (lists, CSVs, annotations) are decoded as UTF-8, or as
UTF-16/UTF-32 when they say so (a byte-order mark, or the zero bytes of UTF-16), and any other
encoding is refused by name unless ``--encoding`` says which it is (:func:`read_text`), so a
Latin-1 name is never garbled; ``--size`` must be a multiple of 16 (:func:`check_size`).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

try:
    import hfr_tutorial  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hfr_tutorial.data.align import align_face, estimate_transform, template
from hfr_tutorial.data.faceset import KNOWN_MODALITIES, SPLITS
from hfr_tutorial.data.imageio import ImageTooLarge, read_rgb8
from hfr_tutorial.data.layout import (
    LAYOUT_FORMAT,
    LAYOUT_OWNED,
    LAYOUT_VERSION,
    ROLES,
    LayoutError,
    RootGuard,
    check_layout_target,
    install_layout,
    relative_path_problem,
    staging_dir,
    validate_layout,
    write_protocol_csv,
)

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".bmp", ".png", ".tif", ".tiff")
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
SIZE_MULTIPLE = 16
"""Aligned faces must have a side that is a multiple of this: EdgeFace's stages halve the map four times."""
OFFICIAL_SIZE = 112
"""The input side the official EdgeFace weights were trained on."""


class DatasetError(LayoutError):
    """The dataset folder (or an annotation/protocol file) is not what the converter expects.

    The message names the file or folder that was expected and what to do.  A subclass of
    :class:`~hfr_tutorial.data.layout.LayoutError` so one ``except`` catches both.
    """


# ---------------------------------------------------------------------- arguments

def make_parser(prog: str, description: str, *, seeded: bool = False) -> argparse.ArgumentParser:
    """The options every converter shares (``--root``, ``--out``, ``--size``, ``--limit``, ...)."""
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, required=True, help="the dataset folder as the owners distribute it")
    p.add_argument("--out", type=Path, required=True, help="folder to write the standard layout to")
    p.add_argument("--size", type=int, default=112,
                   help="side of the aligned faces in pixels, a multiple of 16 (default 112, the official weights' input)")
    p.add_argument("--encoding", default=None, metavar="NAME",
                   help="encoding of the dataset's text files (lists, CSVs) when they are neither UTF-8 nor UTF-16/32 "
                        "with a byte-order mark, e.g. latin-1 or cp1252 (default: detected; others are refused)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="convert only N identities, evenly spread over the sorted identity list (a quick trial "
                        "that still gives every split some identities)")
    p.add_argument("--landmarks", type=Path, default=None, metavar="CSV",
                   help="your own landmarks, overriding the dataset's: CSV lines 'path,x1,y1,x2,y2' (two eye "
                        "centres) or 'path,x1,y1,...,x5,y5' (eyes, nose tip, mouth corners), path relative to "
                        "--root; an optional header line is skipped")
    p.add_argument("--crop-fraction", type=float, default=1.0, metavar="F",
                   help="centre crop for images without annotation: a square of F times the shorter side "
                        "(default 1.0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a layout already written at --out (only images/, protocols/ and the layout's "
                        "own files are removed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if seeded:
        p.add_argument("--seed", type=int, default=0, help="seed of the identity splits (default 0)")
    return p


def run_cli(main: Callable[[Sequence[str] | None], Any]) -> int:
    """Run a converter's ``main`` as a command: errors become one readable message and exit code 2."""
    try:
        main(None)
    except (LayoutError, FileNotFoundError) as err:
        print(printable(f"error: {err}"), file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a folder that cannot be written ...
        where = f"{err.filename}: " if err.filename else ""
        print(printable(f"error: {where}{err.strerror or err}. Check that the folder of --out is writable and has "
                        "free space, and that --root is readable; then run the same command again."), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: --out is unchanged; run the same command again to convert.", file=sys.stderr)
        return 130
    return 0


def check_size(size: Any, flag: str = "--size") -> tuple[int, str]:
    """``size`` as an int, and a warning ('' when none); refuses, before any work, a size EdgeFace cannot take.

    Refused: not a whole number, 0 or negative, below 16, not a multiple of :data:`SIZE_MULTIPLE`.
    Warned (the warning goes in dataset.json): any size other than :data:`OFFICIAL_SIZE`, since the
    official weights then see faces at a scale they were not trained on.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise DatasetError(f"{flag} {size!r}: give a whole number of pixels, a multiple of {SIZE_MULTIPLE} "
                           f"(e.g. {flag} {OFFICIAL_SIZE}).")
    size = int(size)
    if size < SIZE_MULTIPLE or size % SIZE_MULTIPLE:
        what = "is not a positive size" if size <= 0 else (f"is below {SIZE_MULTIPLE}" if size < SIZE_MULTIPLE
                                                           else f"is not a multiple of {SIZE_MULTIPLE}")
        lower = max(SIZE_MULTIPLE, size // SIZE_MULTIPLE * SIZE_MULTIPLE)
        near = sorted({lower, lower + SIZE_MULTIPLE})
        raise DatasetError(f"{flag} {size} {what}: EdgeFace takes faces whose side is a multiple of {SIZE_MULTIPLE} "
                           f"pixels (its stages halve the image four times). Use {flag} {OFFICIAL_SIZE}, the input of "
                           f"the official weights (or {' or '.join(map(str, near))}).")
    if size != OFFICIAL_SIZE:
        return size, (f"image_size {size}: the official EdgeFace weights were trained on {OFFICIAL_SIZE}x"
                      f"{OFFICIAL_SIZE} faces; at {size} px they see faces at another scale and recognise them less "
                      f"well unless adapted. Use --size {OFFICIAL_SIZE} to run them as published.")
    return size, ""


def check_seed(seed: Any, flag: str = "--seed") -> int:
    """``seed`` as an int >= 0 (numpy's seeded generators take no negative seed), or a DatasetError naming the flag."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"{flag} {seed}: give a whole number >= 0 (e.g. {flag} 0); the splits are drawn with "
                           "numpy.random.default_rng, which takes no negative seed.")
    return int(seed)


def check_crop_fraction(fraction: Any, flag: str = "--crop-fraction") -> float:
    """``fraction`` as a finite float in (0, 4], or a DatasetError naming the flag (before any work)."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and 0 < value <= 4):
        raise DatasetError(f"{flag} {fraction}: give the side of the centre square as a fraction of the shorter side, "
                           f"above 0 and at most 4 (default 1.0, the whole shorter side).")
    return value


def printable(text: str) -> str:
    """``text`` safe to print and to write as UTF-8: bytes of a non-UTF-8 file name shown as ``\\xNN``."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8_name(name: str) -> bool:
    """False for a file name whose bytes are not UTF-8 (Python holds them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NAME_KEEP = set("._+-")


def readable_name(text: str, max_bytes: int = 120) -> tuple[str, bool]:
    """A layout folder/file name for ``text`` that keeps it readable; and whether it had to be slugged.

    Letters and digits of every script are kept (``Zoë``, ``张伟``), NFC-normalised, when the file
    system can hold them; runs of other characters (spaces, slashes, punctuation) become ``_``.
    When that cannot work (a name whose bytes are not UTF-8, a name the file system's encoding
    cannot hold, nothing left, or a name over ``max_bytes``) the result is a stable ASCII slug
    plus 8 hex digits of the original name's SHA-1 (``Jos-3f1c2a9b``), and the second value is
    True: the caller records the original.
    """
    raw = str(text)
    fits = is_utf8_name(raw)
    if fits:
        try:
            unicodedata.normalize("NFC", raw).encode(sys.getfilesystemencoding() or "utf-8")
        except (UnicodeEncodeError, LookupError):
            fits = False
    name = ""
    if fits:
        kept = []
        for ch in unicodedata.normalize("NFC", raw):
            ok = ch.isalnum() or ch in _NAME_KEEP or (unicodedata.category(ch).startswith("M") and kept)
            kept.append(ch if ok else "_")
        name = re.sub(r"_+", "_", "".join(kept)).strip("_")
        while name and not name[0].isalnum():
            name = name[1:]
    if name and len(name.encode("utf-8")) <= max_bytes:
        return name, False
    ascii_part = unicodedata.normalize("NFKD", printable(raw)).encode("ascii", "ignore").decode("ascii")
    base = safe_name(ascii_part.replace("\\x", "_"))[:40].rstrip("._+-") or "x"
    digest = hashlib.sha1(raw.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{base}-{digest}", True


def name_digest(text: str) -> str:
    """8 hex digits of ``text``'s SHA-1 (its bytes as the file system gave them): a stable tie-breaker."""
    return hashlib.sha1(str(text).encode("utf-8", "surrogateescape")).hexdigest()[:8]


def distinct_names(raw_names: Iterable[str]) -> dict[str, tuple[str, bool]]:
    """{raw name: (layout name, slugged)}: :func:`readable_name` of each, and distinct even on a case-insensitive disk.

    Two raw names that would give the same layout name (``Anna Maria`` and ``Anna_Maria``, or
    ``anna`` and ``Anna`` once case is ignored) both get :func:`name_digest` of their raw name
    appended, so two people are never merged into one identity, whatever order they come in.
    """
    named = {f: readable_name(f) for f in dict.fromkeys(raw_names)}
    by_key: dict[str, list[str]] = {}
    for f, (n, _) in named.items():
        by_key.setdefault(n.casefold(), []).append(f)
    for group in by_key.values():
        if len(group) > 1:
            for f in group:
                n, slugged = named[f]
                named[f] = (f"{n}-{name_digest(f)}", slugged)
    return named


# ---------------------------------------------------------------------- text files

_BOMS: tuple[tuple[bytes, str], ...] = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                                        (b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"),
                                        (b"\xfe\xff", "utf-16-be"))


def detect_encoding(data: bytes) -> str | None:
    """The encoding ``data`` shows for sure: a byte-order mark, UTF-16 by its zero bytes, or UTF-8; else None."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    head = data[:4096]
    if head and head.count(0) >= len(head) // 4:  # ASCII text in UTF-16: every other byte is 0
        odd, even = head[1::2].count(0), head[0::2].count(0)
        return "utf-16-le" if odd > even else "utf-16-be"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "utf-8"


def read_text(path: Path, what: str = "", encoding: str | None = None) -> str:
    """The text of ``path``, decoded as :func:`detect_encoding` finds or as ``encoding`` (``--encoding``) says.

    Never garbles: a file that is not UTF-8, UTF-16 or UTF-32 (a Latin-1 CSV, say) is refused with
    the line and the bytes that are not UTF-8 and the fix (``--encoding latin-1``, or re-save it as
    UTF-8), unless ``encoding`` names its encoding.  A byte-order mark is dropped.
    """
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    data = path.read_bytes()
    if encoding:
        try:
            text = data.decode(encoding)
        except LookupError:
            raise DatasetError(f"--encoding {encoding}: not an encoding Python knows (e.g. utf-8, latin-1, cp1252, "
                               "utf-16).") from None
        except UnicodeDecodeError as err:
            raise DatasetError(f"{label}: does not decode as --encoding {encoding} ({err.reason} at byte "
                               f"{err.start}). Give the encoding the file was saved in, or re-save it as UTF-8.") from None
        return text.lstrip("\ufeff")
    found = detect_encoding(data)
    if found is None:
        err = _utf8_error(data)
        line = data[:err.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, err.start) + 1
        end = data.find(b"\n", err.start)
        snippet = data[start:end if end >= 0 else len(data)][:120]
        raise DatasetError(f"{label}: not UTF-8 text (line {line}: {snippet!r}, byte 0x{data[err.start]:02x}); it was "
                           "probably saved as Latin-1 / Windows-1252 or another 8-bit code page, and reading it as "
                           "UTF-8 would garble its names. Pass --encoding latin-1 (or cp1252, cp1251, ... the one it "
                           "was saved in), or re-save it as UTF-8.")
    try:
        return data.decode(found).lstrip("\ufeff")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{label}: looks like {found} text but does not decode as it ({err.reason} at byte "
                           f"{err.start}). Re-save it as UTF-8, or pass --encoding NAME.") from None


def _utf8_error(data: bytes) -> UnicodeDecodeError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return err
    raise AssertionError("data decodes as UTF-8")


def read_csv_rows(path: Path, what: str = "", encoding: str | None = None) -> csv.DictReader:
    """A :class:`csv.DictReader` over ``path``'s text as :func:`read_text` decodes it."""
    return csv.DictReader(io.StringIO(read_text(path, what, encoding), newline=""))


# ---------------------------------------------------------------------- paths read from lists

def listed_path_problem(rel: str) -> str:
    """Why a path read from a list or CSV may not be used ('' when fine): absolute, or leaving through '..'."""
    return relative_path_problem(str(rel))


def check_listed_path(rel: str, root: Path, where: str) -> None:
    """Refuse, naming ``where`` (file and line), a listed path that is absolute or climbs out through ``..``."""
    why = listed_path_problem(rel)
    if why:
        raise DatasetError(f"{where}: path {rel!r} {why}; every listed path must be relative to --root {root} and "
                           "stay inside it, and a converter never reads files outside --root. Fix the line, or move "
                           "the image under --root and list it from there.")


def check_sources_inside(items: Iterable["Item"], root: Path) -> None:
    """Refuse, before any work, source images that lie outside ``root`` once resolved (links, ``..``, absolute)."""
    guard = RootGuard(root)
    bad = []
    for it in items:
        target = guard.outside(it.source)
        if target is not None:
            bad.append(f"{printable(str(it.source))} -> {printable(str(target))}")
    if bad:
        raise DatasetError(f"{len(bad)} source image(s) lead outside --root {guard.real_root} (through a symbolic link, "
                           "'..' or an absolute path), e.g.:\n  " + "\n  ".join(bad[:10]) + "\nA converter reads only "
                           "the dataset under --root: copy those files into it (replace each link by the file it "
                           "points to), or point --root at the folder that really holds them.")


# ---------------------------------------------------------------------- expected files

def require_root(root: Path, folder: str, holds: str) -> Path:
    """``root`` as a Path, or a :class:`DatasetError` when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"--root {root}: no such folder. Point --root at {folder} (the folder that holds "
                           f"{holds}).")
    return root


def check_out_outside_root(out: Path, root: Path) -> None:
    """Refuse an ``--out`` that is ``--root`` or lies inside it: a converter never writes into the dataset."""
    o, r = Path(out).expanduser().resolve(), Path(root).expanduser().resolve()
    if o == r or r in o.parents:
        raise DatasetError(f"--out {out} lies inside --root {root}: the layout would be written into the dataset "
                           f"folder, which converters only read. Choose an --out outside it, e.g. "
                           f"{r.parent / (r.name + '-layout')}.")


def expect_dir(root: Path, rel: str, folder: str, holds: str) -> Path:
    """``root/rel`` (a folder) or a :class:`DatasetError` naming it, e.g. 'expected NIR-VIS-2.0/protocols/'."""
    path = root / rel
    if not path.is_dir():
        raise DatasetError(f"expected {folder}/{rel}/ (looked for {path}); is --root the folder that holds "
                           f"{holds}?")
    return path


def expect_file(root: Path, rel: str, folder: str, holds: str) -> Path:
    """``root/rel`` (a file; the name's case may differ) or a :class:`DatasetError` naming what was expected."""
    path = root / rel
    if path.is_file():
        return path
    found = find_case_insensitive(path)
    if found is not None:
        return found
    raise DatasetError(f"expected {folder}/{rel} (looked for {path}); is --root the folder that holds {holds}?")


def find_case_insensitive(path: Path) -> Path | None:
    """``path`` when it exists, else a file in the same folder whose name differs only in case."""
    if path.is_file():
        return path
    parent = path.parent
    if not parent.is_dir():
        return None
    low = path.name.lower()
    for cand in parent.iterdir():
        if cand.name.lower() == low and cand.is_file():
            return cand
    return None


def find_with_extensions(path: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> Path | None:
    """``path`` itself, else the same stem with another image extension (any case), else None."""
    if path.is_file():
        return path
    base = path.with_suffix("") if path.suffix.lower() in IMAGE_EXTENSIONS else path
    for ext in extensions:
        for e in (ext.lower(), ext.upper()):
            cand = base.with_name(base.name + e)
            if cand.is_file():
                return cand
    return find_case_insensitive(path)


# ---------------------------------------------------------------------- items

@dataclass
class Item:
    """One source image: where it is, whose it is, and what is known of the face's position.

    ``name`` is the file stem in the layout (``images/<modality>/<identity>/<name>.png``);
    ``key`` the source path relative to ``--root`` (posix) used to look up ``--landmarks``.
    Annotations are (x, y) pixel coordinates, (0, 0) the centre of the top-left pixel:
    ``eyes`` (2, 2), ``landmarks`` (5, 2) in :data:`hfr_tutorial.data.align.LANDMARK_ORDER`,
    ``box`` (left, top, width, height).  ``info`` holds dataset-specific attributes
    (camera, distance, session, ...).
    """

    source: Path
    identity: str
    modality: str
    name: str
    key: str = ""
    eyes: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """Where the aligned face goes, relative to the layout root."""
        return f"images/{self.modality}/{self.identity}/{self.name}.png"


def safe_name(text: str) -> str:
    """``text`` as a layout folder/file name: letters, digits and ``._+-`` only, starting with one of the first two."""
    name = _SAFE.sub("_", str(text)).strip("_")
    if not name or not name[0].isalnum():
        name = "x" + name
    return name


def natural_key(text: str) -> tuple:
    """Sort key putting '2' before '10' (numbers by value, then the text)."""
    return tuple((0, int(t), "") if t[0].isdecimal() else (1, 0, t.lower()) for t in re.findall(r"\d+|\D+", str(text)))


def natural_sorted(values: Iterable[str]) -> list[str]:
    return sorted(set(values), key=natural_key)


def limit_identities(identities: Iterable[str], limit: int | None) -> set[str]:
    """The identities to keep for ``--limit``: ``limit`` of them evenly spread over the sorted list (all when None)."""
    ids = natural_sorted(identities)
    if limit is None or limit >= len(ids):
        return set(ids)
    if limit < 1:
        raise DatasetError(f"--limit {limit}: give a positive number of identities.")
    picks = np.unique(np.round(np.linspace(0, len(ids) - 1, limit)).astype(int))
    return {ids[i] for i in picks}


def scaled_count(n_found: int, n_default: int, n_full: int) -> int:
    """``n_default`` of ``n_full`` identities, scaled to ``n_found`` when far fewer were found (``--limit``).

    Keeps at least one identity on each side of the split.
    """
    n = n_default if n_found >= 0.9 * n_full else int(round(n_found * n_default / n_full))
    return int(min(max(n, 1), max(n_found - 1, 1)))


def seeded_identity_splits(identities: Iterable[str], n_train: int, n_splits: int, seed: int,
                           always_train: Iterable[str] = ()) -> list[tuple[list[str], list[str]]]:
    """``n_splits`` seeded identity-disjoint (train, test) splits with ``n_train`` training identities.

    Split ``s`` shuffles the sorted identities with ``numpy.random.default_rng([seed, s])``, so
    the same seed gives the same splits on every machine.  ``always_train`` identities (e.g.
    MCXFace subjects seen in one session only) are always put in train.
    """
    seed = check_seed(seed)
    ids = natural_sorted(identities)
    forced = [i for i in ids if i in set(always_train)]
    free = [i for i in ids if i not in set(forced)]
    n_more = n_train - len(forced)
    if n_more < 0 or n_more > len(free):
        raise DatasetError(f"cannot put {n_train} of {len(ids)} identities in train ({len(forced)} must be in "
                           "train); choose another training size.")
    out = []
    for s in range(n_splits):
        perm = np.random.default_rng([int(seed), s]).permutation(len(free))
        train = set(forced) | {free[i] for i in perm[:n_more]}
        out.append(([i for i in ids if i in train], [i for i in ids if i not in train]))
    return out


# ---------------------------------------------------------------------- annotations

def read_landmarks_csv(path: Path | None, encoding: str | None = None) -> dict[str, np.ndarray]:
    """``--landmarks``: {relative posix path: (2, 2) eyes or (5, 2) landmarks}."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"--landmarks {path}: no such file. Give a CSV with lines 'path,x1,y1,x2,y2' or "
                           "'path,x1,y1,...,x5,y5'.")
    out: dict[str, np.ndarray] = {}
    text = read_text(path, "--landmarks", encoding)
    for n, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        row = [c.strip() for c in row if c.strip() != ""]
        if not row or row[0].startswith("#"):
            continue
        try:
            values = [float(v) for v in row[1:]]
        except ValueError:
            if n == 1:  # a header
                continue
            raise DatasetError(f"{path}, line {n}: {row[1:]} are not numbers; each line is a path and 4 or "
                               "10 coordinates.") from None
        if len(values) not in (4, 10):
            raise DatasetError(f"{path}, line {n}: {len(values)} numbers after the path; give 4 (two eye "
                               "centres x,y) or 10 (eyes, nose tip, mouth corners).")
        out[normalise_key(row[0])] = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    return out


def normalise_key(rel: str) -> str:
    """A source path relative to --root as a lookup key: '/' separators, no './', no extension, lower case."""
    rel = rel.replace("\\", "/").strip()
    while rel.startswith("./"):
        rel = rel[2:]
    stem = re.sub(r"\.[A-Za-z0-9]{2,4}$", "", rel)
    return stem.lower()


def order_eyes(eyes: np.ndarray) -> np.ndarray:
    """Two eye centres as (image-left, image-right): sorted by x, whatever order the file gives them in."""
    e = np.asarray(eyes, dtype=np.float64).reshape(2, 2)
    return e[np.argsort(e[:, 0], kind="stable")]


def eyes_to_landmarks(eyes: np.ndarray, size: int) -> np.ndarray:
    """Five points that are the template seen through the similarity mapping its eyes onto ``eyes``.

    Aligning with these five points is the two-point alignment: the least-squares similarity is
    exact here and takes the two eyes precisely to the template's eye positions.
    """
    e = order_eyes(eyes)
    t = template(size)
    a, b = complex(*t[0]), complex(*t[1])
    p, q = complex(*e[0]), complex(*e[1])
    s = (q - p) / (b - a)
    z = t[:, 0] + 1j * t[:, 1]
    w = p + s * (z - a)
    return np.stack([w.real, w.imag], axis=1)


def square_to_landmarks(x0: float, y0: float, side: float, size: int) -> np.ndarray:
    """Five points that make ``align_face`` crop the square with top-left corner (x0, y0) (pixel edges) and ``side``."""
    t = template(size)
    return np.stack([x0 - 0.5 + (t[:, 0] + 0.5) * side / size, y0 - 0.5 + (t[:, 1] + 0.5) * side / size], axis=1)


def centre_crop_landmarks(width: int, height: int, size: int, fraction: float = 1.0) -> np.ndarray:
    """The centre square of ``fraction`` times the shorter side, as five points for ``align_face``."""
    side = min(width, height) * fraction
    return square_to_landmarks((width - side) / 2, (height - side) / 2, side, size)


def box_to_landmarks(box: Sequence[float], size: int, margin: float = 1.3) -> np.ndarray:
    """A face box (left, top, width, height) as the square of ``margin`` times its longer side around its centre."""
    left, top, w, h = (float(v) for v in box)
    side = max(w, h) * margin
    return square_to_landmarks(left + w / 2 - side / 2, top + h / 2 - side / 2, side, size)


def _points_ok(points: np.ndarray, width: int, height: int) -> str:
    """'' when the annotation points are usable on a width x height image, else why not."""
    pts = np.asarray(points, dtype=np.float64)
    if not np.all(np.isfinite(pts)):
        return "not finite"
    if np.any(pts[:, 0] < -0.5) or np.any(pts[:, 0] > width - 0.5) or np.any(pts[:, 1] < -0.5) \
            or np.any(pts[:, 1] > height - 0.5):
        return f"points {np.round(pts, 1).tolist()} lie outside the {width}x{height} image"
    if np.linalg.norm(pts[1] - pts[0]) < 2:
        return "the two eyes (almost) coincide"
    return ""


# ---------------------------------------------------------------------- images

def read_image(path: Path) -> np.ndarray:
    """Decode a source image as uint8 (H, W, 3), upright: grey is replicated, 16-bit is divided by 257 (as Bob does).

    The reading is :func:`hfr_tutorial.data.imageio.read_rgb8`, the one the layout reader uses too
    (EXIF orientation applied; an image over the decompression-bomb limit refused by name).
    """
    try:
        return read_rgb8(path)
    except ImageTooLarge as err:
        raise DatasetError(str(err)) from None
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found (it was listed a moment ago).") from None
    except PermissionError:
        raise DatasetError(f"{path}: permission denied, so it cannot be read. Make the dataset readable for this "
                           "user (e.g. chmod -R a+rX on --root).") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"{path}: does not decode as an image ({err}). Re-copy it from the original "
                           "archive.") from None


def warp_to_template(img: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """``align_face`` with a box-filter pre-shrink when the face is much larger than ``size`` (no aliasing)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 2:
        pts = eyes_to_landmarks(pts, size)
    shrink = 1.0 / float(estimate_transform(pts, size).scale)  # source pixels per output pixel
    k = int(np.floor(shrink))
    if k >= 2:
        img = np.asarray(Image.fromarray(img).reduce(k))
        pts = (pts - (k - 1) / 2.0) / k
    return align_face(img, pts, size=size)


# ---------------------------------------------------------------------- protocols

Row = tuple  # (split, role, Item)


def rows(split: str, role: str, items: Iterable[Item]) -> list[Row]:
    """Protocol rows giving ``items`` one split and role."""
    if split not in SPLITS or role not in ROLES:
        raise ValueError(f"split {split!r} / role {role!r}: use {SPLITS} / {ROLES}.")
    return [(split, role, it) for it in items]


def check_protocol(name: str, prows: Sequence[Row]) -> None:
    """Refuse (before anything is written) a protocol that shares identities between splits."""
    by: dict[str, set[str]] = {s: set() for s in SPLITS}
    for split, _, it in prows:
        by[split].add(it.identity)
    for a, b in (("train", "dev"), ("train", "eval"), ("dev", "eval")):
        both = sorted(by[a] & by[b], key=natural_key)
        if both:
            raise DatasetError(f"protocol {name!r}: identities {both[:10]} are in both {a!r} and {b!r}; splits must "
                               "be identity-disjoint. Check the protocol lists you gave.")


def drop_leaks(train: Sequence[Item], test_identities: Iterable[str]) -> tuple[list[Item], list[str]]:
    """Remove from ``train`` the images of identities that are also tested; returns (kept, dropped identities)."""
    test = set(test_identities)
    dropped = natural_sorted({it.identity for it in train if it.identity in test})
    return [it for it in train if it.identity not in test], dropped


def protocol_counts(prows: Sequence[Row]) -> dict[str, Any]:
    """{'train': images, 'dev_gallery': ..., 'eval_probe': ..., 'identities': {...}} of a protocol."""
    counts: dict[str, Any] = {}
    ids: dict[str, set[str]] = {}
    for split, role, it in prows:
        key = "train" if role == "train" else f"{split}_{role}"
        counts[key] = counts.get(key, 0) + 1
        ids.setdefault(split, set()).add(it.identity)
    counts["identities"] = {s: len(v) for s, v in ids.items()}
    return counts


# ---------------------------------------------------------------------- output

def prepare_out(out: Path, overwrite: bool) -> Path:
    """Check ``--out`` before any work; nothing is written or deleted here.

    Accepted: a new or empty folder; a layout (replaced at the end only with ``--overwrite``); with
    ``--overwrite``, the images/, protocols/ and sources.csv an interrupted run of an older
    converter left without a dataset.json.  Refused: a file, or a folder holding anything else.
    """
    out = Path(out)
    try:
        check_layout_target(out, overwrite, hint="pass --overwrite")
    except LayoutError as err:
        raise DatasetError(f"--out {err}") from None
    if out.is_dir() and not (out / "dataset.json").exists():
        others = sorted(p.name for p in out.iterdir() if p.name not in LAYOUT_OWNED)
        if others:
            raise DatasetError(f"--out {out}: exists and is not an empty folder or a layout (it holds "
                               f"{others[:5]}). Choose a new folder.")
    return out


def finish(args: argparse.Namespace, protocols: Mapping[str, Sequence[Row]], *, default: str, dataset: str,
           converter: str, source: str, licence: str, alignment: str, notes: Sequence[str] = (),
           box_margin: float = 1.3) -> dict[str, Any]:
    """Align and write every image used by ``protocols``, the protocol CSVs and dataset.json; validate; report.

    ``protocols``: {name: rows}; empty protocols are skipped.  ``default`` names the protocol
    copied to ``protocols/default.csv``.  Returns a summary (also printed): the output folder,
    images written, per-protocol counts, how images were aligned, and warnings.

    Everything is written to a temporary sibling of ``--out`` (``.<name>.partial``) and moved into
    ``--out`` only once it is complete and validated: a converter that stops (a corrupt source
    image, Ctrl-C, a full disk) leaves ``--out`` as it was, says so, and the same command runs again
    (a partial folder left by a killed run is removed by the next one).
    """
    notes = list(notes)
    protocols = {n: list(r) for n, r in protocols.items() if r}
    if not protocols:
        raise DatasetError(f"{dataset}: no protocol has any image (check --root and --limit).")
    if default not in protocols:
        raise DatasetError(f"{dataset}: the default protocol {default!r} is empty; nothing to point "
                           "protocols/default.csv at.")
    for name, prows in protocols.items():
        safe = safe_name(name)
        if safe != name:
            raise ValueError(f"protocol name {name!r} is not a safe file name")
        check_protocol(name, prows)
    size, size_warning = check_size(args.size)
    check_crop_fraction(getattr(args, "crop_fraction", 1.0))
    if size_warning:
        notes.append(size_warning)
    if getattr(args, "root", None) is not None:
        check_out_outside_root(Path(args.out), Path(args.root))
    out = prepare_out(args.out, args.overwrite)
    overrides = read_landmarks_csv(getattr(args, "landmarks", None), getattr(args, "encoding", None))
    ordered = _collect_items(protocols)
    if getattr(args, "root", None) is not None:
        check_sources_inside(ordered, Path(args.root))
    staged = staging_dir(out)  # everything is written here, then moved into --out in one step
    try:
        methods, notes = _write_layout(args, protocols, ordered, staged, overrides, default=default, dataset=dataset,
                                       converter=converter, source=source, licence=licence, alignment=alignment,
                                       notes=notes, box_margin=box_margin)
        for name in list(protocols) + ["default"]:
            validate_layout(staged, protocol=name, decode=False)
        install_layout(staged, out)
    except LayoutError as err:
        shutil.rmtree(staged, ignore_errors=True)
        raise DatasetError(str(err).replace(str(staged), str(out)) + "\n" + _stopped_note(out)) from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        print(f"{dataset}: stopped. {_stopped_note(out)}", file=sys.stderr)
        raise
    n_images = sum(methods.values())
    summary = {"out": str(out), "images": n_images, "alignment": methods, "default": default,
               "protocols": {n: protocol_counts(r) for n, r in protocols.items()}, "notes": notes}
    _print_summary(summary)
    if size_warning:
        print(f"warning: {size_warning}", file=sys.stderr)
    return summary


def _stopped_note(out: Path) -> str:
    """What a converter that stopped leaves behind, and how to go on."""
    return (f"Nothing was written to --out {out} (the partial output was removed; a layout already there is "
            "unchanged). Fix the cause above and run the same command again.")


def _collect_items(protocols: Mapping[str, Sequence[Row]]) -> list[Item]:
    """Every image the protocols use, once, in a stable order; refuses two sources for one output path."""
    items: dict[str, Item] = {}
    for prows in protocols.values():
        for _, _, it in prows:
            prev = items.get(it.path)
            if prev is None:
                items[it.path] = it
            elif prev.source != it.source:
                raise DatasetError(f"{it.source} and {prev.source} would both become {it.path}; the file names "
                                   "collide. Rename one or report the variant.")
    return sorted(items.values(), key=lambda it: (it.modality, natural_key(it.identity), natural_key(it.name)))


def _write_layout(args: argparse.Namespace, protocols: Mapping[str, Sequence[Row]], ordered: Sequence[Item],
                  out: Path, overrides: Mapping[str, np.ndarray], *, default: str, dataset: str, converter: str,
                  source: str, licence: str, alignment: str, notes: list[str],
                  box_margin: float) -> tuple[dict[str, int], list[str]]:
    """Align and write every image, the protocol CSVs, sources.csv and dataset.json into ``out``."""
    from tqdm import tqdm

    size = int(args.size)
    methods: dict[str, int] = {}
    bad: list[str] = []
    source_rows = []
    root = Path(args.root)
    for it in tqdm(ordered, desc=f"{dataset}: aligning", unit="img", disable=bool(args.no_progress)):
        img = read_image(it.source)
        h, w = img.shape[:2]
        method, pts = "centre-crop", None
        for kind, cand in (("landmarks-file", overrides.get(normalise_key(it.key)) if it.key else None),
                           ("five-points", it.landmarks), ("eyes", it.eyes)):
            if cand is None:
                continue
            why = _points_ok(np.asarray(cand).reshape(-1, 2), w, h)
            if why:
                bad.append(f"{it.source}: {kind} annotation unusable ({why})")
                continue
            method, pts = kind, np.asarray(cand, dtype=np.float64).reshape(-1, 2)
            break
        if pts is None and it.box is not None:
            method, pts = "box", box_to_landmarks(it.box, size, box_margin)
        if pts is None:
            pts = centre_crop_landmarks(w, h, size, float(args.crop_fraction))
        face = warp_to_template(img, pts, size)
        target = out / it.path
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face).save(target, format="PNG")
        methods[method] = methods.get(method, 0) + 1
        try:
            src = it.source.relative_to(root).as_posix()
        except ValueError:
            src = str(it.source)
        source_rows.append({"path": it.path, "source": printable(src), "alignment": method})

    for name, prows in list(protocols.items()) + [("default", protocols[default])]:
        write_protocol_csv(out / "protocols" / f"{name}.csv",
                           [{"split": split, "role": role, "identity": it.identity, "modality": it.modality,
                             "path": it.path} for split, role, it in prows])
    with open(out / "sources.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "source", "alignment"])
        writer.writeheader()
        writer.writerows(source_rows)

    notes = [printable(n) for n in notes]
    if bad:
        notes.append(f"{len(bad)} annotation(s) were unusable and those images were centre-cropped, e.g. "
                     + printable("; ".join(bad[:3])))
    if methods.get("centre-crop"):
        notes.append(f"{methods['centre-crop']} image(s) had no usable annotation and were centre-cropped "
                     f"(--crop-fraction {args.crop_fraction}); give --landmarks for a proper alignment.")
    present = {it.modality for it in ordered}
    info = {
        "format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "name": dataset,
        "modalities": [m for m in KNOWN_MODALITIES if m in present], "image_size": size,
        "alignment": alignment, "source": source, "licence": licence, "n_images": len(ordered),
        "identities": natural_sorted(it.identity for it in ordered),
        "protocols": list(protocols), "default_protocol": default, "converter": converter,
        "alignment_counts": methods, "notes": notes, "image_size_warning": check_size(size)[1] or None,
    }
    (out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    return methods, notes


def _print_summary(summary: Mapping[str, Any]) -> None:
    print(f"wrote {summary['images']} images to {summary['out']} (alignment: "
          + ", ".join(f"{k} {v}" for k, v in summary["alignment"].items()) + ")")
    for name, c in summary["protocols"].items():
        parts = ", ".join(f"{k} {v}" for k, v in c.items() if k != "identities")
        ids = ", ".join(f"{k} {v}" for k, v in c["identities"].items())
        mark = " (default)" if name == summary["default"] else ""
        print(f"  protocols/{name}.csv{mark}: {parts}; identities: {ids}")
    for note in summary["notes"]:
        print(f"  note: {note}")
