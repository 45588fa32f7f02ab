"""The FAD bilevel architecture search on Detectron2's training machinery (paper §3.2)."""
from .alpha_hook import AlphaUpdateHook, build_alpha_optimizer
from .hooks import ALPHA_GENOTYPE, FINAL_GENOTYPE, LAST_GENOTYPE, DeriveArchitectureHook
from .split import SearchSplit, load_or_make_split, make_split
from .trainer import SearchTrainer, search_end_state, search_groups

__all__ = [
    "ALPHA_GENOTYPE", "AlphaUpdateHook", "build_alpha_optimizer", "DeriveArchitectureHook", "FINAL_GENOTYPE", "LAST_GENOTYPE",
    "SearchSplit", "load_or_make_split", "make_split", "SearchTrainer", "search_end_state", "search_groups",
]
