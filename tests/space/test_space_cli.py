"""Command lines: ``python -m fad_d2.space`` (counting) and ``python -m fad_d2.draw``."""
import json
import os
import subprocess
import sys

import pytest

from fad_d2 import draw
from fad_d2.space import __main__ as space_cli
from fad_d2.space import sample_random_genotype, save_genotype

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_module(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_space_cli_full():
    result = run_module("fad_d2.space", "--search-space", "full")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "choices per edge (α per edge): 13 (12 transformations + none)" in out
    assert "representations per mixed op: 12 with RepShare, 26 without" in out
    assert "edges per search cell: 6" in out
    assert "13^12 = 23,298,085,122,481 ~ 2.33e+13" in out
    assert "sep_5x5_dil2    sep     conv, conv, dil r=2           9" in out


def test_space_cli_json(capsys):
    assert space_cli.main(["--search-space", "full", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["alpha_per_edge"] == 13
    assert (summary["representations_repshare"], summary["representations_unshared"]) == (12, 26)
    assert summary["edges_per_cell"] == 6 and summary["unique_paths"] == 13 ** 12
    rfs = {t["name"]: t["receptive_field"] for t in summary["transformations"]}
    assert rfs["std_3x3_dil3"] == 9 and rfs["sep_3x3"] == 3


def test_space_cli_all_and_darts(capsys):
    assert space_cli.main(["--search-space", "all", "--json"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert [s["search_space"] for s in summaries][-1] == "darts"
    assert space_cli.main(["--search-space", "darts"]) == 0
    assert "RepShare not applicable, 8 without" in capsys.readouterr().out


def test_space_cli_unknown(capsys):
    with pytest.raises(SystemExit) as info:
        space_cli.main(["--search-space", "bogus"])
    assert info.value.code == 2
    assert "unknown search space 'bogus' (valid: full, no_decouple" in capsys.readouterr().err


@pytest.fixture
def genotype_file(tmp_path):
    path = tmp_path / "genotype.json"
    save_genotype(sample_random_genotype("full", seed=1), str(path))
    return path


@pytest.mark.slow
def test_draw_cli_png(tmp_path, genotype_file):
    out = tmp_path / "cell.png"
    result = run_module("fad_d2.draw", str(genotype_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_svg_and_labels(tmp_path, genotype_file):
    out = tmp_path / "cell.svg"
    assert draw.main([str(genotype_file), "-o", str(out)]) == 0
    text = out.read_text()
    assert "<svg" in text and out.stat().st_size > 1000
    genotype = sample_random_genotype("darts", seed=2)
    assert draw.draw_genotype(genotype, str(tmp_path / "darts.svg")) == str(tmp_path / "darts.svg")
    assert (tmp_path / "darts.svg").stat().st_size > 1000


def test_draw_cli_reports_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "fad-genotype/0"}')
    assert draw.main([str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert "$.format: unsupported format 'fad-genotype/0'" in capsys.readouterr().err
    assert draw.main([str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.png")]) == 2
    assert "genotype file not found" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_library_needs_no_detectron2():
    """``fad_d2.space`` and ``fad_d2.draw`` import without Detectron2 (parent package stubbed,
    since ``fad_d2/__init__`` registers the Detectron2 heads)."""
    code = (
        "import sys, types\n"
        f"pkg = types.ModuleType('fad_d2'); pkg.__path__ = [{os.path.join(REPO, 'fad_d2')!r}]\n"
        "sys.modules['fad_d2'] = pkg\n"
        "import fad_d2.space, fad_d2.draw\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] == 'detectron2' or m.startswith('fad_d2.modeling'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
