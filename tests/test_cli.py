"""The graphc command: --version, info, cache."""
import subprocess
import sys

import graphc
from graphc import cli


def test_version_and_info(capsys, tmp_path, configure):
    configure(cache_dir=str(tmp_path), threads=1)
    out = subprocess.run([sys.executable, "-m", "graphc.cli", "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"graphc {graphc.__version__}"
    assert cli.main(["info"]) == 0
    text = capsys.readouterr().out
    for word in ("numpy", "numba", "networkx", "threading", "cache", str(tmp_path)):
        assert word in text
    # the configuration in force, one setting a line with its environment variable
    assert any(ln.split()[:2] == ["threads", "1"] and "GRAPHC_THREADS" in ln for ln in text.splitlines())


def test_cache_show_and_clear(capsys, tmp_path, configure):
    configure(cache_dir=str(tmp_path))
    assert cli.main(["cache"]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    assert cli.main(["cache", "clear"]) == 0
    assert "removed 0 cached kernels" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "info" in capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    import pytest
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("info", "cache", "dump", "bench"):
        assert cmd in out
