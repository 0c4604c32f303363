"""Model files: orphaned temporaries of killed saves cleaned, files that are not graphc models
refused clearly, SHA-256 checksums of every array, only the ``.npz`` extension, custom losses
saved by name and loaded through ``custom_objects``."""
import fcntl
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from graphc import layers as L
from graphc import losses
from graphc.layers.base import Layer
from graphc.models import Sequential, load_model
from graphc.models import saving

X = np.random.default_rng(11).normal(size=(8, 4)).astype(np.float32)
Y = np.random.default_rng(12).normal(size=(8, 2)).astype(np.float32)


def _model():
    return Sequential([L.Dense(3, activation="tanh", input_dim=4), L.Dense(2)])


def _saved(tmp_path, name="m.npz"):
    m = _model()
    path = str(tmp_path / name)
    m.save(path)
    return m, path


def _arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write_npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _age(path, seconds=60):
    t = time.time() - seconds
    os.utime(path, (t, t))


# -- 1. temporaries of killed saves ----------------------------------------------------------------
def _killed_save(path):
    """A real save killed by SIGKILL halfway through writing (what a crash or OOM kill leaves)."""
    script = textwrap.dedent(f"""
        import os, signal
        from graphc.layers import Dense
        from graphc.models import Sequential, saving
        def die(f, arrays):
            f.write(b"half an archive")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        saving._savez = die
        Sequential([Dense(2, input_dim=4)]).save({path!r})
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == -9, r.stderr[-2000:]


def _temps(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


def test_temporaries_of_killed_saves_are_cleaned_by_the_next_save_or_load(tmp_path):
    m, path = _saved(tmp_path)
    _killed_save(path)
    _killed_save(path)
    orphans = _temps(tmp_path)
    # the second save already removes the first one's temporary when that is over 2 s old (a slow,
    # loaded machine): one or two are left
    assert len(orphans) in (1, 2) and all(re.fullmatch(r"\.m\.npz\.\w{8}\.tmp", n) for n in orphans)
    assert load_model(path).get_weights()[0].shape == (4, 3)        # the old file survived
    for n in orphans:
        _age(tmp_path / n)
    m.save(path)
    assert _temps(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["m.npz"]
    _killed_save(path)
    (orphan,) = _temps(tmp_path)
    _age(tmp_path / orphan)
    load_model(path)
    assert _temps(tmp_path) == []
    _killed_save(path)
    (orphan,) = _temps(tmp_path)
    _age(tmp_path / orphan)
    m.load_weights(path)                                              # load_weights cleans too
    assert _temps(tmp_path) == []


def test_only_unlocked_stale_temporaries_of_that_file_are_deleted(tmp_path):
    m, path = _saved(tmp_path)
    keep = [".m.npz.abcdefgh.tmp.bak", ".m.npz.abc.tmp", "m.npz.abcdefgh.tmp", ".n.npz.abcdefgh.tmp",
            ".m.npz.abcdefgh.tmpx", "notes.txt"]
    for n in keep:
        (tmp_path / n).write_bytes(b"x")
        _age(tmp_path / n)
    live = tmp_path / ".m.npz.livesave.tmp"       # a concurrent save writing (it holds the lock)
    live.write_bytes(b"half")
    _age(live)
    fresh = tmp_path / ".m.npz.justmade.tmp"      # just created: its save may not have locked it yet
    fresh.write_bytes(b"")
    stale = tmp_path / ".m.npz.k1lled_1.tmp"
    stale.write_bytes(b"half")
    _age(stale)
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        m.save(path)
        assert sorted(os.listdir(tmp_path)) == sorted(keep + ["m.npz", live.name, fresh.name])
    _age(fresh)
    m.save(path)                                  # the lock is gone, both are old: both go
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ["m.npz"])


def test_a_save_holds_the_lock_on_its_temporary_until_the_rename(tmp_path, monkeypatch):
    m, path = _saved(tmp_path)
    real, seen = saving._savez, []

    def check(f, arrays):
        (name,) = _temps(tmp_path)
        _age(tmp_path / name)
        saving._clean_orphans(path)               # another process's save or load runs now
        seen.append(os.path.exists(tmp_path / name))
        real(f, arrays)
    monkeypatch.setattr(saving, "_savez", check)
    m.save(path)
    assert seen == [True] and _temps(tmp_path) == [] and load_model(path) is not None


def test_where_flock_fails_saves_work_and_no_temporary_is_deleted(tmp_path, monkeypatch):
    m, path = _saved(tmp_path)
    stale = tmp_path / ".m.npz.k1lled_1.tmp"
    stale.write_bytes(b"half")
    _age(stale)

    def no_flock(fd, op):
        raise OSError(37, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_flock)
    m.save(path)
    assert load_model(path) is not None and stale.exists()


# -- 2. files that are not graphc models -----------------------------------------------------------
def _model_bytes(tmp_path):
    _, path = _saved(tmp_path, "good.npz")
    with open(path, "rb") as f:
        return f.read()


def _config_of(tmp_path):
    return json.loads(str(_arrays(_saved(tmp_path, "good.npz")[1])["config"]))


def _make(kind, tmp_path, path):
    if kind == "empty zip":
        zipfile.ZipFile(path, "w").close()
    elif kind == "npz without config":
        _write_npz(path, {"weight_00000": np.ones(3)})
    elif kind == "npz that is not a model":
        _write_npz(path, {"a": np.ones(3), "b": np.zeros(2)})
    elif kind == "config a JSON list":
        _write_npz(path, {"config": np.array(json.dumps([1, 2]))})
    elif kind == "config without a class":
        config = _config_of(tmp_path)
        del config["class_name"]
        _write_npz(path, {"config": np.array(json.dumps(config))})
    elif kind == "config not JSON":
        _write_npz(path, {"config": np.array("{not json")})
    elif kind == "config not a string":
        _write_npz(path, {"config": np.arange(3)})
    elif kind == "another format":
        _write_npz(path, {"config": np.array(json.dumps({"format": "other-1", "class_name": "X"}))})
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.ones((2, 2)))
    elif kind == "truncated":
        data = _model_bytes(tmp_path)
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
    elif kind == "text":
        with open(path, "w") as f:
            f.write("hello\n")
    elif kind == "empty file":
        open(path, "wb").close()


@pytest.mark.parametrize("kind, why", [
    ("empty zip", r"no 'config' entry \(it holds nothing\)"),
    ("npz without config", r"no 'config' entry \(it holds weight_00000\)"),
    ("npz that is not a model", r"no 'config' entry \(it holds a, b\)"),
    ("config a JSON list", r"its config is a JSON list, not an object"),
    ("config without a class", r"names no model class \('class_name'\)"),
    ("config not JSON", r"its 'config' entry is not JSON"),
    ("config not a string", r"its 'config' entry is a int64 array, not a string"),
    ("another format", r"format 'other-1', not 'graphc-model-1'"),
    ("npy", r"it is a single \.npy array, not an npz archive"),
    ("truncated", r"it is not a readable npz archive, truncated or damaged\? \(File is not a zip"),
    ("text", r"it is not an npz \(zip\) archive \(it starts with b'hello\\n'\)"),
    ("empty file", r"the file is empty"),
])
def test_files_that_are_not_graphc_models_are_clear_errors(tmp_path, kind, why):
    path = str(tmp_path / "x.npz")
    _make(kind, tmp_path, path)
    with pytest.raises(ValueError, match=re.escape(path) + " is not a graphc model file: (.* )?" + why):
        load_model(path)


def test_load_weights_refuses_what_is_not_a_graphc_file(tmp_path):
    m, _ = _saved(tmp_path)
    path = str(tmp_path / "x.npz")
    _make("npz that is not a model", tmp_path, path)
    with pytest.raises(ValueError, match=re.escape(path) + " is not a graphc model file: .*no 'config'"):
        m.load_weights(path)
    m.save_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="w.npz is not a graphc model file: it holds weights only"):
        load_model(tmp_path / "w.npz")
    m.load_weights(tmp_path / "w.npz")                    # what save_weights wrote loads


class _PrivateLayer(Layer):
    def call(self, inputs, training=None):
        return inputs


class ShiftForFiles(Layer):
    def call(self, inputs, training=None):
        return inputs + 1.0


def test_an_unknown_layer_names_custom_objects_and_lists_graphc_layers_only(tmp_path):
    m = Sequential([L.Dense(2, input_dim=4), ShiftForFiles()])
    path = str(tmp_path / "m.npz")
    m.save(path)
    arrays = _arrays(path)
    arrays["config"] = np.array(str(arrays["config"]).replace("ShiftForFiles", "MyShift"))
    _write_npz(path, arrays)
    with pytest.raises(ValueError) as e:
        load_model(path)
    msg = str(e.value)
    assert msg.startswith(path + ": unknown layer class 'MyShift'; known: ")
    assert "custom_objects={'MyShift': YourLayerClass}" in msg and "damaged" not in msg
    known = msg.split("known: ")[1].split(";")[0].split(", ")
    assert "Dense" in known and "Sequential" in known and "Functional" in known
    assert not {"ShiftForFiles", "_PrivateLayer", "Model"} & set(known)
    assert all(not n.startswith("_") for n in known)
    back = load_model(path, custom_objects={"MyShift": ShiftForFiles})
    np.testing.assert_allclose(back.predict(X), m.predict(X), rtol=1e-6)


# -- 3. checksums ----------------------------------------------------------------------------------
def _trained(tmp_path):
    m = _model()
    m.compile(optimizer="adam", loss="mse")
    m.fit(X, Y, batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "m.npz")
    m.save(path)
    return m, path


def test_every_array_has_a_checksum_in_the_config(tmp_path):
    _, path = _trained(tmp_path)
    arrays = _arrays(path)
    sums = json.loads(str(arrays["config"]))["sha256"]
    names = sorted(k for k in arrays if k != "config")
    assert sorted(sums) == names and any(n.startswith("optimizer_") for n in names)
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in sums.values())


@pytest.mark.parametrize("name", ["weight_00001", "optimizer_00002"])
def test_an_array_changed_behind_the_config_is_refused(tmp_path, name):
    _, path = _trained(tmp_path)
    arrays = _arrays(path)
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] += 1.0                      # same shape and dtype, one value different
    _write_npz(path, arrays)
    with pytest.raises(ValueError, match=re.escape(path) + f" is damaged: array '{name}' .* does not "
                                         "match the SHA-256 it was saved with"):
        load_model(path)


def test_a_missing_array_is_refused(tmp_path):
    _, path = _trained(tmp_path)
    arrays = _arrays(path)
    del arrays["optimizer_00003"]
    _write_npz(path, arrays)
    with pytest.raises(ValueError, match=re.escape(path) + r" is damaged: arrays missing "
                                         r"\['optimizer_00003'\], unexpected \[\]"):
        load_model(path, compile=False)


def test_a_flipped_byte_is_an_error_never_other_weights(tmp_path):
    m, path = _trained(tmp_path)
    raw = bytearray(open(path, "rb").read())
    at = raw.find(m.get_weights()[0].tobytes())
    assert at > 0
    raw[at + 5] ^= 0x10
    open(path, "wb").write(bytes(raw))
    with pytest.raises(ValueError, match=re.escape(path) + " is damaged"):
        load_model(path)
    with pytest.raises(ValueError, match=re.escape(path) + " is damaged"):
        m.load_weights(path)


def test_save_weights_files_are_checked_too(tmp_path):
    m = _model()
    path = str(tmp_path / "w.npz")
    m.save_weights(path)
    arrays = _arrays(path)
    assert sorted(json.loads(str(arrays["config"]))["sha256"]) == ["weight_00000", "weight_00001",
                                                                   "weight_00002", "weight_00003"]
    arrays["weight_00000"] = arrays["weight_00000"] * 2
    _write_npz(path, arrays)
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match="w.npz is damaged: array 'weight_00000'"):
        m.load_weights(path)
    for a, b in zip(before, m.get_weights()):        # nothing was set
        np.testing.assert_array_equal(a, b)


def test_files_from_before_checksums_still_load(tmp_path):
    m, path = _trained(tmp_path)
    arrays = _arrays(path)
    config = json.loads(str(arrays["config"]))
    del config["sha256"]
    arrays["config"] = np.array(json.dumps(config))
    _write_npz(path, arrays)
    for a, b in zip(load_model(path).get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- 4. extensions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, said", [("m.keras", "has the extension '.keras'"),
                                        ("m.h5", "has the extension '.h5'"),
                                        ("m", "has no extension"),
                                        ("m.npz.bak", "has the extension '.bak'")])
def test_only_npz_names_are_written(tmp_path, name, said):
    m = _model()
    path = str(tmp_path / name)
    stem = os.path.splitext(path)[0]
    with pytest.raises(ValueError, match=re.escape(f"save_model: {path} {said}") + ".*must end in "
                                         + re.escape(f"'.npz' (e.g. '{stem}.npz')")):
        m.save(path)
    with pytest.raises(ValueError, match=re.escape(f"save_weights: {path} {said}")):
        m.save_weights(path)
    assert os.listdir(tmp_path) == []
    m.save(tmp_path / "UPPER.NPZ")
    assert load_model(tmp_path / "UPPER.NPZ").get_weights()[0].shape == (4, 3)


# -- 5. custom losses ------------------------------------------------------------------------------
def my_files_loss(y_true, y_pred):
    return losses.mean_absolute_error(y_true, y_pred) * 3.0


class TwiceMSE(losses.Loss):
    fn = staticmethod(lambda t, p: losses.mean_squared_error(t, p) * 2.0)
    default_name = "twice_mse"


@pytest.mark.parametrize("loss, name", [(my_files_loss, "my_files_loss"), (TwiceMSE(), "TwiceMSE"),
                                        (TwiceMSE, "TwiceMSE")])
def test_a_custom_loss_is_saved_by_name_and_loaded_through_custom_objects(tmp_path, loss, name,
                                                                          recwarn):
    m = _model()
    m.compile(optimizer="adam", loss=loss)
    m.fit(X, Y, batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "m.npz")
    m.save(path)
    assert not [w for w in recwarn if "compile settings" in str(w.message)]
    with pytest.raises(ValueError, match=re.escape(path) + f": the model was compiled with the loss "
                                         f"'{name}', which is not one of graphc's: pass it to "
                                         f"load_model as custom_objects={{'{name}': "):
        load_model(path)
    obj = loss if isinstance(loss, type) or not isinstance(loss, losses.Loss) else type(loss)
    back = load_model(path, custom_objects={name: obj})
    assert back.compiled
    assert back.evaluate(X, Y, verbose=0) == pytest.approx(m.evaluate(X, Y, verbose=0), rel=1e-6)
    assert back._state.session.run(back.optimizer.iterations) == 2     # the optimizer state came too
    assert not load_model(path, compile=False).__dict__.get("compiled", False)


def test_custom_losses_per_output_by_name(tmp_path):
    inp = L.Input(shape=(4,))
    from graphc.models import Model
    m = Model(inp, [L.Dense(2, name="a")(inp), L.Dense(1, name="b")(inp)])
    m.compile(optimizer="sgd", loss={"a": my_files_loss, "b": "mse"})
    path = str(tmp_path / "two.npz")
    m.save(path)
    with pytest.raises(ValueError, match="loss 'my_files_loss'"):
        load_model(path)
    back = load_model(path, custom_objects={"my_files_loss": my_files_loss})
    assert back._compile_args["loss"] == {"a": my_files_loss, "b": "mse"}
    ys = [Y, Y[:, :1]]
    np.testing.assert_allclose(back.evaluate(X, ys, verbose=0), m.evaluate(X, ys, verbose=0), rtol=1e-6)


def test_a_custom_loss_named_like_a_graphc_loss_is_not_saved_as_that_loss(tmp_path):
    def mse(y_true, y_pred):                         # not graphc's mse
        return losses.mean_absolute_error(y_true, y_pred)
    m = _model()
    m.compile(optimizer="sgd", loss=mse)
    path = str(tmp_path / "m.npz")
    with pytest.warns(UserWarning, match=r"saved without its compile settings \(cannot serialize the "
                                         r"loss <function.*its name 'mse' is also a graphc loss's"):
        m.save(path)
    assert not load_model(path).__dict__.get("compiled", False)


def test_a_loss_that_is_no_name_is_a_clear_error(tmp_path):
    m = _model()
    m.compile(optimizer="sgd", loss="mse")
    path = str(tmp_path / "m.npz")
    m.save(path)
    arrays = _arrays(path)
    config = json.loads(str(arrays["config"]))
    config["compile"]["loss"] = 7
    arrays["config"] = np.array(json.dumps(config))
    _write_npz(path, arrays)
    with pytest.raises(ValueError, match=re.escape(path) + ": its loss 7 is neither a name nor a config"):
        load_model(path)


class Huber(losses.Loss):                            # not graphc's Huber
    fn = staticmethod(lambda t, p: losses.mean_absolute_error(t, p))


def test_a_custom_loss_class_named_like_a_graphc_loss_is_not_saved_as_that_loss(tmp_path):
    m = _model()
    m.compile(optimizer="sgd", loss=Huber())
    path = str(tmp_path / "m.npz")
    with pytest.warns(UserWarning, match="its name 'Huber' is also a graphc loss's"):
        m.save(path)
    m.compile(optimizer="sgd", loss=losses.Huber)   # graphc's own class: saved by name, as it is
    m.save(path)
    back = load_model(path)
    assert back._compile_args["loss"] == "Huber"
    assert back.evaluate(X, Y, verbose=0) == pytest.approx(m.evaluate(X, Y, verbose=0), rel=1e-6)
