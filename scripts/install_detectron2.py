"""Install Detectron2 into the running interpreter by the first route that works.

Routes, in order:

1. ``importable``  -- ``import detectron2`` already works (a user's own build): nothing to do.
2. ``github``      -- the official source build from GitHub (compiles ``detectron2._C``).
3. ``pypi-purepy`` -- the ``sal-detectron2==0.7.2`` wheel from PyPI (a redistribution of the
   upstream source), repacked without its compiled ``_C`` extension so that it installs on
   any Python >= 3.10 and runs in pure Python.  NMS and ROIAlign then come from torchvision;
   only the layers that need ``detectron2._C`` (deformable conv, rotated boxes/NMS/ROIAlign,
   the fast COCO evaluator) are missing.

The route taken is printed as one line starting with ``[fad_d2] detectron2:``.
``--wheel-dir DIR`` only writes the repacked pure-Python wheel to DIR (for machines without PyPI).
Set ``FAD_D2_DETECTRON2_ROUTE`` to one of the route names to force it.
"""
import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile

GITHUB_SPEC = "detectron2 @ git+https://github.com/facebookresearch/detectron2.git"
PYPI_NAME = "sal-detectron2==0.7.2"
MISSING_WITHOUT_C = (
    "deformable conv (DCNv1/v2), rotated boxes (nms_rotated, ROIAlignRotated, box_iou_rotated), "
    "COCOeval_opt (use COCOEvaluator(use_fast_impl=False))"
)


def _log(msg):
    print(f"[fad_d2] detectron2: {msg}", flush=True)


def _pip(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pip", *args], **kw)


def _importable():
    return importlib.util.find_spec("detectron2") is not None


def _github_reachable(timeout=5.0):
    try:
        socket.create_connection(("github.com", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def install_from_github():
    if not _github_reachable():
        _log("github.com is not reachable; skipping the official source build")
        return False
    proc = _pip("install", "--no-build-isolation", GITHUB_SPEC)
    return proc.returncode == 0


def build_purepy_wheel(out_dir):
    """Download the sal-detectron2 wheel, strip ``_C*.so``, retag it py3-none-any and write it
    to ``out_dir``; returns its path."""
    with tempfile.TemporaryDirectory(prefix="fad_d2_d2_") as tmp:
        _pip("download", "--no-deps", "--only-binary=:all:", "--python-version", "3.10",
             "--implementation", "cp", "-d", tmp, PYPI_NAME, check=True)
        wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
        unpack_dir = os.path.join(tmp, "unpacked")
        subprocess.run([sys.executable, "-m", "wheel", "unpack", "-d", unpack_dir, wheel], check=True)
        (root,) = glob.glob(os.path.join(unpack_dir, "*"))
        for so in glob.glob(os.path.join(root, "detectron2", "_C*.so")):
            os.remove(so)
        (wheel_meta,) = glob.glob(os.path.join(root, "*.dist-info", "WHEEL"))
        with open(wheel_meta) as f:
            lines = [ln for ln in f.read().splitlines()
                     if ln.strip() and not ln.startswith(("Tag:", "Root-Is-Purelib:"))]
        lines += ["Root-Is-Purelib: true", "Tag: py3-none-any"]
        with open(wheel_meta, "w") as f:
            f.write("\n".join(lines) + "\n")
        record = glob.glob(os.path.join(root, "*.dist-info", "RECORD"))
        for r in record:  # `wheel pack` regenerates RECORD
            os.remove(r)
        os.makedirs(out_dir, exist_ok=True)
        before = set(glob.glob(os.path.join(out_dir, "*.whl")))
        subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", out_dir, root], check=True)
        (packed,) = set(glob.glob(os.path.join(out_dir, "*.whl"))) - before or glob.glob(
            os.path.join(out_dir, "sal_detectron2-*.whl"))
    return packed


def install_from_pypi_purepy():
    """Install the wheel :func:`build_purepy_wheel` makes."""
    with tempfile.TemporaryDirectory(prefix="fad_d2_d2_wheel_") as tmp:
        _pip("install", "--no-deps", build_purepy_wheel(tmp), check=True)
    return True


ROUTES = {"github": install_from_github, "pypi-purepy": install_from_pypi_purepy}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--wheel-dir":  # only build the pure-Python wheel there
        _log(f"wheel written to {build_purepy_wheel(sys.argv[2])}")
        return
    forced = os.environ.get("FAD_D2_DETECTRON2_ROUTE")
    if forced and forced not in ("importable", *ROUTES):
        sys.exit(f"FAD_D2_DETECTRON2_ROUTE={forced!r}: expected one of importable, {', '.join(ROUTES)}")
    if forced in (None, "importable") and _importable():
        import detectron2
        _log(f"route=importable (already installed, version {detectron2.__version__}); nothing to do")
        return
    for name, install in ROUTES.items():
        if forced and forced != name:
            continue
        _log(f"trying route={name}")
        try:
            ok = install()
        except subprocess.CalledProcessError as e:
            _log(f"route={name} failed: {e}")
            ok = False
        if ok:
            missing = "none" if name == "github" else MISSING_WITHOUT_C
            _log(f"route={name} installed; compiled ops missing: {missing}")
            return
    sys.exit("[fad_d2] detectron2: every install route failed (see the lines above)")


if __name__ == "__main__":
    if shutil.which("git") is None:
        ROUTES.pop("github")
    main()
