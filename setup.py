"""Builds the package with copies of ``configs/``, ``genotypes/`` and ``pretrained/`` inside it
(``fad_d2/resources/``), so that an installed fad_d2 runs its demo and configs without the
checkout; the metadata is in ``pyproject.toml``."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

FOLDERS = ("configs", "genotypes", "pretrained")  # as fad_d2.resources.FOLDERS


class BuildPyWithResources(build_py):
    """``build_py`` that also copies :data:`FOLDERS` into the built package (an editable install
    reads them from the checkout instead)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder in FOLDERS:
            target = os.path.join(self.build_lib, "fad_d2", "resources", folder)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)


setup(cmdclass={"build_py": BuildPyWithResources})
