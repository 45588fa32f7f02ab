"""All configuration keys fad_d2 adds to Detectron2's defaults.

``add_fad_config(cfg)`` is the only place a new key is declared; nothing reads a key that is not
declared here.  Every key has its default and a short comment (paper = the FAD paper,
"Representation Sharing for Fast Object Detector Search and Beyond").
"""
from detectron2.config import CfgNode as CN

# NUM_CLASSES left at this value is set, when the config is loaded, to the number of categories of
# the training datasets (fad_d2.engine.datasets.set_num_classes); any other value must equal it.
NUM_CLASSES_FROM_DATA = -1


def _add_fcos_config(cfg):
    """``MODEL.FCOS``: one key per constructor argument of Detectron2's ``FCOS`` and its head."""
    cfg.MODEL.FCOS = CN()
    cfg.MODEL.FCOS.HEAD_NAME = "FCOSHead"  # a name in FCOS_HEAD_REGISTRY (FCOSHead = stock, FADHead)
    cfg.MODEL.FCOS.NUM_CLASSES = NUM_CLASSES_FROM_DATA  # -1: the training data's category count
    cfg.MODEL.FCOS.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
    cfg.MODEL.FCOS.NUM_CONVS = 4  # convs per tower of the stock head
    cfg.MODEL.FCOS.NORM = "GN"  # norm of the stock head's tower convs
    cfg.MODEL.FCOS.PRIOR_PROB = 0.01  # classification bias init, -log((1 - p) / p)
    # Box-regression bias init, in strides: Detectron2's FCOS passes the deltas through a ReLU, so a
    # channel whose initial outputs are all <= 0 gets no GIoU gradient and may never train (0 =
    # Detectron2's and the paper's init; the demo uses 1).
    cfg.MODEL.FCOS.BBOX_REG_BIAS_INIT = 0.0
    cfg.MODEL.FCOS.CENTER_SAMPLING_RADIUS = 1.5  # in units of the level's stride
    cfg.MODEL.FCOS.FOCAL_LOSS_ALPHA = 0.25
    cfg.MODEL.FCOS.FOCAL_LOSS_GAMMA = 2.0
    cfg.MODEL.FCOS.SCORE_THRESH_TEST = 0.2  # on sqrt(cls * centerness)
    cfg.MODEL.FCOS.TOPK_CANDIDATES_TEST = 1000  # per level, before NMS
    cfg.MODEL.FCOS.NMS_THRESH_TEST = 0.6
    cfg.MODEL.FCOS.DETECTIONS_PER_IMAGE = 100


def _add_mobilenet_v2_config(cfg):
    """``MODEL.MOBILENET_V2``: torchvision's MobileNetV2 as a backbone (paper Table 3)."""
    cfg.MODEL.MOBILENET_V2 = CN()
    cfg.MODEL.MOBILENET_V2.OUT_FEATURES = ["c3", "c4", "c5"]  # stem, c2..c5 (strides 2..32)
    cfg.MODEL.MOBILENET_V2.WIDTH_MULT = 1.0  # torchvision's width multiplier
    cfg.MODEL.MOBILENET_V2.NORM = "FrozenBN"  # FrozenBN | BN | SyncBN


def _add_fad_head_config(cfg):
    """``MODEL.FAD``: the searchable module of the one-stage heads (paper §3.1, Fig. 1)."""
    cfg.MODEL.FAD = CN()
    cfg.MODEL.FAD.SEARCH_SPACE = "full"  # full | no_decouple | subset1 | subset2 | std_only | ...
    cfg.MODEL.FAD.REPSHARE = True  # share intermediate representations (12 instead of 26)
    # The authors' released conventions (SearchSpace.with_options); defaults are the paper's:
    cfg.MODEL.FAD.DILATED_BIAS = False  # True: dilated depthwise convs with a bias (released ops)
    cfg.MODEL.FAD.UNSHARED_DECOUPLE = True  # False: no H in the REPSHARE False supernet (Table 2)
    cfg.MODEL.FAD.INNER_CHANNELS = [96, 96]  # c' of the transformation blocks, per group (box, cls)
    cfg.MODEL.FAD.NUM_CELLS = [2, 2]  # M per group for a derived head (search always uses M = 1)
    cfg.MODEL.FAD.NUM_NODES = 3  # intermediate nodes per cell
    # The cell's wiring (fad_d2/space/cell.py); the genotype file states its kind and must match.
    # "paper": one input, nodes 1-3, 1+2+3 = 6 search edges, edge 1x1 convs with GN + ReLU, a
    #   3c -> c output conv (+ GN + ReLU); group 2 computes on group 1's output + the FPN feature.
    # "released" (the authors' code, DARTS-style): two input slots 0, 1 and nodes 2-4, 2+3+4 = 9
    #   search edges; derivation keeps the top-1 non-none op per edge and the top-2 inputs per node
    #   among its 2+k candidates. Group 1's inputs are both the FPN feature, group 2's are group 1's
    #   output and the FPN feature (the shortcut); with M = 2 a cell's inputs are the two previous
    #   states. Edge = 1x1 conv (c -> c') -> transformation -> 1x1 conv (c' -> c), no GN/ReLU on
    #   the 1x1s; a 1x1 conv + GN + ReLU "preprocess" only on a cell input whose width is not c;
    #   the three nodes concatenated (3c) go to the next cell's preprocess or to a 1x1 "reduce" conv
    #   (no GN, no ReLU) before the predictors. The released ops: SEARCH_SPACE no_dil3 (10
    #   transformations, no t6) with DILATED_BIAS True.
    cfg.MODEL.FAD.CELL = "paper"
    cfg.MODEL.FAD.NORM = "GN"  # GN (GroupNorm(32), paper) | GN<k> (k groups, e.g. GN16) | BN | "" (none)
    cfg.MODEL.FAD.GENOTYPE = ""  # genotype JSON: empty = search supernet, a path = derived head
    cfg.MODEL.FAD.LAYOUT = "sequential"  # sequential (paper) | parallel (appendix 6.1 ablation)
    cfg.MODEL.FAD.BOX_FIRST = True  # box/centerness from group 1, classes from group 2 (paper)
    # CPU only: cut the head's batch into this many chunks run in parallel threads, each with its
    # share of torch's threads (fad_d2.modeling.batch_threads); 0: one per thread (off with NORM
    # 'BN' in training: BatchNorm's statistics are over the batch); 1: off
    cfg.MODEL.FAD.CPU_BATCH_THREADS = 0


def _add_fad_mask_config(cfg):
    """``MODEL.FAD_MASK``: one group of cells replacing Mask R-CNN's mask-head convs (§3.1)."""
    cfg.MODEL.FAD_MASK = CN()
    cfg.MODEL.FAD_MASK.SEARCH_SPACE = "full"
    cfg.MODEL.FAD_MASK.REPSHARE = True
    cfg.MODEL.FAD_MASK.DILATED_BIAS = False  # as MODEL.FAD.DILATED_BIAS
    cfg.MODEL.FAD_MASK.UNSHARED_DECOUPLE = True  # as MODEL.FAD.UNSHARED_DECOUPLE
    cfg.MODEL.FAD_MASK.INNER_CHANNELS = 96  # c' (paper: 64 in search, 96 when training)
    cfg.MODEL.FAD_MASK.NUM_CELLS = 2  # M for a derived head (search uses M = 1)
    cfg.MODEL.FAD_MASK.NUM_NODES = 3
    cfg.MODEL.FAD_MASK.CELL = "paper"  # as MODEL.FAD.CELL (the released mask cell takes (x, x))
    cfg.MODEL.FAD_MASK.NORM = "GN"  # as MODEL.FAD.NORM
    cfg.MODEL.FAD_MASK.GENOTYPE = ""
    cfg.MODEL.FAD_MASK.CPU_BATCH_THREADS = 0  # as MODEL.FAD.CPU_BATCH_THREADS, over the RoIs


def _add_maskiou_config(cfg):
    """``MODEL.MASKIOU_HEAD``: the MaskIoU head of Mask Scoring R-CNN (``MaskScoringROIHeads``;
    Huang et al., CVPR 2019, used by the paper's Table 5)."""
    cfg.MODEL.MASKIOU_HEAD = CN()
    cfg.MODEL.MASKIOU_HEAD.NAME = "MaskIoUHead"  # a name in MASKIOU_HEAD_REGISTRY
    cfg.MODEL.MASKIOU_HEAD.CONV_DIMS = [256, 256, 256, 256]  # 3x3 convs, the last with stride 2
    cfg.MODEL.MASKIOU_HEAD.FC_DIMS = [1024, 1024]
    cfg.MODEL.MASKIOU_HEAD.LOSS_WEIGHT = 1.0  # weight of the L2 MaskIoU loss


def _add_model_ema_config(cfg):
    """``MODEL_EMA``: evaluate an exponential moving average of the weights (beyond the paper;
    ``fad_d2/engine/ema.py``)."""
    cfg.MODEL_EMA = CN()
    cfg.MODEL_EMA.ENABLED = False
    cfg.MODEL_EMA.DECAY = 0.999  # θ̄ ← d·θ̄ + (1 − d)·θ after every iteration (window ≈ 1 / (1 − d))


def _add_search_config(cfg):
    """``SEARCH``: the bilevel architecture search (paper §3.2, appendix 6.1/6.2)."""
    cfg.SEARCH = CN()
    cfg.SEARCH.SPLIT_RATIO = 0.5  # fraction of training images in the w-half (the rest: α-half)
    cfg.SEARCH.SPLIT_SEED = 0
    cfg.SEARCH.SPLIT_DATA = True  # False: both steps draw from the whole set (released code)
    cfg.SEARCH.ALPHA_LR = 3e-4  # Adam for α (DARTS defaults)
    cfg.SEARCH.ALPHA_BETAS = (0.5, 0.999)
    cfg.SEARCH.ALPHA_WEIGHT_DECAY = 1e-3
    cfg.SEARCH.GRAD_CLIP_NORM = 20.0  # global L2 clip of the w gradients (paper: 20; 0 = off)
    # w alone (no α step) for the first N iterations; derivations start counting after them
    # (0 = the paper, α steps from the first iteration)
    cfg.SEARCH.ALPHA_WARMUP_ITERS = 0
    cfg.SEARCH.DERIVE_PERIOD = 2500  # derive a discrete architecture every N iterations (after the warm-up)
    cfg.SEARCH.STOP_WHEN_STABLE = True  # stop when the derived architecture is stable (below)
    # stable = unchanged over this many consecutive derivation periods (1 = the paper: a derivation
    # equal to the previous one)
    cfg.SEARCH.STABLE_PERIODS = 1
    # how the final genotype is chosen: "alpha" (the paper: largest softmax(α)) | "perturbation"
    # (the ops and edges whose removal raises the α-half loss of the trained supernet most;
    # fad_d2/search/perturbation.py), measured on this many α-half batches
    cfg.SEARCH.SELECTION = "alpha"
    cfg.SEARCH.SELECTION_BATCHES = 4
    # config that trains the derived genotype: the base of the train_config.yaml a search writes
    cfg.SEARCH.TRAIN_CONFIG = ""


def _add_backbone_config(cfg):
    """``MODEL.BACKBONE.FREEZE_ALL``: keep the whole backbone (bottom-up + FPN) fixed."""
    # True: no backbone or FPN weight is trained (requires_grad False), e.g. heads compared on the
    # same pretrained features (the demo). Read by FCOS and SelectableHeadRetinaNet.
    cfg.MODEL.BACKBONE.FREEZE_ALL = False


def _add_search_cost_config(cfg):
    """``SEARCH.COST``: cost-aware search under a FLOPs or latency budget (beyond the paper; see
    ``fad_d2/search/cost_penalty.py`` for the expected cost and the penalty)."""
    cfg.SEARCH.COST = CN()
    cfg.SEARCH.COST.WEIGHT = 0.0  # weight of the penalty in the α step; 0 = off (the paper's search)
    cfg.SEARCH.COST.METRIC = "flops"  # flops | latency (measured on SEARCH.COST.DEVICE)
    cfg.SEARCH.COST.TARGET = 1.0  # budget, as a fraction of the stock head's cost
    cfg.SEARCH.COST.DEVICE = ""  # where latency is measured; empty = MODEL.DEVICE
    cfg.SEARCH.COST.REPEATS = 5  # measured calls per part of the cost table (median)
    cfg.SEARCH.COST.TABLE_DIR = ""  # cost-table cache; empty = ~/.cache/fad_d2/cost_tables


def _add_datasets_config(cfg):
    """``DATASETS.COCO`` and the data-following ``NUM_CLASSES`` of Detectron2's heads."""
    # COCO-format datasets named by file: a list of [name, json_file, image_root], registered with
    # Detectron2's catalogs whenever the config is loaded (in every process, DDP workers included),
    # so that DATASETS.TRAIN / DATASETS.TEST can name them (fad_d2.engine.datasets).
    cfg.DATASETS.COCO = []
    cfg.MODEL.RETINANET.NUM_CLASSES = NUM_CLASSES_FROM_DATA  # Detectron2's default: 80
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = NUM_CLASSES_FROM_DATA  # Detectron2's default: 80


def add_fad_config(cfg):
    """Add every fad_d2 key (``MODEL.BACKBONE.FREEZE_ALL``, ``MODEL.FCOS``, ``MODEL.RETINANET.HEAD_NAME``,
    ``MODEL.MOBILENET_V2``, ``MODEL.MASKIOU_HEAD``, ``MODEL.FAD``, ``MODEL.FAD_MASK``,
    ``MODEL.FAD_GENOTYPE_RECORD``, ``MODEL_EMA``, ``SEARCH``, ``SEARCH.COST``, ``DATASETS.COCO``) with its default
    to a Detectron2 ``CfgNode``, in place; ``MODEL.RETINANET.NUM_CLASSES`` and
    ``MODEL.ROI_HEADS.NUM_CLASSES`` default to :data:`NUM_CLASSES_FROM_DATA` instead of 80."""
    _add_backbone_config(cfg)
    _add_datasets_config(cfg)
    _add_fcos_config(cfg)
    cfg.MODEL.RETINANET.HEAD_NAME = "RetinaNetHead"  # a name in RETINANET_HEAD_REGISTRY
    _add_mobilenet_v2_config(cfg)
    _add_fad_head_config(cfg)
    _add_fad_mask_config(cfg)
    # Filled when a config is loaded (fad_d2.engine.setup.load_cfg), never by hand: the genotypes
    # of the FAD heads the config builds, as tagged JSON {genotype key: {"file", "genotype"}}
    # (fad_d2.modeling.heads.genotype_record_json), so that a
    # saved config.yaml (and every checkpoint) states the architecture, not only a file name.
    cfg.MODEL.FAD_GENOTYPE_RECORD = ""
    _add_maskiou_config(cfg)
    _add_model_ema_config(cfg)
    _add_search_config(cfg)
    _add_search_cost_config(cfg)
