"""The FAD search space, detector-free (paper §3.1–3.2): transformations, RepShare mixed ops,
cells and groups, genotypes (JSON), derivation, search-space variants and counting.

Depends only on torch, numpy and fvcore.  Importing it registers the mixed ops in
``MIXED_OP_REGISTRY``.
"""
from .cell import CellGroup, DerivedCell, DerivedEdge, SearchCell, SearchEdge
from .counting import (
    format_summary,
    num_derived_architectures,
    num_edges,
    num_representations,
    num_unique_paths,
    summarize_space,
    transformation_params,
)
from .derive import derive_cell, derive_genotype, derive_released_cell
from .genotype import (
    CELL_KINDS,
    FORMAT,
    CellKind,
    CellGenotype,
    EdgeChoice,
    Genotype,
    GenotypeError,
    cell_edges,
    check_cell_genotype,
    get_cell_kind,
    genotype_from_dict,
    genotype_to_dict,
    genotype_to_json,
    load_genotype,
    save_genotype,
)
from .mixed_op import (  # registration: RepShareMixedOp, UnsharedMixedOp
    MIXED_OP_REGISTRY,
    RepShareMixedOp,
    UnsharedMixedOp,
    build_mixed_op,
)
from .params import architecture_parameters, named_architecture_parameters, weight_parameters
from .random_genotype import sample_random_genotype, sample_sized_random_genotypes
from .spaces import SEARCH_SPACES, SearchSpace, get_search_space
from .transformations import (
    NONE,
    TRANSFORMATIONS,
    ConvNormAct,
    Transformation,
    TransformationSpec,
    build_decoupling,
    build_stem,
    build_transformation,
    conv_norm_act,
    copy_module_weights,
    get_norm,
    stream_layer,
)

__all__ = [
    "CellGroup", "DerivedCell", "DerivedEdge", "SearchCell", "SearchEdge",
    "format_summary", "num_derived_architectures", "num_edges", "num_representations",
    "num_unique_paths", "summarize_space", "transformation_params",
    "derive_cell", "derive_genotype", "derive_released_cell",
    "CELL_KINDS", "CellKind", "get_cell_kind",
    "FORMAT", "CellGenotype", "EdgeChoice", "Genotype", "GenotypeError", "cell_edges",
    "check_cell_genotype", "genotype_from_dict", "genotype_to_dict", "genotype_to_json",
    "load_genotype", "save_genotype",
    "MIXED_OP_REGISTRY", "RepShareMixedOp", "UnsharedMixedOp", "build_mixed_op",
    "architecture_parameters", "named_architecture_parameters", "weight_parameters",
    "sample_random_genotype",
    "sample_sized_random_genotypes",
    "SEARCH_SPACES", "SearchSpace", "get_search_space",
    "NONE", "TRANSFORMATIONS", "ConvNormAct", "Transformation", "TransformationSpec",
    "build_decoupling", "build_stem", "build_transformation", "conv_norm_act",
    "copy_module_weights", "get_norm", "stream_layer",
]
