"""Which dtype an op on several tensors gives, and dtypes named for casts.

numpy and PyTorch agree inside a kind (bool < integers < floats; the wider
type wins), but differ in two places, and we follow PyTorch (`apply` casts
the inputs of every op on several tensors with `promote`):

- an integer or boolean tensor meeting a float tensor gives the float
  tensor's dtype: int32 / float32 is float32 (numpy makes float64);
- a 0-d tensor counts like a Python number: it does not widen an n-d tensor
  of its own kind (float32 (3,) * float64 () is float32), it only lifts an
  n-d tensor to a higher kind (int64 (3,) * float64 () is float64).

numpy only: this file knows nothing of Tensors.
"""
import numpy as np

_KIND = {"b": 0, "u": 1, "i": 1, "f": 2}


def promote_types(a, b):
    """torch.promote_types: the higher kind wins; inside a kind, numpy's rule."""
    ka, kb = _KIND[a.kind], _KIND[b.kind]
    if ka != kb:
        return a if ka > kb else b
    return np.promote_types(a, b)


def _combined(dtypes):
    result = None
    for d in dtypes:
        result = d if result is None else promote_types(result, d)
    return result


def result_dtype(arrays):
    """PyTorch's result dtype for an op on `arrays`: the n-d arrays decide,
    and the 0-d ones count only if they are of a higher kind."""
    shaped = _combined(a.dtype for a in arrays if a.ndim)
    scalar = _combined(a.dtype for a in arrays if not a.ndim)
    if shaped is None or scalar is None:
        return shaped if scalar is None else scalar
    return promote_types(shaped, scalar) if _KIND[scalar.kind] > _KIND[shaped.kind] else shaped


def promote(arrays):
    """`arrays` cast to their common dtype (PyTorch's rule); as they are when
    they already share one."""
    first = arrays[0].dtype
    if all(a.dtype == first for a in arrays):
        return arrays
    dtype = result_dtype(arrays)
    return [a if a.dtype == dtype else a.astype(dtype) for a in arrays]


def as_dtype(op, dtype):
    """A dtype a tensor can have (boolean, integer or floating-point), from a
    numpy dtype, its name ("float32") or a Python type (float is float64, as
    in numpy; int is int64)."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: {dtype!r} is not a dtype (use np.float32, np.int64, "
                        "'float64', bool, ...)") from None
    if dtype.kind not in _KIND:
        raise TypeError(f"{op}: dtype {dtype} is not boolean, integer or floating-point")
    return dtype
