"""Genotype files: round trip, and one specific error per malformed case."""
import copy
import json

import pytest

from fad_d2.space import (
    FORMAT,
    CellGenotype,
    EdgeChoice,
    Genotype,
    GenotypeError,
    genotype_from_dict,
    genotype_to_dict,
    load_genotype,
    sample_random_genotype,
    save_genotype,
)

GOOD = {
    "format": "fad-genotype/1",
    "search_space": "full",
    "cell": "paper",
    "groups": [
        {"name": "box", "nodes": [
            [{"op": "sep_3x3_dil2", "input": 0}],
            [{"op": "std_5x5", "input": 0}, {"op": "std_3x3", "input": 1}],
            [{"op": "sep_7x7", "input": 1}, {"op": "std_3x3_dil3", "input": 2}],
        ]},
        {"name": "cls", "nodes": [
            [{"op": "std_7x7", "input": 0}],
            [{"op": "sep_5x5", "input": 0}, {"op": "sep_3x3", "input": 1}],
            [{"op": "std_5x5_dil2", "input": 0}, {"op": "sep_3x3_dil3", "input": 2}],
        ]},
    ],
}


def test_format_example_loads():
    g = genotype_from_dict(GOOD)
    assert g.search_space == "full" and g.group_names == ("box", "cls")
    assert g.group("box").nodes[1] == (EdgeChoice("std_5x5", 0), EdgeChoice("std_3x3", 1))
    assert g.group("cls").ops[0] == "std_7x7"
    with pytest.raises(KeyError, match=r"no group 'mask' \(groups: \['box', 'cls'\]\)"):
        g.group("mask")
    assert genotype_to_dict(g) == GOOD
    without_cell = {k: v for k, v in GOOD.items() if k != "cell"}  # files written before the key
    assert genotype_from_dict(without_cell) == g and g.cell == "paper"


@pytest.mark.parametrize("space", ["full", "subset1", "darts"])
def test_json_round_trip(tmp_path, space):
    g = sample_random_genotype(space, seed=7)
    path = tmp_path / "sub" / "genotype.json"
    save_genotype(g, str(path), meta={"iteration": 2500})
    assert load_genotype(str(path)) == g
    assert genotype_from_dict(json.loads(json.dumps(genotype_to_dict(g)))) == g
    text = path.read_text()
    assert json.loads(text)["format"] == FORMAT == "fad-genotype/1"
    assert json.loads(text)["meta"] == {"iteration": 2500}
    node_lines = [line for line in text.splitlines() if line.strip().startswith("[{")]
    assert len(node_lines) == 6  # human-readable: one node per line


def test_genotype_is_hashable_and_frozen():
    g = Genotype("full", [("box", CellGenotype([[EdgeChoice("std_3x3", 0)]]))])
    assert isinstance(g.groups, tuple) and isinstance(g.group("box").nodes[0], tuple)
    assert hash(g) == hash(copy.deepcopy(g))
    with pytest.raises(AttributeError):
        g.search_space = "darts"


def edit(fn):
    d = copy.deepcopy(GOOD)
    fn(d)
    return d


def node(d, g, k):
    return d["groups"][g]["nodes"][k]


CASES = {  # case: (edit, expected "<path>: <detail>" fragment)
    "bad format tag": (lambda d: d.update(format="fad-genotype/2"),
                       "$.format: unsupported format 'fad-genotype/2' (expected 'fad-genotype/1')"),
    "missing format tag": (lambda d: d.pop("format"), "$: missing key 'format'"),
    "unknown op": (lambda d: node(d, 1, 2)[0].update(op="std_11x11"),
                   "$.groups[1].nodes[2][0].op: 'std_11x11' is not a transformation of search "
                   "space 'full' (valid: std_3x3, std_5x5, std_7x7,"),
    "none op": (lambda d: node(d, 0, 0)[0].update(op="none"),
                "$.groups[0].nodes[0][0].op: 'none' is not a transformation of search space"),
    "op of another space": (lambda d: node(d, 0, 0)[0].update(op="max_pool_3x3"),
                            "$.groups[0].nodes[0][0].op: 'max_pool_3x3' is not a transformation"),
    "input out of range": (lambda d: node(d, 0, 1)[1].update(input=2),
                           "$.groups[0].nodes[1][1].input: input 2 is out of range for node 2 "
                           "(valid: 0..1)"),
    "negative input": (lambda d: node(d, 1, 2)[0].update(input=-1),
                       "$.groups[1].nodes[2][0].input: input -1 is out of range for node 3"),
    "wrong node count": (lambda d: d["groups"][1]["nodes"].pop(),
                         "$.groups[1].nodes: expected 3 nodes, got 2"),
    "wrong edge count": (lambda d: node(d, 0, 0).append({"op": "std_3x3", "input": 0}),
                         "$.groups[0].nodes[0]: node 1 must keep exactly 1 incoming edge(s), "
                         "got 2"),
    "duplicate inputs": (lambda d: node(d, 0, 2)[1].update(input=1),
                         "$.groups[0].nodes[2][1].input: duplicate input 1: node 3 already has "
                         "an edge from it"),
    "missing key": (lambda d: d["groups"][1].pop("nodes"), "$.groups[1]: missing key 'nodes'"),
    "missing edge key": (lambda d: node(d, 0, 1)[0].pop("op"),
                         "$.groups[0].nodes[1][0]: missing key 'op'"),
    "missing top key": (lambda d: d.pop("search_space"), "$: missing key 'search_space'"),
    "unknown key": (lambda d: d["groups"][0].update(color="red"),
                    "$.groups[0].color: unknown key (valid: name, nodes)"),
    "wrong type input": (lambda d: node(d, 0, 0)[0].update(input="0"),
                         "$.groups[0].nodes[0][0].input: expected an integer, got str '0'"),
    "bool input": (lambda d: node(d, 0, 0)[0].update(input=True),
                   "$.groups[0].nodes[0][0].input: expected an integer, got bool True"),
    "wrong type groups": (lambda d: d.update(groups={}), "$.groups: expected a list, got dict"),
    "wrong type node": (lambda d: d["groups"][0]["nodes"].__setitem__(1, "std_3x3"),
                        "$.groups[0].nodes[1]: expected a list, got str 'std_3x3'"),
    "wrong type meta": (lambda d: d.update(meta=3), "$.meta: expected an object, got int 3"),
    "unknown search space": (lambda d: d.update(search_space="huge"),
                             "$.search_space: unknown search space 'huge' (valid: full,"),
    "no groups": (lambda d: d.update(groups=[]), "$.groups: expected at least one group"),
    "duplicate group": (lambda d: d["groups"][1].update(name="box"),
                        "$.groups[1].name: duplicate group name 'box'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_file_errors(tmp_path, case):
    mutate, expected = CASES[case]
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(edit(mutate), indent=2))
    with pytest.raises(GenotypeError) as info:
        load_genotype(str(path))
    assert str(info.value).startswith(f"{path}: {expected}")
    assert isinstance(info.value, ValueError)
    assert info.value.path == expected.split(":")[0]


def test_first_error_in_document_order():
    def two_errors(d):
        node(d, 0, 2)[0].update(input="x")
        node(d, 1, 0)[0].update(op="bad")
    with pytest.raises(GenotypeError, match=r"^<dict>: \$\.groups\[0\]\.nodes\[2\]\[0\]\.input"):
        genotype_from_dict(edit(two_errors))


def test_not_an_object():
    with pytest.raises(GenotypeError, match=r"^src: \$: expected an object, got list"):
        genotype_from_dict([], source="src")


def test_bad_json_syntax(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "fad-genotype/1"\n  "search_space": "full"\n}\n')
    with pytest.raises(GenotypeError, match=r"broken\.json: line 3 column 3: invalid JSON: "
                                            r"Expecting ',' delimiter"):
        load_genotype(str(path))


def test_file_missing(tmp_path):
    path = tmp_path / "nowhere.json"
    with pytest.raises(FileNotFoundError, match=r"genotype file not found: .*nowhere\.json"):
        load_genotype(str(path))


def test_save_refuses_invalid_genotype(tmp_path):
    bad = Genotype("full", [("box", CellGenotype([[EdgeChoice("std_3x3", 0)],
                                                  [EdgeChoice("std_3x3", 0),
                                                   EdgeChoice("std_3x3", 0)],
                                                  [EdgeChoice("std_3x3", 0),
                                                   EdgeChoice("std_3x3", 1)]]))])
    path = tmp_path / "bad.json"
    with pytest.raises(GenotypeError, match=r"\$\.groups\[0\]\.nodes\[1\]\[1\]\.input: duplicate"):
        save_genotype(bad, str(path))
    assert not path.exists()
