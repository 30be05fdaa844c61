"""EdgeFace variants (a small registry on timm's EdgeNeXt), their architecture read from the model, and the margin
heads used to train them."""
from .architecture import ArchitecturePart, architecture_row_titles, edgeface_architecture, is_layernorm
from .edgeface import (
    EMBEDDING_DIM,
    INPUT_SIZE,
    VARIANTS,
    CheckpointError,
    checkpoint_names,
    checkpoint_search_path,
    EdgeFace,
    EdgeFaceVariant,
    LoRaLin,
    SmallMapDepthwiseConv2d,
    count_parameters,
    create_edgeface,
    download_official_weights,
    find_checkpoint,
    get_variant,
    images_to_tensor,
    list_variants,
    load_edgeface,
    normalize,
    read_checkpoint,
    use_small_map_depthwise,
    weights_hint,
)

__all__ = [
    "EMBEDDING_DIM", "INPUT_SIZE", "VARIANTS", "CheckpointError", "EdgeFace", "EdgeFaceVariant", "LoRaLin",
    "count_parameters", "create_edgeface", "download_official_weights", "find_checkpoint", "get_variant",
    "images_to_tensor", "list_variants", "load_edgeface", "normalize", "read_checkpoint",
    "checkpoint_names", "checkpoint_search_path", "weights_hint", "SmallMapDepthwiseConv2d",
    "use_small_map_depthwise", "ArchitecturePart", "architecture_row_titles", "edgeface_architecture",
    "is_layernorm",
]
