"""Build the frozen config of a run from the command line, with one-line errors."""
import os
import sys

from detectron2.config import get_cfg
from detectron2.engine import default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..config import add_fad_config


class ConfigError(ValueError):
    """A config file or a command-line override that cannot be used; the message names it."""


def load_cfg(config_file, opts=()):
    """Return the (unfrozen) config: Detectron2 defaults + :func:`add_fad_config` + file + opts.

    Raises :class:`ConfigError` for a missing file, a key that does not exist (a typo) or a
    value of the wrong type, naming the file or override.
    """
    cfg = get_cfg()
    add_fad_config(cfg)
    if not os.path.isfile(config_file):
        raise ConfigError(f"config file not found: {config_file}")
    try:
        cfg.merge_from_file(config_file)
    except (KeyError, ValueError, AssertionError, TypeError) as e:
        raise ConfigError(f"{config_file}: {_reason(e)}") from None
    try:
        cfg.merge_from_list(list(opts))
    except (KeyError, ValueError, AssertionError, TypeError) as e:
        raise ConfigError(f"command-line override {list(opts)}: {_reason(e)}") from None
    return cfg


def _reason(exc):
    return str(exc.args[0]) if exc.args else type(exc).__name__


def setup_cfg(args):
    """``get_cfg`` → ``add_fad_config`` → file → overrides → freeze → ``default_setup``, and the
    ``fad_d2`` logger set up like Detectron2's (console + ``OUTPUT_DIR/log.txt``)."""
    cfg = load_cfg(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="fad_d2", abbrev_name="fad")
    return cfg


def launch_main(main, args):
    """Run ``main(args)`` through Detectron2's ``launch`` (one process per GPU, ``--num-machines``
    etc.); a :class:`ConfigError` or a missing file ends the program with a one-line message."""
    try:
        launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
               dist_url=args.dist_url, args=(args,))
    except (ConfigError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
