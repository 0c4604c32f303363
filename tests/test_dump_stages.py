"""graphc dump --stage all: the raw section and the first pass see the same graph (issue #21: the MLP
training step showed 172 raw nodes and a first pass starting from 204, the whole model graph)."""
import json

import pytest

from graphc import cli
from graphc.tools.dump import stages
from graphc.tools.workloads import build


@pytest.mark.parametrize("workload", ["mlp_train", "cnn_train"])
def test_raw_count_is_first_pass_input(workload):
    prog = build(workload, quick=True)
    assert prog.graph.num_nodes() > len(prog.needed())    # the model graph holds more than the step needs
    raw, first, *rest = stages(prog, "all")
    assert first.record.nodes_before == len(raw.nodes)
    assert set(first.nodes) <= set(raw.nodes) | first.added  # no node of the other programs appears
    assert len(rest[-1].nodes) == len(stages(prog, "optimized")[0].nodes)


def test_json_all_counts(tmp_path):
    out = tmp_path / "all.json"
    assert cli.main(["dump", "mlp", "--train", "--stage", "all", "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    raw, first = doc["stages"][0], doc["stages"][1]
    assert raw["stage"] == "raw" and len(raw["nodes"]) == first["pass"]["nodes_before"]
