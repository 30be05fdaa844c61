"""EdgeFace: efficient face recognition on timm's EdgeNeXt (George, Otroshi Shahreza & Marcel, 2024).

EdgeFace is an EdgeNeXt CNN-Transformer hybrid whose ImageNet classifier is replaced by a 512-d
embedding layer (``reset_classifier(512)``).  Two variants additionally replace every
``nn.Linear`` by a low-rank pair (:class:`LoRaLin`) to cut parameters further.  The official
checkpoints (Idiap, https://github.com/otroshi/edgeface) wrap the timm model as ``self.model``, so
their keys start with ``model.``; :class:`EdgeFace` keeps that wrapper so the files load as they are.

Layout of this file follows timm's model-family files: the low-rank layer, the wrapper, the
registry of named variants (names are public API), then checkpoint loading.

Input convention (one place, here): an aligned RGB face (112x112 for the real weights), converted
with ``ToTensor`` (uint8 -> [0, 1]) then normalised with mean 0.5 and std 0.5; outputs are compared
with cosine similarity.

Taught in: ``notebooks/01_baseline_rgb_model.ipynb``.
"""
from __future__ import annotations

import difflib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from ..config import assets_dir

EMBEDDING_DIM = 512
INPUT_SIZE = 112
INPUT_MEAN = (0.5, 0.5, 0.5)
INPUT_STD = (0.5, 0.5, 0.5)
HUB_REPO = "otroshi/edgeface"
WEIGHTS_HOME = "https://github.com/otroshi/edgeface"


# --------------------------------------------------------------------------------------------
# Input convention
# --------------------------------------------------------------------------------------------
def normalize(x: torch.Tensor) -> torch.Tensor:
    """Map a ``ToTensor``-style batch (float in [0, 1], shape (B, 3, H, W)) to EdgeFace's input."""
    mean = torch.tensor(INPUT_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(INPUT_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Turn uint8 images (B, H, W, 3) or (H, W, 3) into normalised float input (B, 3, H, W).

    Grayscale images (B, H, W) or (B, H, W, 1) are repeated to three channels, as EdgeFace
    expects RGB.
    """
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8:
        raise TypeError(f"images_to_tensor expects uint8 images, got {x.dtype}; convert with .astype(np.uint8).")
    if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] not in (1, 3)):
        x = x.unsqueeze(0) if x.ndim == 2 else x
        x = x.unsqueeze(-1)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.shape[-1] == 1:
        x = x.expand(*x.shape[:-1], 3)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images of shape (B, H, W, 3), got {tuple(x.shape)}")
    return normalize(x.permute(0, 3, 1, 2).float().div_(255.0))


# --------------------------------------------------------------------------------------------
# Low-rank linear layer and the wrapper
# --------------------------------------------------------------------------------------------
class LoRaLin(nn.Module):
    """A Linear layer factorised as ``linear2(linear1(x))`` with a rank-``rank`` bottleneck.

    ``linear1``: in -> rank, no bias; ``linear2``: rank -> out, with the original bias.  The names
    match the official EdgeFace checkpoints.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.linear1 = nn.Linear(in_features, rank, bias=False)
        self.linear2 = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.linear1(x))


def low_rank(in_features: int, out_features: int, gamma: float) -> int:
    """The official rank rule: ``max(2, int(min(in, out) * gamma))``."""
    return max(2, int(min(in_features, out_features) * gamma))


def replace_linear_with_low_rank(module: nn.Module, gamma: float) -> nn.Module:
    """Replace, in place, every ``nn.Linear`` whose own attribute name lacks ``head`` by a LoRaLin.

    This is EdgeFace's rule: it tests the child's name (``fc``), not its path, so the 512-d
    ``head.fc`` is replaced too.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and "head" not in name:
            rank = low_rank(child.in_features, child.out_features, gamma)
            setattr(module, name, LoRaLin(child.in_features, child.out_features, rank, child.bias is not None))
        else:
            replace_linear_with_low_rank(child, gamma)
    return module


class EdgeFace(nn.Module):
    """An EdgeFace network: ``self.model`` is the timm EdgeNeXt with a 512-d head.

    ``forward`` takes normalised images (see :func:`images_to_tensor`) of 32 px or more on a side
    (the stem divides the size by 4 and three downsampling layers halve it, rounding down: 112 px
    gives maps of 28, 14, 7 and 3 px) and returns unnormalised 512-d embeddings.
    """

    def __init__(self, variant: str, model: nn.Module):
        super().__init__()
        self.variant = variant
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @property
    def stem(self) -> nn.Module:
        return self.model.stem

    @property
    def stages(self) -> nn.Sequential:
        return self.model.stages

    @property
    def head(self) -> nn.Module:
        return self.model.head


# --------------------------------------------------------------------------------------------
# Depthwise convolutions on small maps, computed as a matrix product in training
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _window_index(height: int, width: int, kh: int, kw: int, ph: int, pw: int,
                  device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """For output pixel ``p`` and input pixel ``q`` of an ``height x width`` map: which kernel tap
    joins them (``index[p, q]`` into the flattened ``kh x kw`` kernel) and whether one does."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    dy = ys[None, :] - ys[:, None] + ph
    dx = xs[None, :] - xs[:, None] + pw
    valid = (dy >= 0) & (dy < kh) & (dx >= 0) & (dx < kw)
    index = dy.clamp(0, kh - 1) * kw + dx.clamp(0, kw - 1)
    return index.to(device), valid.to(device)


def depthwise_as_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        padding: tuple[int, int]) -> torch.Tensor:
    """A stride-1, zero-padded depthwise convolution as one (HW x HW) matrix product per channel.

    Equal to ``F.conv2d(x, weight, bias, padding=padding, groups=C)`` up to float rounding (about
    1e-6): each channel's kernel is spread into the matrix that maps the flattened input map to
    the flattened output map.  It costs ``(HW)^2`` multiply-adds per channel against the
    convolution's ``HW * k^2``, so it pays only when the map is no larger than the kernel window,
    which is where PyTorch's CPU kernels are slowest (the backward pass of a 7x7 convolution on
    EdgeFace-XXS's 4x4 maps at 64 px took 9 ms, the matrix form 2 ms; ``benchmarks/bench_speed.py``).
    """
    batch, channels, height, width = x.shape
    kh, kw = weight.shape[-2:]
    index, valid = _window_index(height, width, kh, kw, padding[0], padding[1], str(x.device))
    matrix = weight.reshape(channels, kh * kw)[:, index] * valid  # (C, HW, HW)
    out = torch.einsum("cpq,bcq->bcp", matrix, x.reshape(batch, channels, height * width))
    out = out.reshape(batch, channels, height, width)
    return out if bias is None else out + bias.view(1, channels, 1, 1)


class SmallMapDepthwiseConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (depthwise, stride 1, zero "same" padding) that trains faster on small maps.

    Same parameters, state-dict keys and results (up to float rounding) as the convolution it
    replaces.  In training mode, when its weight learns and the map has no more pixels than the
    kernel window (EdgeNeXt's 7x7 and 9x9 kernels on the last stages' 4x4 and 2x2 maps at 64 px, 7x7
    and 3x3 at 112 px), the forward pass is :func:`depthwise_as_matmul`, whose backward pass is
    several times faster on a CPU; otherwise it is the plain convolution: always in eval mode
    (evaluation, export, deployment), and for a frozen weight, whose backward pass needs only the
    input's gradient, which the convolution computes fast (``benchmarks/bench_speed.py``: the
    method's step, whose late convolutions are frozen, was 0.93x as fast in the matrix form).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        if (self.training and self.weight.requires_grad and x.dim() == 4
                and x.shape[-2] * x.shape[-1] <= kh * kw):
            return depthwise_as_matmul(x, self.weight, self.bias, self.padding)  # type: ignore[arg-type]
        return super().forward(x)


def _is_same_depthwise(conv: nn.Conv2d) -> bool:
    kh, kw = conv.kernel_size
    return (conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1
            and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
            and kh % 2 == 1 and kw % 2 == 1 and conv.padding == ((kh - 1) // 2, (kw - 1) // 2))


def use_small_map_depthwise(model: nn.Module, enabled: bool = True) -> int:
    """Switch every stride-1 "same" depthwise convolution of ``model`` to (or back from)
    :class:`SmallMapDepthwiseConv2d`, in place; returns how many were switched.

    Only the module's class changes (its parameters and buffers stay the same objects), so a
    checkpoint loads into either form.  :func:`create_edgeface` switches them on; pass
    ``enabled=False`` to time the plain convolutions (``benchmarks/bench_speed.py``).
    """
    switched = 0
    for module in model.modules():
        if enabled and type(module) is nn.Conv2d and _is_same_depthwise(module):
            module.__class__ = SmallMapDepthwiseConv2d
            switched += 1
        elif not enabled and type(module) is SmallMapDepthwiseConv2d:
            module.__class__ = nn.Conv2d
            switched += 1
    return switched


# --------------------------------------------------------------------------------------------
# Registry of named variants
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EdgeFaceVariant:
    """What defines a variant: the timm architecture, the low-rank ratio and the published size."""

    name: str
    arch: str
    gamma: float | None
    params: int  # parameter count of this implementation (checked by tests)
    published: str  # size as the EdgeFace paper reports it
    description: str


VARIANTS: dict[str, EdgeFaceVariant] = {}


def register_variant(variant: EdgeFaceVariant) -> EdgeFaceVariant:
    VARIANTS[variant.name] = variant
    return variant


register_variant(EdgeFaceVariant("edgeface_xxs", "edgenext_xx_small", None, 1_244_744, "1.24 M",
                                 "EdgeFace-XXS: the smallest variant; the tutorial's default backbone."))
register_variant(EdgeFaceVariant("edgeface_xs", "edgenext_x_small", None, 2_242_620, "2.24 M",
                                 "EdgeFace-XS at full rank (the backbone of the official edgeface_xs_q file)."))
register_variant(EdgeFaceVariant("edgeface_xs_gamma_06", "edgenext_x_small", 0.6, 1_770_492, "1.77 M",
                                 "EdgeFace-XS with low-rank Linear layers, gamma = 0.6."))
register_variant(EdgeFaceVariant("edgeface_s_gamma_05", "edgenext_small", 0.5, 3_652_520, "3.65 M",
                                 "EdgeFace-S with low-rank Linear layers, gamma = 0.5."))
register_variant(EdgeFaceVariant("edgeface_base", "edgenext_base", None, 18_225_812, "18.2 M",
                                 "EdgeFace-Base: the largest variant."))


def list_variants() -> list[str]:
    """Names of the registered EdgeFace variants."""
    return sorted(VARIANTS)


def get_variant(name: str) -> EdgeFaceVariant:
    """Look up a variant, with a suggestion when the name is misspelt."""
    if not isinstance(name, str):
        raise TypeError(f"variant={name!r}: give a variant name as a str, one of {', '.join(list_variants())}.")
    if name not in VARIANTS:
        close = difflib.get_close_matches(name, VARIANTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"Unknown EdgeFace variant {name!r}.{hint} Known variants: {', '.join(list_variants())}.")
    return VARIANTS[name]


def create_edgeface(variant: str = "edgeface_xxs", seed: int | None = 0) -> EdgeFace:
    """Build an EdgeFace variant with a seeded random initialisation (no weights are downloaded).

    Its stride-1 depthwise convolutions are :class:`SmallMapDepthwiseConv2d` (faster training on
    small maps, the same weights and results); :func:`use_small_map_depthwise` switches them back.
    """
    import timm

    spec = get_variant(variant)
    state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        net = timm.create_model(spec.arch, pretrained=False)
        net.reset_classifier(EMBEDDING_DIM)
        if spec.gamma is not None:
            replace_linear_with_low_rank(net, spec.gamma)
        use_small_map_depthwise(net)
    finally:
        if seed is not None:
            torch.random.set_rng_state(state)
    return EdgeFace(variant, net)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the requested variant."""


def _dequantize_state_dict(state: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Turn a dynamically int8-quantized EdgeFace state dict into a float one.

    Each quantized ``nn.Linear`` is stored as ``<m>._packed_params._packed_params = (qweight, bias)``
    plus ``<m>.scale``, ``<m>.zero_point`` and ``<m>._packed_params.dtype``; the weight is
    dequantized exactly (``qweight.dequantize()``) and the bias kept.
    """
    out: dict[str, torch.Tensor] = {}
    packed_suffix = "._packed_params._packed_params"
    packed = {k[: -len(packed_suffix)] for k in state if k.endswith(packed_suffix)}
    for key, value in state.items():
        if key.endswith(packed_suffix):
            prefix = key[: -len(packed_suffix)]
            weight, bias = value  # type: ignore[misc]
            out[f"{prefix}.weight"] = weight.dequantize() if weight.is_quantized else weight
            if bias is not None:
                out[f"{prefix}.bias"] = bias.detach().clone()
            continue
        prefix = key.rsplit(".", 1)[0]
        if prefix in packed and key.rsplit(".", 1)[1] in ("scale", "zero_point"):
            continue
        if key.endswith("._packed_params.dtype"):
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"unexpected non-tensor entry {key!r} ({type(value).__name__})")
        out[key] = value
    return out


FILE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG image"), (b"\x89PNG", "PNG image"), (b"GIF8", "GIF image"), (b"BM", "BMP image"),
    (b"RIFF", "RIFF (WebP image or WAV sound)"), (b"%PDF", "PDF document"), (b"\x1f\x8b", "gzip archive"),
    (b"\x7fELF", "program (ELF)"), (b"<", "HTML/XML text (a web page saved instead of the file?)"),
    (b"{", "JSON text"), (b"\x08", "protobuf (an ONNX model?)"),
)
"""Starts of files that are surely not a PyTorch checkpoint, and what they are (named in the error)."""


def _not_a_checkpoint(path: Path) -> str | None:
    """What ``path`` holds when its first bytes show it is no PyTorch checkpoint (a zip or a pickle), else None."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        return "nothing (an empty file)"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch.save's zip archive / legacy pickle
        return None
    for magic, kind in FILE_SIGNATURES:
        if head.startswith(magic):
            return f"{kind} data"
    return f"data that is neither a zip archive nor a pickle (it starts with {head!r})"


def _load_error(path: Path, exc: BaseException) -> CheckpointError:
    """Our message for a file ``torch.load(..., weights_only=True)`` refused: never torch's advice to unpickle code."""
    import pickle
    import re

    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        named = re.search(r"GLOBAL ([\w.]+)", text)
        what = f" (it names {named.group(1)})" if named else ""
        return CheckpointError(
            f"{str(path)!r} holds Python objects other than tensors{what}. This project reads only plain tensors "
            "from a checkpoint, never objects that could run code, so the file is refused. Save the weights "
            "with torch.save(model.state_dict(), path) (nothing but tensors), or use the official EdgeFace file.")
    return CheckpointError(
        f"Could not read {str(path)!r} as a PyTorch state dict ({type(exc).__name__}): the file is truncated or "
        "damaged, or is not a checkpoint. Download or copy it again.")


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an EdgeFace checkpoint file (float or ``_q``) into a float state dict with ``model.`` keys.

    Also accepted: a ``{"state_dict": ...}`` wrapper, a pickled module, and keys prefixed by
    ``module.`` (saved from ``DataParallel``) or ``_orig_mod.`` (from ``torch.compile``), which are
    stripped.  Refused with the reason: a folder (its ``.pt`` files are listed), a file that is not
    a checkpoint at all (a JPEG renamed ``.pt``: its kind is named), a file holding objects other
    than tensors (read with ``weights_only=True`` only: never code), a file that is not a state
    dict, and weights holding NaN or infinite values (the first bad key is named).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint={path!r}: give the path of a checkpoint file (a str or pathlib.Path).")
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.pt"))
        inside = (f"it holds {', '.join(found[:8])}{' ...' if len(found) > 8 else ''}: pass one of them, e.g. "
                  f"{str(path / found[0])!r}" if found else "it holds no .pt file: pass the path of the checkpoint file")
        raise IsADirectoryError(f"EdgeFace checkpoint {str(path)!r} is a folder, not a file; {inside}.")
    if not path.is_file():
        raise FileNotFoundError(
            f"EdgeFace checkpoint {str(path)!r} does not exist. Official weights: {WEIGHTS_HOME} "
            f"(with network access: torch.hub.load({HUB_REPO!r}, 'edgeface_xxs', source='github', pretrained=True), "
            "or hfr_tutorial.models.download_official_weights)."
        )
    kind = _not_a_checkpoint(path)
    if kind is not None:
        raise CheckpointError(f"{str(path)!r} is not a PyTorch checkpoint: it holds {kind}. Give the .pt file "
                              "that torch.save wrote (an official EdgeFace file, or one saved by this project).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, pickled code ...
        raise _load_error(path, exc) from None
    if isinstance(state, nn.Module):  # a whole pickled module (torch.save(model))
        state = state.state_dict()
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict.")
    state = _dequantize_state_dict(_strip_wrapper_prefixes(state))
    if state and not any(k.startswith("model.") for k in state):
        state = {f"model.{k}": v for k, v in state.items()}  # a bare timm state dict
    _check_finite_weights(state, path)
    return state


WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.")
"""Key prefixes that wrappers add when their model is saved (DataParallel / DDP, torch.compile)."""


def _strip_wrapper_prefixes(state: Mapping[str, object]) -> dict[str, object]:
    """``state`` without a wrapper prefix that every key carries (repeatedly: ``module._orig_mod.``)."""
    out = dict(state)
    changed = True
    while out and changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in out):
                out = {k[len(prefix):]: v for k, v in out.items()}
                changed = True
    return out


def _check_finite_weights(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse weights with NaN or infinite values: they would give NaN embeddings without another error."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(
                f"Checkpoint {str(path)!r}: {key} holds {bad} NaN or infinite value(s) of {value.numel()}, so the "
                "model would give NaN embeddings. The file is damaged or was saved from a diverged training run: "
                "download it again or use an earlier checkpoint.")


def _guess_variant(state: Mapping[str, torch.Tensor]) -> str | None:
    """The registered variant whose parameter names and shapes best match ``state``."""
    best, best_score = None, -1.0
    for name in list_variants():
        reference = {k: tuple(v.shape) for k, v in create_edgeface(name, seed=None).state_dict().items()}
        hits = sum(1 for k, v in state.items() if reference.get(k) == tuple(v.shape))
        score = hits / max(len(reference), len(state))
        if score > best_score:
            best, best_score = name, score
    return best if best_score > 0.5 else None


def load_edgeface(variant: str = "edgeface_xxs", checkpoint: str | os.PathLike | None = None,
                  seed: int | None = 0, strict: bool = True) -> EdgeFace:
    """Build an EdgeFace variant and load an official checkpoint into it.

    Args:
        variant: a registered name (:func:`list_variants`).
        checkpoint: a file as users have it: an official float state dict (keys ``model.*``), a
            dynamically int8-quantized ``_q`` file (its Linear weights are dequantized), or a bare
            timm state dict.  ``None`` gives a seeded random initialisation.
        seed: seed of the random initialisation (before loading).
        strict: refuse a file whose keys or shapes do not match the variant exactly.

    Raises:
        CheckpointError: naming the file, the missing and unexpected keys, and the variant the
            file most likely belongs to.
        TypeError: ``variant`` is not a str, or ``checkpoint`` is neither None nor a path.
    """
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"load_edgeface(checkpoint={checkpoint!r}): give the path of a checkpoint file (a str or "
                        "pathlib.Path), or None for a random initialisation. (The second argument is the checkpoint; "
                        "pass a seed as seed=...)")
    model = create_edgeface(variant, seed=seed)
    if checkpoint is None:
        return model
    state = read_checkpoint(checkpoint)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if strict and (missing or unexpected or wrong_shape):
        guess = _guess_variant(state)
        hint = (f" It most likely belongs to variant {guess!r}: load_edgeface({guess!r}, {str(checkpoint)!r})."
                if guess and guess != variant else " It matches no registered variant.")

        def show(keys: Iterable[str]) -> str:
            keys = list(keys)
            return ", ".join(keys[:5]) + (f" ... ({len(keys)} in all)" if len(keys) > 5 else "") or "none"

        raise CheckpointError(
            f"Checkpoint {str(checkpoint)!r} does not fit variant {variant!r}: "
            f"missing keys: {show(missing)}; unexpected keys: {show(unexpected)}; "
            f"wrong shapes: {show(wrong_shape)}.{hint}"
        )
    model.load_state_dict(state, strict=strict)
    return model


def checkpoint_names(variant: str) -> tuple[str, ...]:
    """File names a checkpoint of ``variant`` goes by, best first.

    ``<variant>_float.pt`` (a dequantized float file, as in the test assets), ``<variant>.pt`` (the
    official float files: ``edgeface_xxs.pt``, ``edgeface_base.pt`` ...) and ``<variant>_q.pt``
    (the official int8 files, whose Linear weights :func:`read_checkpoint` dequantizes).
    """
    return (f"{variant}_float.pt", f"{variant}.pt", f"{variant}_q.pt")


def checkpoint_search_path(search: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """The folders :func:`find_checkpoint` looks in, in order.

    The given folders, then ``$HFR_ASSETS/weights``, then ``torch.hub.get_dir()/checkpoints`` (where
    the official hub entry points save their downloads, through
    ``torch.hub.load_state_dict_from_url``), then ``torch.hub.get_dir()/otroshi_edgeface_main/checkpoints``
    (a clone of the official repository made by ``torch.hub.load``).
    """
    folders: list[Path] = [Path(p) for p in (search or [])]
    assets = assets_dir()
    if assets is not None:
        folders.append(assets / "weights")
    hub = Path(torch.hub.get_dir())
    folders += [hub / "checkpoints", hub / "otroshi_edgeface_main" / "checkpoints"]
    return folders


def find_checkpoint(variant: str, search: Iterable[str | os.PathLike] | None = None) -> Path | None:
    """Look for an official checkpoint of ``variant`` on disk (never on the network); None if absent.

    Folders, in order: :func:`checkpoint_search_path`; in each, the names of
    :func:`checkpoint_names` (float before int8).
    """
    get_variant(variant)
    for folder in checkpoint_search_path(search):
        for name in checkpoint_names(variant):
            if (folder / name).is_file():
                return folder / name
    return None


def weights_hint(variant: str = "edgeface_xxs") -> str:
    """How to get the official weights of ``variant`` onto this disk (printed when they are missing)."""
    folders = ", ".join(str(f) for f in checkpoint_search_path())
    return (f"Looked for {' / '.join(checkpoint_names(variant))} in: {folders}. To get them: set HFR_ASSETS to a "
            f"folder holding weights/{variant}_float.pt, or with network access run once "
            f"python -c \"import torch; torch.hub.load('{HUB_REPO}', '{variant}', source='github', pretrained=True)\" "
            f"(it saves {variant}.pt in {Path(torch.hub.get_dir()) / 'checkpoints'}), or download it from {WEIGHTS_HOME}.")


def download_official_weights(variant: str) -> Path:
    """Fetch the official weights of ``variant`` with torch.hub (needs network; never used by tests).

    Returns the path of the checkpoint in the torch.hub cache, which :func:`find_checkpoint` finds
    afterwards without network.
    """
    get_variant(variant)
    torch.hub.load(HUB_REPO, variant, source="github", pretrained=True, trust_repo=True)
    path = find_checkpoint(variant)
    if path is None:
        raise FileNotFoundError(f"torch.hub finished but no checkpoint for {variant!r} was found in {torch.hub.get_dir()}.")
    return path
