"""The README and docs/ agree with the repository: every path they name exists, every included
generated file is shown as it is now, and the layout they describe is the package's."""
import glob
import importlib.util
import itertools
import os
import re

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("docs_includes", os.path.join(REPO, "scripts", "docs_includes.py"))
docs_includes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_includes)

PAGES = docs_includes.pages(REPO)
TOP_FOLDERS = ("benchmarks", "configs", "docs", "fad_d2", "genotypes", "pretrained", "scripts", "studies", "tests")
# `path` or (path) in Markdown: a repository path, possibly with {a,b} alternatives
CITED = re.compile(r"[`(]((?:%s)/[\w./{},-]*[\w}/])[`)]" % "|".join(TOP_FOLDERS))
LAYOUT_ENTRY = re.compile(r"^( +)(\S+)")


def _expand(path):
    """``a/{b,c}.json`` → ``a/b.json``, ``a/c.json``."""
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _cited_paths(text):
    return sorted({p for m in CITED.finditer(text) for p in _expand(m[1])})


def _read(page):
    with open(page) as f:
        return f.read()


def test_pages_exist():
    names = {os.path.relpath(p, REPO) for p in PAGES}
    assert {"README.md", "docs/studies.md", "docs/benchmarks.md", "docs/paper.md", "docs/config.md",
            "docs/layout.md", "docs/development.md"} <= names


def test_cited_paths_finds_results_files():
    text = "see `benchmarks/results/sized/search_quality.{json,md}` and (docs/paper.md), not output/x"
    assert _cited_paths(text) == ["benchmarks/results/sized/search_quality.json",
                                  "benchmarks/results/sized/search_quality.md", "docs/paper.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, REPO))
def test_every_cited_path_exists(page):
    missing = [p for p in _cited_paths(_read(page)) if not glob.glob(os.path.join(REPO, p))]
    assert not missing, f"{os.path.relpath(page, REPO)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, REPO))
def test_included_files_are_shown_as_they_are(page):
    assert not docs_includes.stale_blocks(page, REPO), "run: python scripts/docs_includes.py"


def test_a_stale_block_is_found(tmp_path):
    (tmp_path / "table.md").write_text("| a |\n")
    page = tmp_path / "page.md"
    page.write_text("x\n<!-- include table.md -->\n| old |\n<!-- end include -->\ny\n")
    assert docs_includes.stale_blocks(str(page), str(tmp_path)) == [(str(page), "table.md")]
    page.write_text(docs_includes.refreshed(page.read_text(), str(tmp_path)))
    assert docs_includes.stale_blocks(str(page), str(tmp_path)) == []
    assert page.read_text() == "x\n<!-- include table.md -->\n| a |\n<!-- end include -->\ny\n"


def _layout_tree():
    """``{folder: {entry, ...}}`` of docs/layout.md's tree ("" is ``fad_d2/`` itself)."""
    block = _read(os.path.join(REPO, "docs", "layout.md")).split("```\nfad_d2/\n", 1)[1].split("```", 1)[0]
    tree, folder = {"": set()}, ""
    for line in block.splitlines():
        indent, name = LAYOUT_ENTRY.match(line).groups()
        if len(indent) == 2:
            tree[""].add(name)
            folder = name.rstrip("/")
            if name.endswith("/"):
                tree[folder] = set()
        else:
            tree[folder].add(name)
    return tree


def _package_tree():
    root = os.path.join(REPO, "fad_d2")
    tree = {"": set()}
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.path.isfile(os.path.join(path, "__init__.py")):
            tree[""].add(name + "/")
            tree[name] = {n for n in os.listdir(path) if n.endswith(".py")}
        elif name.endswith(".py"):
            tree[""].add(name)
    return tree


def test_layout_lists_the_package():
    assert _layout_tree() == _package_tree()
