"""fad_d2: FAD ("Fast And Diverse") architecture search with RepShare for Detectron2 heads.

``import fad_d2`` registers every meta-architecture, head, backbone and dataset of the project in
Detectron2's registries; ``fad_d2.add_fad_config(cfg)`` declares every new config key.
"""
from . import data, modeling  # noqa: F401  (registration only)
from .config import add_fad_config

__all__ = ["add_fad_config"]
