"""The FAD heads of this project, in one table, and how a config becomes their cell groups.

Everything that depends on *which* FAD heads exist reads :data:`FAD_HEADS`: the config key that
selects a head, the stock head it replaces, the config node of its searchable module
(``MODEL.FAD`` or ``MODEL.FAD_MASK``), the group names of its genotypes and the
meta-architectures that read the key.  :func:`head_genotype` is the one way from a config to a
checked genotype, :func:`build_cell_groups` the one way from those settings to ``CellGroup``\\ s
(paper §3.1: a group = M cells sharing one architecture).
"""
import functools
import json
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from detectron2.modeling.roi_heads.mask_head import ROI_MASK_HEAD_REGISTRY
from detectron2.utils.registry import Registry

from ..errors import ConfigError
from ..space import CellGroup, Genotype, GenotypeError, SearchSpace, genotype_to_dict, get_search_space, load_genotype
from .fcos import FCOS_HEAD_REGISTRY
from .retinanet import RETINANET_HEAD_REGISTRY


@dataclass(frozen=True)
class FADHeadSpec:
    """One FAD head: ``name`` (its registered class) is selected by the config key ``head_key``
    in place of ``stock_head``; ``node`` configures its cells; genotypes name ``groups``."""

    name: str
    head_key: str
    registry: Registry
    stock_head: str
    node: str
    groups: Tuple[str, ...]
    meta_architectures: Tuple[str, ...]
    needs_mask_on: bool = False

    @property
    def genotype_key(self) -> str:
        return f"{self.node}.GENOTYPE"

    def reads_head_key(self, cfg) -> bool:
        """Whether the configured detector builds its head from ``head_key``."""
        return (cfg.MODEL.META_ARCHITECTURE in self.meta_architectures
                and (cfg.MODEL.MASK_ON or not self.needs_mask_on))


FAD_HEADS = (
    FADHeadSpec("FADHead", "MODEL.FCOS.HEAD_NAME", FCOS_HEAD_REGISTRY, "FCOSHead", "MODEL.FAD",
                ("box", "cls"), ("FCOS",)),
    FADHeadSpec("FADRetinaNetHead", "MODEL.RETINANET.HEAD_NAME", RETINANET_HEAD_REGISTRY,
                "RetinaNetHead", "MODEL.FAD", ("box", "cls"), ("SelectableHeadRetinaNet",)),
    FADHeadSpec("FADMaskHead", "MODEL.ROI_MASK_HEAD.NAME", ROI_MASK_HEAD_REGISTRY,
                "MaskRCNNConvUpsampleHead", "MODEL.FAD_MASK", ("mask",), ("GeneralizedRCNN",),
                needs_mask_on=True),
)


def cfg_value(cfg, key: str):
    """The value of dotted config key ``key`` (e.g. ``"MODEL.FAD.GENOTYPE"``)."""
    return functools.reduce(getattr, key.split("."), cfg)


def fad_head_spec(name: str) -> FADHeadSpec:
    """The spec of FAD head class ``name`` (KeyError listing the FAD heads otherwise)."""
    for spec in FAD_HEADS:
        if spec.name == name:
            return spec
    raise KeyError(f"{name!r} is not a FAD head (FAD heads: {[s.name for s in FAD_HEADS]})")


def replaceable_head(cfg) -> FADHeadSpec:
    """The spec of the head a FAD head can replace in ``cfg``'s detector (:class:`ConfigError` if none)."""
    for spec in FAD_HEADS:
        if spec.reads_head_key(cfg):
            return spec
    archs = sorted({a for s in FAD_HEADS for a in s.meta_architectures})
    raise ConfigError(f"MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r}: no FAD-replaceable "
                     f"head (meta-architectures with one: {archs}, Mask R-CNN with MODEL.MASK_ON)")


def selected_fad_heads(cfg) -> List[FADHeadSpec]:
    """The FAD heads that ``cfg`` selects and its detector builds."""
    return [s for s in FAD_HEADS if cfg_value(cfg, s.head_key) == s.name and s.reads_head_key(cfg)]


def check_head_names(cfg):
    """Raise :class:`ConfigError` for a head name that is not registered, or that the chosen
    meta-architecture would ignore (e.g. a RetinaNet head name with ``RetinaNet``, whose head
    is always the stock one)."""
    for spec in FAD_HEADS:
        value = cfg_value(cfg, spec.head_key)
        if value not in spec.registry:
            raise ConfigError(f"{spec.head_key}: {value!r} is not registered (registered: "
                             f"{sorted(name for name, _ in spec.registry)})")
        if value != spec.stock_head and not spec.reads_head_key(cfg):
            mask_on = spec.needs_mask_on and not cfg.MODEL.MASK_ON
            raise ConfigError(
                f"{spec.head_key}: {value!r} is ignored by MODEL.META_ARCHITECTURE "
                f"{cfg.MODEL.META_ARCHITECTURE!r}{' with MODEL.MASK_ON False' if mask_on else ''}; "
                f"only {list(spec.meta_architectures)}"
                f"{' with MODEL.MASK_ON True' if spec.needs_mask_on else ''} read it"
            )


def head_genotype(cfg, spec: FADHeadSpec) -> Optional[Genotype]:
    """The genotype that ``spec.genotype_key`` names (``None`` when empty: a search supernet),
    checked against the head: its groups are ``spec.groups``, and the search space, cell kind
    and node count it states equal ``<node>.SEARCH_SPACE`` / ``<node>.CELL`` / ``<node>.NUM_NODES``.

    Raises FileNotFoundError, GenotypeError (a malformed file) or ConfigError (a mismatch), each
    naming the key and the file.
    """
    node = cfg_value(cfg, spec.node)
    path = node.GENOTYPE
    if not path:
        return None
    genotype = load_genotype(path)
    where = f"{spec.genotype_key} ({path})"
    if genotype.group_names != spec.groups:
        raise GenotypeError(where, "$.groups", f"the genotype has groups {list(genotype.group_names)} but "
                                               f"{spec.name} needs {list(spec.groups)} (searched for another head?)")
    if genotype.cell != node.CELL:
        raise GenotypeError(where, "$.cell", f"the genotype is for the {genotype.cell!r} cell but "
                                             f"{spec.node}.CELL is {node.CELL!r}; set it to {genotype.cell!r}")
    if genotype.search_space != node.SEARCH_SPACE:
        raise ConfigError(f"{where}: the genotype was searched in space {genotype.search_space!r} but "
                         f"{spec.node}.SEARCH_SPACE is {node.SEARCH_SPACE!r}; set it to "
                         f"{genotype.search_space!r}")
    num_nodes = genotype.groups[0][1].num_nodes
    if num_nodes != node.NUM_NODES:
        raise ConfigError(f"{where}: the genotype's cells have {num_nodes} nodes but "
                         f"{spec.node}.NUM_NODES is {node.NUM_NODES}; set it to {num_nodes}")
    return genotype


def configured_genotypes(cfg) -> Dict[str, dict]:
    """``{genotype key: {"file": path, "genotype": dict or None}}`` of the FAD heads ``cfg``
    builds (``None``: a search supernet): the architecture that travels with the weights."""
    ret = {}
    for spec in selected_fad_heads(cfg):
        genotype = head_genotype(cfg, spec)
        ret[spec.genotype_key] = {
            "file": cfg_value(cfg, spec.genotype_key),
            "genotype": None if genotype is None else genotype_to_dict(genotype),
        }
    return ret


# The record starts with a format tag: bare JSON is also a Python literal, and yacs turns such a
# string into a dict when it reads a config.yaml (then the saved config could not be loaded again).
GENOTYPE_RECORD_TAG = "fad-genotype-record/1 "


def genotype_record_json(cfg) -> str:
    """:func:`configured_genotypes` as the ``FAD_GENOTYPE_RECORD`` of a saved ``config.yaml``:
    ``GENOTYPE_RECORD_TAG`` + compact JSON."""
    return GENOTYPE_RECORD_TAG + json.dumps(configured_genotypes(cfg), sort_keys=True, separators=(",", ":"))


def parse_genotype_record(text: str) -> Dict[str, dict]:
    """Inverse of :func:`genotype_record_json` (``""``, the default before a config is checked,
    gives ``{}``)."""
    return json.loads(text[len(GENOTYPE_RECORD_TAG):]) if text.startswith(GENOTYPE_RECORD_TAG) else {}


def configured_space(node) -> SearchSpace:
    """The search space of a FAD config node (``MODEL.FAD`` / ``MODEL.FAD_MASK``): ``SEARCH_SPACE``
    with the released-code options ``DILATED_BIAS`` and ``UNSHARED_DECOUPLE``."""
    return get_search_space(node.SEARCH_SPACE).with_options(
        dilated_bias=node.DILATED_BIAS, unshared_decouple=node.UNSHARED_DECOUPLE)


def build_cell_groups(*, names: Sequence[str], channels: int, inner_channels: Sequence[int],
                      num_cells: Sequence[int], space: SearchSpace, repshare: bool,
                      genotype: Optional[Genotype], num_nodes: int, norm: str,
                      cell: str = "paper") -> List[CellGroup]:
    """One :class:`CellGroup` per name: c = ``channels`` between cells, c′ = ``inner_channels[i]``
    inside the transformation blocks, M = ``num_cells[i]`` cells for a derived group (a search
    group has M = 1 and owns α: Tensor[E, K]), cells of kind ``cell`` (``"paper"`` |
    ``"released"``).  ``genotype=None`` builds the supernet, else each group takes
    ``genotype.group(name)`` (and its node count)."""
    return [
        CellGroup(channels, c_inner, 1 if genotype is None else m, space=space, repshare=repshare,
                  genotype=None if genotype is None else genotype.group(name), num_nodes=num_nodes,
                  norm=norm, name=name, cell=cell)
        for name, c_inner, m in zip(names, inner_channels, num_cells)
    ]
