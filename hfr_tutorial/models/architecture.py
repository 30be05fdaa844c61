"""EdgeFace's architecture read from the model itself: its stages, blocks and the parts of each block.

:func:`edgeface_architecture` walks a model's own modules (stem, stages, blocks, head) into
:class:`ArchitecturePart` records, each with the full names of the parameters it owns, so a drawing
(:func:`hfr_tutorial.plots.plot_edgeface_architecture`) or a table stays true of the model it is
given, and a tuning policy's parameters (:func:`hfr_tutorial.tuning.policy_parameter_names`) can be
laid over it part by part.  :func:`architecture_row_titles` names each row: its stage, channels and
resolution.  :func:`is_layernorm` is the one test of "is this a LayerNorm" that the policies use too.

Taught in ``notebooks/01_baseline_rgb_model.ipynb`` and ``notebooks/02_layer_freezing.ipynb``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn


def is_layernorm(module: nn.Module) -> bool:
    """True for ``nn.LayerNorm`` and its subclasses (timm's LayerNorm and LayerNorm2d)."""
    return isinstance(module, nn.LayerNorm)


@dataclass(frozen=True)
class ArchitecturePart:
    """One box of the architecture diagram: a module of the network and the parameters it owns.

    ``row`` is the stage (the stem sits in stage 0's row, the head in the last row), ``column`` the
    position in the row (0: stem or downsampling layer, 1...: the blocks). ``block`` names the box
    the part is drawn in (``"stem"``, ``"downsample"``, ``"ConvBlock"``, ``"SDTA"``, ``"head"``).
    ``module`` is the module's name in ``model.named_modules()``; ``parameters`` are full names as
    ``model.named_parameters()`` gives them, so they compare directly with
    :func:`hfr_tutorial.tuning.policy_parameter_names`.
    """

    row: int
    column: int
    block: str
    module: str
    label: str
    is_layernorm: bool
    parameters: tuple[str, ...]
    count: int


_BLOCK_NAMES = {"ConvBlock": "ConvBlock", "SplitTransposeBlock": "SDTA"}
_OWN_PARAMETER_PART = {"gamma": "mlp", "gamma_xca": "xca"}  # a block's layer scales join what they scale


def _backbone(model: Any) -> tuple[Any, str]:
    """The timm EdgeNeXt inside ``model`` and the prefix of its parameter names."""
    if hasattr(model, "model") and hasattr(model.model, "stem"):
        backbone, prefix = model.model, "model."
    else:
        backbone, prefix = model, ""
    if not all(hasattr(backbone, name) for name in ("stem", "stages", "head")):
        raise ValueError("edgeface_architecture needs an EdgeFace (or a timm EdgeNeXt): a module with "
                         f"stem, stages and head; got a {type(model).__name__}.")
    return backbone, prefix


def _kernel(conv: nn.Conv2d) -> str:
    k = conv.kernel_size
    return f"{k[0]}×{k[1]}" if isinstance(k, tuple) else f"{k}×{k}"


def _part_label(name: str, module: nn.Module) -> str:
    """A short label of a block's part (or of a stem/downsample/head layer) from its module."""
    if is_layernorm(module):
        return "LayerNorm2d" if type(module).__name__ == "LayerNorm2d" else "LayerNorm"
    if isinstance(module, nn.Conv2d):
        stride = module.stride[0] if isinstance(module.stride, tuple) else module.stride
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return f"{'dw ' if depthwise else ''}conv {_kernel(module)}" + (f" /{stride}" if stride > 1 else "")
    if name == "convs":
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        return f"{len(convs)} dw conv{'s' if len(convs) != 1 else ''} {_kernel(convs[0])}" if convs else "convs"
    if name == "pos_embd":
        return "positional enc."
    if name == "xca":
        return "XCA attention"
    if name == "mlp":
        return "pointwise MLP"
    if name == "fc":
        out = getattr(module, "out_features", None)
        if out is None:
            weights = [p for p in module.parameters() if p.ndim == 2]
            out = weights[-1].shape[0] if weights else "?"
        return f"fc → {out}-d"
    return name


def edgeface_architecture(model: nn.Module) -> list[ArchitecturePart]:
    """The boxes of the architecture diagram, walked from the model's own modules.

    The stem's and the downsampling layers' sub-layers, each block's parts (``conv_dw``, ``norm``,
    ``mlp``; in split-transpose (SDTA) blocks ``convs``, ``pos_embd``, ``norm_xca``, ``xca``,
    ``norm``, ``mlp``) and the head's layers become one part each; a block's layer scales
    (``gamma``, ``gamma_xca``) join the part whose output they scale. Every parameter of the model
    is in exactly one part, so the parts refine :func:`hfr_tutorial.tuning.parameter_groups` and
    every named tuning policy trains a union of whole parts.
    """
    backbone, prefix = _backbone(model)
    numel = {name: p.numel() for name, p in model.named_parameters()}
    parts: list[ArchitecturePart] = []

    def add(row: int, column: int, block: str, module_name: str, label: str, module: nn.Module,
            extra: Sequence[str] = ()) -> None:
        names = tuple(f"{prefix}{module_name}.{n}" for n, _ in module.named_parameters()) + tuple(extra)
        if names:
            parts.append(ArchitecturePart(row, column, block, f"{prefix}{module_name}", label, is_layernorm(module),
                                          names, sum(numel[n] for n in names)))

    def add_layers(row: int, column: int, block: str, module_name: str, module: nn.Module) -> None:
        children = list(module.named_children())
        if not children:
            add(row, column, block, module_name, _part_label(module_name.rsplit(".", 1)[-1], module), module)
        for child_name, child in children:
            add(row, column, block, f"{module_name}.{child_name}", _part_label(child_name, child), child)

    stage0_downsample = any(True for _ in backbone.stages[0].downsample.parameters()) if len(backbone.stages) else False
    offset = 1 if stage0_downsample else 0  # the stem gets its own row only when stage 0 has a downsampling layer
    add_layers(0, 0, "stem", "stem", backbone.stem)
    for i, stage in enumerate(backbone.stages):
        row = i + offset
        add_layers(row, 0, "downsample", f"stages.{i}.downsample", stage.downsample)
        for j, blk in enumerate(stage.blocks):
            block = _BLOCK_NAMES.get(type(blk).__name__, type(blk).__name__)
            base = f"stages.{i}.blocks.{j}"
            own = {n: f"{prefix}{base}.{n}" for n, _ in blk.named_parameters(recurse=False)}
            children = dict(blk.named_children())
            for child_name, child in children.items():
                extra = [full for n, full in own.items() if _OWN_PARAMETER_PART.get(n) == child_name]
                add(row, j + 1, block, f"{base}.{child_name}", _part_label(child_name, child), child, extra)
            placed = {n for part in parts for n in part.parameters}
            left = [full for full in own.values() if full not in placed]
            if left:
                parts.append(ArchitecturePart(row, j + 1, block, f"{prefix}{base}", "own parameters", False,
                                              tuple(left), sum(numel[n] for n in left)))
    head_row = len(backbone.stages) + offset
    add_layers(head_row, 0, "head", "head", backbone.head)
    placed = {n for part in parts for n in part.parameters}
    rest = tuple(n for n in numel if n not in placed)
    if rest:  # anything outside stem, stages and head (e.g. a norm before the head)
        parts.append(ArchitecturePart(head_row, 1, "other", "other", "other parameters", False, rest,
                                      sum(numel[n] for n in rest)))
    return parts


def architecture_row_titles(model: nn.Module, parts: Sequence[ArchitecturePart]) -> dict[int, str]:
    """``{row: title}``: 'stage i' with its channels and resolution (1/stride of the input), 'stem', 'head'."""
    backbone, _ = _backbone(model)
    offset = max(p.row for p in parts) - len(backbone.stages)  # 1 when the stem has a row of its own
    titles, stride = {}, 1
    for conv in (m for m in backbone.stem.modules() if isinstance(m, nn.Conv2d)):
        stride *= conv.stride[0]
    if offset:
        titles[0] = f"stem\n1/{stride} of the input size"
    for i, stage in enumerate(backbone.stages):
        for conv in (m for m in stage.downsample.modules() if isinstance(m, nn.Conv2d)):
            stride *= conv.stride[0]
        norms = [m for m in stage.blocks.modules() if is_layernorm(m)]
        channels = f"{norms[0].normalized_shape[0]} ch, " if norms else ""
        titles[i + offset] = f"stage {i}\n{channels}1/{stride} of the input size"
    titles[len(backbone.stages) + offset] = "head"
    return titles
