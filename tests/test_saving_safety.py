"""Model files: permissions as the umask says, damaged or hostile files refused before they cost."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from graphc.layers import Dense
from graphc.models import Sequential, load_model


def _small(tmp_path):
    m = Sequential([Dense(4, input_dim=16)])
    path = str(tmp_path / "m.npz")
    m.save(path)
    return m, path


def _rewrite(path, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(str(arrays["config"]))
    edit(config, arrays)
    arrays["config"] = np.array(json.dumps(config) if not isinstance(config, str) else config)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        _, path = _small(tmp_path)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == mode


def test_weights_of_another_shape_or_dtype_are_refused(tmp_path):
    _, path = _small(tmp_path)

    def to_float64(config, arrays):
        arrays["weight_00000"] = arrays["weight_00000"].astype(np.float64)
    _rewrite(path, to_float64)
    with pytest.raises(ValueError, match=r"m.npz: weight .*\(16, 4\) float32 in the model's config but "
                                         r"\(16, 4\) float64 in the file"):
        load_model(path)


def test_a_huge_declared_layer_is_refused_before_it_is_allocated(tmp_path):
    # the config claims Dense(10**7) on 16 inputs (640 MB of float32); the file holds 16 x 4
    _, path = _small(tmp_path)

    def huge(config, arrays):
        config["config"]["layers"][-1]["config"]["units"] = 10 ** 7
    _rewrite(path, huge)
    # peak RSS from here on (ru_maxrss would start at the forking test worker's RSS)
    script = textwrap.dedent(f"""
        from graphc.models import load_model
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        try:
            load_model({path!r})
        except ValueError as e:
            print("refused:", e)
        peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
        print("maxrss_mb", int(peak) // 1024)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused:" in r.stdout and "m.npz: layer" in r.stdout and "(16, 10000000)" in r.stdout
    assert int(r.stdout.split("maxrss_mb")[1]) < 450, r.stdout     # graphc + numba alone: ~250 MB


def test_a_deeply_nested_config_is_a_clear_error(tmp_path):
    _, path = _small(tmp_path)
    deep = '{"format": "graphc-model-1", "class_name": "Sequential", "config": ' + "[" * 200000 + \
        "]" * 200000 + "}"
    _rewrite(path, lambda config, arrays: arrays.__setitem__("config", np.array(deep)))
    with np.load(path) as z:            # _rewrite set the config from the dict: put the deep one back
        arrays = {k: z[k] for k in z.files}
    arrays["config"] = np.array(deep)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="m.npz: the model config is nested too deeply"):
        load_model(path)
