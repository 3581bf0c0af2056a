"""Checkpoints: bit-exact round trips, atomic writes, and refusal of anything
that is not a plain .npz of arrays (above all, anything pickled)."""
import os
import pickle

import numpy as np
import pytest

from tinygrad_enc.nn.checkpoint import load, save


def _state(dtype):
    """A state dict with awkward values: non-finite, signed zero, subnormal, a
    transposed (non-contiguous) array, a scalar and an empty array."""
    rng = np.random.default_rng(0)
    tiny = np.finfo(dtype).smallest_subnormal
    return {
        "layers.0.linear1.weight": rng.standard_normal((4, 3)).astype(dtype),
        "layers.0.linear1.bias": np.array([np.nan, np.inf, -np.inf, -0.0, tiny], dtype=dtype),
        "transposed": rng.standard_normal((3, 5)).astype(dtype).T,
        "scalar": np.array(1.5, dtype=dtype),
        "empty": np.zeros((0, 2), dtype=dtype),
    }


def _assert_bit_exact(got, want):
    assert list(got) == list(want)
    for key, value in want.items():
        value = np.asarray(value)
        assert type(got[key]) is np.ndarray, key
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        assert got[key].tobytes() == value.tobytes(), key


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    state = _state(dtype)
    path = tmp_path / "model.npz"
    save(state, path)
    loaded = load(path)
    assert type(loaded) is dict
    _assert_bit_exact(loaded, state)


def test_round_trip_of_integer_and_bool_arrays(tmp_path):
    state = {"ids": np.arange(5, dtype=np.int64), "mask": np.array([[True, False]])}
    save(state, tmp_path / "buffers.npz")
    _assert_bit_exact(load(tmp_path / "buffers.npz"), state)


def test_keys_that_are_np_savez_arguments_are_ordinary_keys(tmp_path):
    # np.savez(file, **arrays) would fail on these two: save must not.
    state = {"file": np.ones(2), "allow_pickle": np.zeros(3)}
    save(state, tmp_path / "m.npz")
    _assert_bit_exact(load(tmp_path / "m.npz"), state)


def test_writes_exactly_the_path_given(tmp_path):
    path = tmp_path / "model.ckpt"
    save({"w": np.ones(2)}, str(path))
    assert os.listdir(tmp_path) == ["model.ckpt"]
    np.testing.assert_array_equal(load(str(path))["w"], np.ones(2))


def test_overwrites_an_existing_checkpoint(tmp_path):
    path = tmp_path / "m.npz"
    save({"w": np.ones(2)}, path)
    save({"w": np.zeros(3)}, path)
    _assert_bit_exact(load(path), {"w": np.zeros(3)})
    assert os.listdir(tmp_path) == ["m.npz"]


def test_values_with_a_data_array_are_unwrapped(tmp_path):
    class Holder:  # stands in for a Tensor / Parameter
        def __init__(self, data):
            self.data = data

    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    save({"w": Holder(weight), "b": [1.0, 2.0]}, tmp_path / "m.npz")
    _assert_bit_exact(load(tmp_path / "m.npz"), {"w": weight, "b": np.array([1.0, 2.0])})


def test_module_round_trip(tmp_path):
    Linear = pytest.importorskip("tinygrad_enc.nn.layers").Linear
    model = Linear(3, 4)
    save(model, tmp_path / "linear.npz")
    loaded = load(tmp_path / "linear.npz")
    _assert_bit_exact(loaded, model.state_dict())
    fresh = Linear(3, 4)
    fresh.load_state_dict(loaded)
    _assert_bit_exact(fresh.state_dict(), model.state_dict())


def test_object_array_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match="'layers.0.bad'.*object array"):
        save({"ok": np.ones(2), "layers.0.bad": np.array([{"a": 1}], dtype=object)},
             tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_non_string_key_refused(tmp_path):
    with pytest.raises(TypeError, match="keys must be strings"):
        save({0: np.ones(2)}, tmp_path / "m.npz")


def test_missing_directory_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        save({"w": np.ones(2)}, tmp_path / "no_such_dir" / "m.npz")
    assert os.listdir(tmp_path) == []


# ----- atomicity ---------------------------------------------------------------

def _crash_on_second_array(monkeypatch, error):
    """Make the .npy writer write one array, then fail: a crash mid-checkpoint."""
    real_write_array = np.lib.format.write_array
    calls = []

    def write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return real_write_array(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_array)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_crash_mid_write_leaves_no_file(tmp_path, monkeypatch, error):
    _crash_on_second_array(monkeypatch, error)
    with pytest.raises(type(error)):
        save({"a": np.ones(1000), "b": np.ones(1000)}, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_crash_mid_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save({"a": np.zeros(3), "b": np.zeros(3)}, path)
    before = path.read_bytes()
    _crash_on_second_array(monkeypatch, OSError(28, "No space left on device"))
    with pytest.raises(OSError, match="No space left"):
        save({"a": np.ones(1000), "b": np.ones(1000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_crash_in_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise PermissionError("replace refused")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        save({"a": np.ones(3)}, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# ----- refusing what is not a checkpoint -----------------------------------------

def test_truncated_file_refused_at_every_length(tmp_path):
    good = tmp_path / "good.npz"
    save(_state(np.float32), good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.npz"
    for length in range(0, len(data), 7):
        bad.write_bytes(data[:length])
        with pytest.raises(ValueError, match="not a valid .npz checkpoint") as info:
            load(bad)
        assert str(bad) in str(info.value)


def test_corrupt_array_data_refused(tmp_path):
    path = tmp_path / "m.npz"
    save({"w": np.zeros(64)}, path)
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # inside w's array bytes: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a valid .npz checkpoint") as info:
        load(path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is not None


def test_pickle_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:  # unpickling this would create `marker`
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        pickle.dump({"w": Payload()}, f)
    with pytest.raises(ValueError, match="contains pickled data; refusing to load it") as info:
        load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_npz_with_object_array_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, w=np.ones(3), bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="contains pickled data; refusing to load it") as info:
        load(path)
    assert str(path) in str(info.value) and "bad.npy" in str(info.value)


def test_torch_save_file_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(ValueError, match="contains pickled data; refusing to load it"):
        load(path)


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"hello, world", "it is not a zip archive"),
])
def test_other_files_refused(tmp_path, content, reason):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"not a valid .npz checkpoint \\({reason}"):
        load(path)


def test_single_npy_refused(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match="single .npy array"):
        load(path)


def test_npz_from_numpy_loads(tmp_path):
    path = tmp_path / "numpy.npz"
    np.savez_compressed(path, w=np.arange(4.0))
    _assert_bit_exact(load(path), {"w": np.arange(4.0)})


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing.npz")
