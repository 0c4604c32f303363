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
        for f in ("passes_s", "compile_cold_s", "compile_warm_s", "run_s", "reference_run_s"):
            assert r[f] > 0, f
        assert r["matches_reference"] is True
        assert r["kernels_loaded_warm"] >= 0 and r["peak_bytes"] >= 0


def test_bench_list_and_unknown_workload(capsys):
    assert cli.main(["bench", "--list"]) == 0
    assert "synthetic_20k" in capsys.readouterr().out
    assert cli.main(["bench", "nope"]) == 2
    assert "unknown workload 'nope'" in capsys.readouterr().err
