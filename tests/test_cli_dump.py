"""graphc dump: targets, stages, formats and one-line errors."""
import json

import pytest

from graphc import cli

TARGET = '''
import graphc as gc
from graphc.models import Sequential
from graphc.layers import Dense

def tensors():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4), name="x")
        return [gc.relu(x * 2.0 + 1.0), gc.reduce_sum(gc.exp(x))]

def model():
    m = Sequential([Dense(3, activation="relu", input_dim=4), Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    return m

number = 3
'''


@pytest.fixture
def target(tmp_path):
    p = tmp_path / "prog.py"
    p.write_text(TARGET)
    return str(p)


def _run(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_text_shows_ssa_lines_and_fused_subexpression(capsys, target):
    rc, out, _ = _run(capsys, "dump", f"{target}:tensors")
    assert rc == 0
    assert "v0:f32[?,4] = placeholder" in out
    assert "fused_elementwise" in out and "t2 = relu(t1)" in out   # sub-expression, indented
    assert "return" in out
    rc, raw, _ = _run(capsys, "dump", f"{target}:tensors", "--stage", "raw")
    assert "fused" not in raw and "= exp v0" in raw


def test_json_schema_and_stage_all(capsys, target):
    rc, out, _ = _run(capsys, "dump", f"{target}:tensors", "--format", "json")
    d = json.loads(out)
    assert d["format"] == "graphc-graph/1" and d["stage"] == "optimized"
    for n in d["nodes"]:
        assert {"id", "op", "inputs", "shape", "dtype", "attrs", "kind", "name"} <= set(n)
    ids = {n["id"] for n in d["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in d["edges"])
    assert set(d["outputs"]) <= ids
    rc, out, _ = _run(capsys, "dump", f"{target}:tensors", "--format", "json", "--stage", "all")
    d = json.loads(out)
    names = [s["stage"] for s in d["stages"]]
    assert names[0] == "raw" and "fuse_elementwise" in names
    assert d["stages"][-1]["pass"]["nodes_after"] == len(d["stages"][-1]["nodes"])
    rc, out, _ = _run(capsys, "dump", f"{target}:tensors", "--stage", "after=cse", "--format", "json")
    assert json.loads(out)["stage"] == "cse"


def test_model_train_graph_dot_and_output_file(capsys, target, tmp_path):
    rc, out, _ = _run(capsys, "dump", f"{target}:model", "--train", "--stage", "raw")
    assert rc == 0 and "assign" in out          # optimizer updates are in the training step
    rc, inf, _ = _run(capsys, "dump", f"{target}:model", "--stage", "raw")
    assert "assign" not in inf
    dst = tmp_path / "g.dot"
    rc, _, err = _run(capsys, "dump", "mlp", "--format", "dot", "-o", str(dst))
    assert rc == 0 and dst.read_text().startswith("digraph graphc {") and "wrote" in err


def test_saved_model_and_workload_targets(capsys, tmp_path):
    from graphc.layers import Dense
    from graphc.models import Sequential
    m = Sequential([Dense(2, input_dim=3)])
    m.compile("sgd", "mse")
    m.save(str(tmp_path / "m.npz"))
    rc, out, _ = _run(capsys, "dump", str(tmp_path / "m.npz"), "--train")
    assert rc == 0 and "m.npz" in out
    rc, out, _ = _run(capsys, "dump", "lstm", "--stage", "raw")
    assert rc == 0 and "lstm_infer" in out


@pytest.mark.parametrize("spec,message", [
    ("missing.py:f", "file not found"),
    ("{t}:nope", "no name 'nope' in the module"),
    ("{t}:number", "not a graph or model"),
    ("{t}", "say which name to dump"),
    ("nosuchworkload", "not a file, file.py:name, or workload"),
])
def test_bad_targets_give_one_line_and_exit_2(capsys, target, spec, message):
    rc, out, err = _run(capsys, "dump", spec.format(t=target))
    assert rc == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_stage_and_train_on_tensors(capsys, target):
    rc, _, err = _run(capsys, "dump", "mlp", "--stage", "after=nope")
    assert rc == 2 and "unknown pass" in err
    rc, _, err = _run(capsys, "dump", f"{target}:tensors", "--train")
    assert rc == 2 and "--train needs a model" in err


def test_debug_shows_the_traceback(target):
    from graphc.tools.workloads import TargetError
    with pytest.raises(TargetError):
        cli.main(["dump", "missing.py:f", "--debug"])


def test_every_command_has_help_with_examples(capsys):
    for cmd in ("dump", "bench", "info", "cache"):
        with pytest.raises(SystemExit) as e:
            cli.main([cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "usage: graphc " + cmd in out and "examples:" in out
