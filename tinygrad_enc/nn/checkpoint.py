"""Checkpoints: save a model's weights to a ``.npz`` file and read them back.

A ``.npz`` file is a zip archive holding one ``.npy`` file per array, named
``<key>.npy``: the format ``np.savez`` writes and ``np.load`` reads, so any numpy
user can open our checkpoints. Two things make these functions safer than calling
numpy directly:

* ``save`` is atomic. It writes a temporary file beside the target, flushes it to
  disk, then renames it over the target in one step. A crash, a full disk or a
  Ctrl-C mid-write leaves either the old checkpoint or the new one under the real
  name, never half a file.
* ``load`` never unpickles. A pickle can run arbitrary code when it is loaded, so a
  checkpoint downloaded from somewhere must not be able to hold one. Anything that
  is not a plain ``.npz`` of numeric arrays (a pickle, a ``torch.save`` file, a
  truncated download) is refused with a ``ValueError`` that names the file.

Typical use::

    nn.save(model, "model.npz")
    model.load_state_dict(nn.load("model.npz"))
"""
import errno
import os
import secrets
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

# How a zip archive starts: a local file header, or the end record of an empty zip.
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
# Pickle protocols 2 and later open with the PROTO opcode; torch.save's legacy
# (non-zip) format is such a pickle too.
_PICKLE_PROTO = b"\x80"
# What a damaged archive can raise while it is read: zipfile's own errors, numpy's
# ValueError for a bad .npy header, zlib's for bad compressed data, EOFError or
# OSError when it ends too soon, NotImplementedError for an unknown compression
# method and RuntimeError for a member flagged as encrypted.
_CORRUPTION_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError,
                      NotImplementedError, RuntimeError)


def save(module_or_state_dict, path):
    """Write a model's weights to ``path`` as an uncompressed ``.npz``, atomically.

    ``module_or_state_dict`` is anything with a ``state_dict()`` method (an
    ``nn.Module``) or a mapping ``name -> array``; values may be ndarrays, Tensors
    or Parameters (their ``.data`` is saved) or anything ``np.asarray`` accepts.
    Arrays keep their dtype and shape exactly, so a round trip is bit-exact.

    The file is written exactly at ``path``: unlike ``np.savez``, no ``.npz`` is
    appended. Its directory must exist (``FileNotFoundError`` otherwise); it is not
    created, so a typo in the path does not silently scatter checkpoints.

    Raises ``TypeError`` for a key that is not a string or a value that is not
    an array of numbers (bool, integer, float or complex): a string, None, or
    anything numpy could only store as an object array (it would need pickle to
    be read back). A save that fails for any reason, Ctrl-C included, removes
    its temporary file and raises an error naming ``path``. (Only a process
    killed outright can leave one behind: ``.<name>.<random>.tmp``, beside
    ``path``, safe to delete.)
    """
    arrays = _state_arrays(module_or_state_dict)
    path = os.fspath(_check_path("save", path))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"save: the directory {directory!r} does not "
                                "exist (it is not created)", path)
    temp_path = None
    try:
        temp_path, fd = _create_temp_beside(path)
        with os.fdopen(fd, "wb") as file:
            _write_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException as e:
        if temp_path is not None and os.path.exists(temp_path):
            os.unlink(temp_path)
        if isinstance(e, OSError):  # name the user's file, not the temporary one
            reason = e.strerror or type(e).__name__
            raise type(e)(e.errno, f"save: cannot write the checkpoint ({reason})", path) from None
        raise


def load(path):
    """Read a checkpoint written by ``save`` (or ``np.savez``) into a dict.

    Returns a plain ``dict`` of ``name -> np.ndarray``, in the order the arrays
    were saved, fully read into memory (the file is closed on return).

    Raises ``ValueError`` naming ``path`` when the file is not a valid ``.npz``
    checkpoint (truncated, corrupt, a lone ``.npy``, something else entirely) or
    when it contains pickled data (a ``pickle.dump`` or ``torch.save`` file, an
    object array): pickled data is refused, never executed. A missing file raises
    the usual ``FileNotFoundError``.
    """
    _check_path("load", path)
    with open(path, "rb") as file:
        _check_signature(file, path)
        try:
            archive = zipfile.ZipFile(file)
        except _CORRUPTION_ERRORS as e:
            raise _not_a_checkpoint(path, e) from e
        with archive:
            return {_array_name(member, path): _read_array(archive, member, path)
                    for member in archive.namelist()}


def _state_arrays(module_or_state_dict):
    """The ``name -> ndarray`` dict to save, checked before anything touches disk."""
    if hasattr(module_or_state_dict, "state_dict"):
        state = module_or_state_dict.state_dict()
    else:
        state = module_or_state_dict
    if not isinstance(state, Mapping):
        raise TypeError(f"save: expected a Module or a dict of arrays, "
                        f"got {type(module_or_state_dict).__name__}")
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"save: keys must be strings, got {key!r}")
        # An ndarray's own .data is a raw memory buffer, so only unwrap Tensors.
        data = value if isinstance(value, np.ndarray) else getattr(value, "data", value)
        try:
            array = np.asarray(data)
        except ValueError:  # numpy 2 refuses ragged lists
            raise TypeError(f"save: {key!r} is a ragged {type(data).__name__}, not an "
                            "array") from None
        if array.dtype.hasobject:
            raise TypeError(f"save: {key!r} would be stored as an object array, "
                            f"which only pickle can read back; save numeric arrays")
        if array.dtype.kind not in "biufc":
            raise TypeError(f"save: {key!r} is not an array of numbers (dtype {array.dtype}); "
                            "save numeric arrays")
        arrays[key] = array
    return arrays


def _check_path(op, path):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{op}: path must be a str or a path, got {type(path).__name__}")
    return path


def _create_temp_beside(path):
    """Create a new, uniquely named file in ``path``'s directory; return (path, fd).

    Same directory, so the final ``os.replace`` is a rename within one file system
    (atomic). Like ``tempfile.mkstemp`` (``O_EXCL``: never reuses an existing
    file), but created with mode 0o666 minus the umask as ``open`` would, not
    mkstemp's owner-only 0o600 that the rename would pass on to the checkpoint.
    """
    directory, name = os.path.split(os.path.abspath(path))
    temp_path = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return temp_path, os.open(temp_path, flags, 0o666)


def _write_npz(file, arrays):
    """Write ``arrays`` into ``file`` as the members of an uncompressed ``.npz``.

    This is what ``np.savez`` does, spelled out: ``np.savez(file, **arrays)``
    would fail for a key named ``file`` or ``allow_pickle`` (its own arguments).
    """
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            # force_zip64: the member size is unknown up front and may pass 4 GiB.
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _check_signature(file, path):
    """Refuse, by its first bytes, a file that is not a zip archive at all."""
    head = file.read(len(np.lib.format.MAGIC_PREFIX))
    file.seek(0)
    if head.startswith(_ZIP_SIGNATURES):
        return
    if head.startswith(_PICKLE_PROTO):
        raise _pickled(path, "the file is a pickle")
    if head == np.lib.format.MAGIC_PREFIX:
        raise _not_a_checkpoint(path, "it is a single .npy array; read it with np.load")
    raise _not_a_checkpoint(path, "the file is empty" if not head else "it is not a zip archive")


def _array_name(member, path):
    """The state-dict key of the archive member ``<key>.npy``."""
    if member.endswith(".npy"):
        return member[:-len(".npy")]
    if member.endswith(".pkl"):  # torch.save's zip format keeps its pickle in data.pkl
        raise _pickled(path, f"member {member!r} is a pickle")
    raise _not_a_checkpoint(path, f"member {member!r} is not a .npy array")


def _read_array(archive, member, path):
    """Read one ``.npy`` member, refusing an object array (stored as a pickle)."""
    try:
        with archive.open(member) as file:
            if not _header_dtype(file).hasobject:
                file.seek(0)
                return np.lib.format.read_array(file, allow_pickle=False)
    except _CORRUPTION_ERRORS as e:
        raise _not_a_checkpoint(path, f"member {member!r}: {e}") from e
    raise _pickled(path, f"member {member!r} is an object array")


def _header_dtype(file):
    """The dtype in a ``.npy`` header, read without touching the data after it."""
    version = np.lib.format.read_magic(file)
    # Format 3.0 differs from 2.0 only in encoding field names as UTF-8, which
    # cannot change whether the dtype holds Python objects.
    if version == (1, 0):
        _, _, dtype = np.lib.format.read_array_header_1_0(file)
    else:
        _, _, dtype = np.lib.format.read_array_header_2_0(file)
    return dtype


def _pickled(path, detail):
    return ValueError(f"{path}: contains pickled data; refusing to load it ({detail}; "
                      f"a pickle can run code, a checkpoint holds arrays only)")


def _not_a_checkpoint(path, detail):
    return ValueError(f"{path}: not a valid .npz checkpoint ({detail})")
