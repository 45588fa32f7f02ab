"""Shared pytest fixtures: configs from this repository, tiny detection inputs."""
import os
import warnings

import pytest
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


def config_path(relative):
    """Absolute path of ``configs/<relative>``."""
    return os.path.join(CONFIGS, relative)


@pytest.fixture(scope="session", autouse=True)
def _small_synthetic_data(tmp_path_factory):
    """Point the embedded dataset at a per-session folder so tests never touch the user's cache."""
    os.environ.setdefault("FAD_D2_DATA", str(tmp_path_factory.mktemp("fad_synth")))
    torch.set_num_threads(2)
