"""fad_d2 installed with ``pip install .`` (not editable) into a fresh virtual environment works
without the checkout: the CLIs answer ``--help`` and the demo starts, run from another folder."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torchvision

from tests.conftest import REPO

pytestmark = pytest.mark.slow
CLIS = {"fad-train": "--config-file", "fad-search": "--config-file", "fad-demo": "--output-dir",
        "fad-analyze": "--config-file", "fad-cost": "--config-file", "fad-export": "--config-file"}


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv (no system site-packages) with the running torch/torchvision versions,
    Detectron2 (``scripts/install_detectron2.py``) and fad_d2 from ``pip install <checkout>``;
    returns its ``bin`` folder."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    versions = [f"torch=={torch.__version__.split('+')[0]}", f"torchvision=={torchvision.__version__.split('+')[0]}"]
    _run([python, "-m", "pip", "install", "--quiet", "setuptools>=64,<81", "wheel", *versions])
    _run([python, os.path.join(REPO, "scripts", "install_detectron2.py")])
    _run([python, "-m", "pip", "install", "--quiet", "--no-build-isolation", REPO])
    return venv / "bin"


def test_installed_package_is_not_the_checkout(installed, tmp_path):
    where = _run([str(installed / "python"), "-c", "import fad_d2; print(fad_d2.__file__)"], cwd=tmp_path)
    assert where.stdout.strip().startswith(str(installed.parent)) and REPO not in where.stdout


@pytest.mark.parametrize("cli", CLIS)
def test_cli_help(installed, tmp_path, cli):
    assert CLIS[cli] in _run([str(installed / cli), "--help"], cwd=tmp_path).stdout


def test_demo_starts_outside_the_checkout(installed, tmp_path):
    """``python -m fad_d2.demo`` in an empty folder finds its configs and pre-trained weights in
    the package and its search reaches the first training iteration; then it is stopped."""
    proc = subprocess.Popen([str(installed / "python"), "-m", "fad_d2.demo", "--device", "cpu"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = tmp_path / "output" / "demo" / "search" / "log.txt"
    try:
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            if log.is_file() and "Starting training from iteration 0" in log.read_text():
                break
            time.sleep(2)
        running = proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0]
    assert running, f"the demo ended early:\n{output[-3000:]}"
    assert "Starting training from iteration 0" in log.read_text(), output[-3000:]
