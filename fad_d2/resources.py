"""The project's files beside the code: ``configs/``, ``genotypes/`` and ``pretrained/``.

In a checkout they are the repository's folders, read relative to the current directory (run
from the repository root, as ``make`` does).  ``pip install .`` copies them into the package
(``fad_d2/resources/``, by ``setup.py``), so that an installed fad_d2 finds them anywhere.
"""
import os
from importlib import resources

FOLDERS = ("configs", "genotypes", "pretrained")


def installed_root() -> str:
    """The folder of the copies ``pip install .`` put into the package (it may not exist)."""
    return str(resources.files("fad_d2") / "resources")


def resource_path(relative: str) -> str:
    """``relative`` (e.g. ``configs/Demo/fcos_R_18_FPN_demo.yaml``) where it exists: under the
    current directory, else among the installed copies; ``relative`` itself when neither has it
    (so that the caller's own error names the path the user gave)."""
    if os.path.exists(relative) or os.path.isabs(relative):
        return relative
    installed = os.path.join(installed_root(), relative)
    return installed if os.path.exists(installed) else relative
