"""graphc bench --quick on two small workloads: the table and the JSON records."""
import json

from graphc import cli
from graphc.tools.bench import FIELDS


def test_bench_quick_json_fields(capsys, tmp_path):
    dst = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "chain_4", "mlp_infer", "--json", str(dst)]) == 0
    out = capsys.readouterr().out
    assert "workload" in out and "chain_4" in out and "mlp_infer" in out
    recs = json.loads(dst.read_text())
    assert [r["workload"] for r in recs] == ["chain_4", "mlp_infer"]
    for r in recs:
        assert "error" not in r, r
        for f in FIELDS:
            assert f in r, f
        assert r["nodes_optimized"] <= r["nodes_raw"]
        assert set(r["passes"]) >= {"dce", "cse", "fuse_elementwise"}
        for f in ("passes_s", "first_step_s", "compile_cold_s", "compile_warm_s", "run_s", "reference_run_s"):
            assert r[f] > 0, f
        assert r["matches_reference"] is True
        assert r["kernels_loaded_warm"] >= 0 and r["peak_bytes"] >= 0


def test_bench_list_and_unknown_workload(capsys):
    assert cli.main(["bench", "--list"]) == 0
    assert "synthetic_20k" in capsys.readouterr().out
    assert cli.main(["bench", "nope"]) == 2
    assert "unknown workload 'nope'" in capsys.readouterr().err


def test_bench_table_peer_columns_and_notes():
    from graphc.tools.bench import table
    base = {"nodes_raw": 9, "nodes_optimized": 5, "passes_s": 1e-3, "compile_cold_s": 1.0,
            "compile_warm_s": 0.1, "run_s": 1e-3, "reference_run_s": 2e-3, "peak_bytes": 1024}
    recs = [dict(base, workload="lstm_train", peers={
        "torch": {"run_s": 2e-3, "ratio": 2.0}, "jax": {"error": "RuntimeError: boom"},
        "keras": {"skipped": "keras is not installed"}})]
    out = table(recs)
    assert "torch ms (x)" in out and "2.000 (2.00x)" in out and "jax ms (x)" in out and "error" in out
    assert "keras ms" not in out   # a peer skipped everywhere gets no column, only a note
    assert "peer keras skipped: keras is not installed" in out
    assert "peer jax failed on lstm_train: RuntimeError: boom" in out


def test_peers_model_workload_runs_where_torch_is_installed():
    import pytest
    pytest.importorskip("torch")   # peers are never required
    from graphc.tools.peers import PEER_WORKLOADS, import_peers, measure_peers
    from graphc.tools.workloads import WORKLOADS, build
    assert {f"{k}_{m}" for k in ("cnn", "lstm", "transformer") for m in ("infer", "train")} <= PEER_WORKLOADS
    assert PEER_WORKLOADS <= set(WORKLOADS)
    import_peers()
    res = measure_peers("lstm_infer", build("lstm_infer", quick=True), quick=True, budget=0.01)
    assert res["torch"]["run_s"] > 0, res
    for peer, v in res.items():
        assert len(v) == 1 and ("run_s" in v or v.get("skipped")), (peer, v)
    assert measure_peers("synthetic_2k", None, True, 0.01) == {}   # no peer version: left out
