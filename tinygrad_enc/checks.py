"""Argument checks and error text, in one place.

Every public function checks its arguments once, where the learner called it,
and says what is wrong in the learner's terms: the op, the offending value and
the shapes (`matmul: (2, 3) @ (4, 5): inner sizes 3 and 4 differ`). The
functions here work on shapes, numbers and ndarrays only; they know nothing
of Tensors (tensor.py unwraps them), so this module imports numpy alone.
"""
import functools
import math
import numbers
import operator

import numpy as np


def shape_str(shape):
    return str(tuple(shape))


def shapes_str(shapes, joiner=" and "):
    return joiner.join(shape_str(s) for s in shapes)


def integer(op, name, value, minimum=None):
    """`value` as a Python int: an int, a numpy integer, or anything with
    __index__; never a float (2.9 would silently become 2), nor a bool."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an integer, got {value!r} "
                        f"({type(value).__name__})") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    return value


def number(op, name, value, low=None, high=None, low_open=False, high_open=False):
    """`value` as a Python float: an int, a float or a numpy number, never a bool
    or a string; within [low, high] when given (NaN is outside every range). An
    open end (low_open, high_open) excludes the bound itself: eps > 0, beta < 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        raise TypeError(f"{op}: {name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    if not (above and below):
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        span = f"in {left}{low}, {high}{right}" if low is not None and high is not None else \
            f"{'>' if low_open else '>='} {low}" if low is not None else \
            f"{'<' if high_open else '<='} {high}"
        raise ValueError(f"{op}: {name} must be {span}, got {value}")
    return value


def flag(op, name, value):
    """`value` as a bool: True or False only (a string like "no" is truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


def shape_arg(op, shape):
    """Accept f(2, 3) and f((2, 3)); every size an integer (a float is an error)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(integer(op, "a size", n) for n in shape)


def new_shape(op, shape):
    """The shape of a new array (zeros, ones, randn, full ...): integers >= 0."""
    shape = shape_arg(op, shape)
    negative = [n for n in shape if n < 0]
    if negative:
        raise ValueError(f"{op}: sizes must be >= 0, got {shape_str(shape)}")
    return shape


def normalize_axes(op, axis, ndim, allow_repeat=False):
    """axis None | int | tuple -> sorted tuple of non-negative axes, or a clear
    error naming the op. As in PyTorch, a 0-d tensor accepts axis 0 or -1
    (there is nothing to reduce over, so they give no axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
    if not isinstance(axes, (tuple, list)) or not all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} "
                             f"dimension{'s' if ndim != 1 else ''}")
        if ndim:
            out.append(int(a) % ndim)
    if not allow_repeat:
        if len(set(out)) != len(out):
            raise ValueError(f"{op}: axis {axis!r} repeats an axis")
        out.sort()
    return tuple(out)


def one_axis(op, axis, ndim):
    """A single axis (an int), normalised."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    return normalize_axes(op, axis, ndim)[0] if ndim else 0


def resolve_reshape(old, new):
    """Fill in one -1 and check the element count."""
    size = math.prod(old)
    if list(new).count(-1) > 1:
        raise ValueError(f"reshape: only one size may be -1, got {shape_str(new)}")
    if any(n < -1 for n in new):
        raise ValueError(f"reshape: sizes must be >= 0 (or one -1), got {shape_str(new)}")
    known = math.prod(n for n in new if n != -1)
    if -1 in new:
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape {shape_str(old)} ({size} elements) "
                             f"into {shape_str(new)}")
        new = tuple(size // known if n == -1 else n for n in new)
    if math.prod(new) != size:
        raise ValueError(f"reshape: cannot reshape {shape_str(old)} ({size} elements) into "
                         f"{shape_str(new)} ({math.prod(new)} elements)")
    return tuple(new)


def broadcast_shape(op, *shapes):
    """The shape the arrays broadcast to, or a ValueError naming op and shapes."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{op}: shapes {shapes_str(shapes)} do not broadcast together") from None


def check_mask(op, array, shape, name="mask", target="the tensor's shape"):
    """A boolean mask (an ndarray); with `shape`, it must broadcast to it.
    `name` and `target` say in the errors what the mask and the shape are."""
    array = np.asarray(array)
    if array.dtype != np.bool_:
        meaning = " (True = masked)" if name == "mask" else ""
        raise TypeError(f"{op}: {name} must be boolean{meaning}, got dtype {array.dtype}")
    if shape is not None:
        try:
            fits = np.broadcast_shapes(array.shape, shape) == tuple(shape)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: {name} of shape {shape_str(array.shape)} does not broadcast "
                             f"to {target} {shape_str(shape)}")
    return array


def check_matmul(a, b):
    """a @ b's shapes (numpy's rules: batch dimensions broadcast, a 1-D operand
    is a row or a column vector)."""
    def pair():
        return f"{shape_str(a)} @ {shape_str(b)}"

    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"matmul: {pair()}: both operands need at least one dimension "
                         "(use * for scalars)")
    k_a, k_b = a[-1], b[-2] if len(b) > 1 else b[0]
    if k_a != k_b:
        raise ValueError(f"matmul: {pair()}: inner sizes {k_a} and {k_b} differ")
    if a[:-2] == b[:-2] or not a[:-2] or not b[:-2]:
        return  # the same batch dimensions, or none on one side
    try:
        np.broadcast_shapes(a[:-2], b[:-2])
    except ValueError:
        raise ValueError(f"matmul: {pair()}: batch dimensions {shape_str(a[:-2])} and "
                         f"{shape_str(b[:-2])} do not broadcast") from None


def numbers_array(value):
    """The number-to-array rule: `value` as an ndarray if it is a number, or an
    ndarray or (nested) list of numbers; None otherwise (None, strings, ragged
    lists, other objects)."""
    if not isinstance(value, (numbers.Number, np.generic, np.ndarray, list, tuple)):
        return None
    try:  # numpy 2 raises ValueError on ragged lists
        array = np.asarray(value)
    except (ValueError, TypeError):
        return None
    return array if array.dtype.kind in "biuf" else None


def integer_index(op, array, name="index"):
    """An integer index array as int64 (narrow widths such as int8 or uint8
    would wrap around in the flat-position arithmetic of a gather's backward;
    uint64 does not mix with int64)."""
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{op}: {name} holds values too large for an index")
    return array.astype(np.int64, copy=False)


def tensor_list(op, tensors, tensor_type):
    """The list of tensors that cat and stack join: at least one, all Tensors."""
    if isinstance(tensors, tensor_type):
        raise TypeError(f"{op}: takes a list of tensors, got one Tensor")
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: takes a list of tensors, got {type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    for i, t in enumerate(tensors):
        if not isinstance(t, tensor_type):
            raise TypeError(f"{op}: element {i} is a {type(t).__name__}, not a Tensor")
    return tensors


# numpy's words for mistakes a learner makes, and what to write instead
# (PyTorch's advice where PyTorch has the same rule)
_NUMPY_ADVICE = {
    "boolean subtract": "subtracting boolean tensors is not supported (nor in PyTorch): for "
                        "'one but not the other' use a ^ b, for 'a and not b' use a & ~b",
    "boolean negative": "negating a boolean tensor is not supported (nor in PyTorch): to "
                        "invert a mask use ~mask",
    "negative integer powers": "an integer tensor to a negative integer power is not an "
                               "integer (PyTorch refuses it too): use a float exponent "
                               "(x ** -1.0) or make x float first",
    "slice step cannot be zero": "a slice step cannot be zero",
}


def op_error(op, shapes, error):
    """A numpy error raised inside op's forward, said in the op's terms."""
    reason = str(error)
    if "broadcast" in reason:
        return ValueError(f"{op}: shapes {shapes_str(shapes)} do not broadcast together")
    reason = next((advice for words, advice in _NUMPY_ADVICE.items() if words in reason), reason)
    return type(error)(f"{op}: input{'s' if len(shapes) != 1 else ''} {shapes_str(shapes)}: "
                       f"{reason}")


# ----- PyTorch's argument names ------------------------------------------------
def torch_names(**aliases):
    """Let a function take PyTorch's keyword names besides ours:
    @torch_names(dim="axis", keepdim="keepdims") makes x.sum(dim=1, keepdim=True)
    mean x.sum(axis=1, keepdims=True). Giving both spellings is an error."""
    def decorate(fn):
        @functools.wraps(fn)
        def accepting(*args, **kwargs):
            if kwargs:
                for theirs, ours in aliases.items():
                    if theirs in kwargs:
                        if ours in kwargs:
                            raise TypeError(f"{fn.__name__}: got both {theirs}= and {ours}= "
                                            "(the same argument, PyTorch's and numpy's name)")
                        kwargs[ours] = kwargs.pop(theirs)
            return fn(*args, **kwargs)
        return accepting
    return decorate


DIM = dict(dim="axis", keepdim="keepdims")


# ----- einsum equations --------------------------------------------------------
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def einsum_plan(equation, shapes):
    """Read an einsum equation as numpy does and write it out in full: one
    letter per axis ("..." replaced by letters of its own), the output
    explicit. Returns (inputs, output, sizes): a letter string per operand,
    the output's letters, and each letter's size (a size-1 axis broadcasts
    against the others, as numpy allows)."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string such as 'ij,jk->ik', got "
                        f"{type(equation).__name__}")
    text = equation.replace(" ", "")
    given, arrow, output = text.partition("->")
    terms = given.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: equation {equation!r} has {len(terms)} operand"
                         f"{'s' if len(terms) != 1 else ''}, got {len(shapes)} tensors")
    for term in terms + [output]:
        bad = set(term.replace("...", "")) - set(_LETTERS)
        if bad or term.count("...") > 1:
            raise ValueError(f"einsum: equation {equation!r}: {term!r} is not letters with at "
                             "most one '...'")
    spare = iter(sorted(set(_LETTERS) - set(text)))
    ellipsis_ndim = max(len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes))
    ellipsis = "".join(next(spare) for _ in range(max(ellipsis_ndim, 0)))
    inputs = []
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        extra = len(shape) - named
        if extra < 0 or (extra and "..." not in term):
            raise ValueError(f"einsum: equation {equation!r}: operand {term!r} names {named} "
                             f"axes, but its tensor has shape {shape_str(shape)}")
        inputs.append(term.replace("...", ellipsis[len(ellipsis) - extra:]))
    if arrow:  # without '...' in the output, its axes are summed (PyTorch; numpy refuses)
        output = output.replace("...", ellipsis)
        unknown = set(output) - set("".join(inputs))
        if unknown or len(set(output)) != len(output):
            raise ValueError(f"einsum: equation {equation!r}: every output letter must appear "
                             "in an input, and only once in the output")
    else:  # numpy's implicit output: the '...' axes, then the letters used once, sorted
        letters = "".join(t.replace("...", "") for t in terms)
        output = ellipsis + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    sizes = {}
    for term, shape in zip(inputs, shapes):
        for letter, n in zip(term, shape):
            if sizes.get(letter, 1) != 1 and n not in (1, sizes[letter]):
                raise ValueError(f"einsum: equation {equation!r}: axis {letter!r} has sizes "
                                 f"{sizes[letter]} and {n} in shapes "
                                 f"{shapes_str(shapes, ', ')}")
            if n != 1 or letter not in sizes:
                sizes[letter] = n
    return inputs, output, sizes
