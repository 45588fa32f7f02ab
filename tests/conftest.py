"""Shared pytest fixtures: configs from this repository, tiny detection inputs."""
import os
import warnings

import pytest

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


def config_path(relative):
    """Absolute path of ``configs/<relative>``."""
    return os.path.join(CONFIGS, relative)


@pytest.fixture(scope="session", autouse=True)
def _small_synthetic_data(tmp_path_factory):
    """Tests use the small embedded dataset (24 train / 12 val images) in a per-session folder,
    never the user's cache."""
    os.environ["FAD_D2_DATA"] = str(tmp_path_factory.mktemp("fad_synth"))
    os.environ["FAD_D2_SYNTH_SMALL"] = "1"
