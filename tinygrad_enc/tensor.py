"""The engine: a Tensor, the graph it records, and the reverse-mode walk.

Read top to bottom:

1. Grad mode and the running module, kept per thread (as in PyTorch).
2. `apply`, the one place an op runs: it hands the tensors' arrays to the
   op's forward (ops.py, array math only), casts integer inputs of a
   float-valued op to float32, turns numpy's errors into errors that name the
   op and the shapes, and records the graph. The op object is kept on the
   output as `_ctx`, with its input tensors (`parents`) and whatever its
   forward saved. Arrows point from outputs back to inputs only: no reference
   cycles, so dropping the last output frees every intermediate array by
   reference counting alone. A library function may `release` sooner the
   values of a tensor it made, never hands out and no backward reads
   (attention's scores): the node stays in the graph, its array goes.
3. The walk: `backward()` visits the graph once, in reverse topological order
   found by an iterative depth-first search (no recursion, so no depth
   limit). A node's gradient is complete when it is visited; it is handed to
   its op's backward and dropped. Only leaves keep a `.grad`. Each tensor has
   a version counter, raised by every in-place change; the walk refuses an op
   whose inputs changed since it used them.
4. The Tensor, whose methods are one-liners over `apply`.
"""
import functools
import inspect
import math
import threading
import time

import numpy as np

from . import ops
from . import random as _random
from .checks import (DIM, broadcast_shape, check_mask, check_matmul, einsum_plan, integer,
                     integer_index, new_shape, normalize_axes, numbers_array, one_axis,
                     op_error, resolve_reshape, shape_arg, shape_str, shapes_str, tensor_list,
                     torch_names)
from .dtypes import as_dtype, promote


# ----- 1. grad mode and the running module, per thread -------------------------
class _ThreadState(threading.local):
    """What every op reads, for the thread it runs in: is the graph being
    recorded, which module's forward is running (nn.Module.__call__ sets it;
    ops keep it for viz), and who watches the ops (profile, detect_anomaly)."""
    grad_enabled = True
    scope = None
    observers = ()

    def __init__(self):
        self.saved_modes = []  # grad modes that no_grad blocks of this thread will restore


_state = _ThreadState()


def is_grad_enabled():
    return _state.grad_enabled


def current_scope():
    return _state.scope


def set_scope(scope):
    """Make `scope` current in this thread and return the one it replaces."""
    previous, _state.scope = _state.scope, scope
    return previous


def add_observer(observer):
    """Call `observer(phase, op, seconds, result)` after every forward and
    backward of an op in this thread: phase "forward" with the output array,
    "backward" with the gradients the op sends to its inputs (a tuple, or one
    array). While observed an op also keeps `scope` (the module that ran it)
    and `input_arrays`. Off (and free) when nobody observes."""
    _state.observers = _state.observers + (observer,)


def remove_observer(observer):
    # ==, not `is`: obj.method makes a new bound method object each time
    _state.observers = tuple(o for o in _state.observers if o != observer)


class no_grad:
    """Context manager and decorator: ops inside build no graph.

        with no_grad():
            y = model(x)          # y.requires_grad is False

        @no_grad                  # or @no_grad()
        def evaluate(model, x): ...

    Per thread, as in PyTorch: another thread keeps recording. Nestable (even
    re-entering one instance): each exit restores what its enter found. On a
    generator function grad is off inside the generator's body, and back to
    the caller's mode whenever it yields.
    """

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        return self if fn is None else self(fn)

    def __enter__(self):
        _state.saved_modes.append(_state.grad_enabled)
        _state.grad_enabled = False
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = _state.saved_modes.pop()
        return False

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                gen = fn(*args, **kwargs)
                step, value = gen.send, None
                while True:
                    try:
                        with no_grad():
                            request = step(value)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        value, step = (yield request), gen.send
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as e:  # noqa: BLE001  (handed on to the generator)
                        value, step = e, gen.throw
            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


def manual_seed(seed):
    """Seed every random thing the library does (weight init, dropout masks)."""
    _random.seed(seed)


# ----- 2. apply: run one op, record the graph -----------------------------------
def apply(op, *inputs, **kwargs):
    """Run primitive `op` (a class from ops.py) on tensors `inputs`; keyword
    arguments are the op's settings (axes, a mask, an index). Returns the
    output tensor, part of the graph if grad is enabled and some input
    requires grad."""
    arrays = [t.data for t in inputs]
    if op.float_result and not any(a.dtype.kind == "f" for a in arrays):
        arrays = [a.astype(np.float32) for a in arrays]  # PyTorch's default float dtype
    elif len(arrays) > 1:
        arrays = promote(arrays)  # PyTorch's dtype for several tensors (dtypes.py)
    ctx = op()
    try:
        if _state.observers:  # they may ask which module ran the op, and on what
            # (what it was: an op given overwrite=True writes its result into its input)
            ctx.scope = _state.scope
            ctx.input_arrays = [a.copy() for a in arrays] if kwargs.get("overwrite") else arrays
            data = _observed(ctx, "forward", ctx.forward, *arrays, **kwargs)
        else:
            data = ctx.forward(*arrays, **kwargs)
    except (ValueError, IndexError, TypeError) as e:
        raise op_error(ctx.op_name, [a.shape for a in arrays], e) from None
    out = Tensor._wrap(data if type(data) is np.ndarray else np.asarray(data))
    if _state.grad_enabled:
        needs_grad = tuple([t._requires_grad for t in inputs])
        ctx.parents, ctx.scope = inputs, _state.scope
        if True in needs_grad:
            ctx.needs_grad, ctx.versions = needs_grad, tuple([t._version for t in inputs])
            out._requires_grad, out._ctx = True, ctx
        else:  # no gradient flows here, so it stays a leaf; kept so that a drawing shows the op
            out._origin = ctx
    else:
        out._origin = ctx.op_name  # made under no_grad: a drawing says so (holds no arrays)
    return out


def _observed(ctx, phase, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    for observer in _state.observers:
        observer(phase, ctx, seconds, result)
    return result


class ReleasedValues:
    """What a tensor's `.data` holds after `release`: its shape and dtype
    (a drawing still shows the node, with its shape), and nothing else.
    Anything that reads its numbers raises, saying which tensor and why."""
    __slots__ = ("shape", "dtype", "what", "why")
    __array_ufunc__ = None  # numpy's ufuncs refuse it (a TypeError), never compute on it

    def __init__(self, shape, dtype, what, why):
        self.shape, self.dtype, self.what, self.why = shape, dtype, what, why

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))

    def _refuse(self, *args, **kwargs):
        raise RuntimeError(f"{self.what} {shape_str(self.shape)}: its values were not kept: "
                           f"{self.why}")

    __array__ = __getitem__ = __iter__ = __len__ = __float__ = __bool__ = _refuse

    def __getattr__(self, name):  # .mean(), .flags, .copy(): every other use of an array
        self._refuse()

    def __repr__(self):
        return f"<{self.what} {shape_str(self.shape)} {self.dtype}: values not kept>"


def release(tensor, why):
    """Drop the values of a tensor that a library function made, never hands
    out, and no backward reads (attention's scores, once softmax has made the
    weights from them). The graph keeps the tensor as a node, so a drawing
    still shows it; its array is freed now instead of when the graph goes.
    (PyTorch's autograd holds only what a backward saved; this graph holds
    every node's values, so the largest ones nobody reads are let go here.)"""
    made_by = tensor._ctx or getattr(tensor, "_origin", None)
    what = tensor.name or getattr(made_by, "op_name", "tensor")
    tensor.data = ReleasedValues(tensor.data.shape, tensor.data.dtype, what, why)


# ----- 3. the graph walk ---------------------------------------------------------
def topological_order(root, include_constants=False):
    """The tensors behind `root`, each once, every tensor after the tensors it
    was computed from (post-order of an iterative depth-first search, first
    inputs first). Only those that require grad, unless `include_constants`
    (viz draws those too, and the ops kept for drawing only: `_origin`, see apply)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        ctx = tensor._ctx
        if ctx is None and include_constants:
            ctx = getattr(tensor, "_origin", None)
            ctx = None if isinstance(ctx, str) else ctx  # run under no_grad: its inputs are unknown
        if ctx is not None:
            stack.extend((parent, False) for parent in reversed(ctx.parents)
                         if (include_constants or parent._requires_grad)
                         and id(parent) not in visited)
    return order


def walk_backward(root, grad=None, on_edge=None, reuse=False):
    """Yield (tensor, gradient) for every tensor of the graph behind `root`
    that requires grad, outputs before inputs; each gradient is complete when
    yielded. `backward` keeps the leaves' gradients. `on_edge(parent,
    consumer, g)`, if given, is told of every gradient an op sends to one of
    its inputs (viz labels the edges with them).

    reuse=True promises that the caller keeps no yielded gradient of a tensor
    an op made (backward keeps only the leaves'). The walk may then let an
    op's backward overwrite the gradient it is given, when the walk holds the
    only reference to it: a sum the walk made, or a gradient an op with
    `fresh_grads` returned (so an array of the activations' size is reused
    instead of made again; ops.Op.overwrites_grad)."""
    if not root._requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input of the "
                           "ops that made it had requires_grad=True, or it was made under no_grad)")
    if grad is None:
        if root.size != 1:
            raise RuntimeError(f"backward: the output has shape {shape_str(root.shape)}; "
                               "backward() without a gradient needs a scalar (one element). "
                               "Reduce it first (.sum(), .mean()) or pass grad=")
        grad = np.ones(root.shape, dtype=root.dtype)
    else:
        given = numbers_array(grad.data if isinstance(grad, Tensor) else grad)
        if given is None:
            raise TypeError("backward: grad must be an array or Tensor of numbers of the "
                            f"output's shape {shape_str(root.shape)}, got {type(grad).__name__}")
        grad = given.astype(root.dtype)  # cast as PyTorch does; a copy the walk may own
        if grad.shape != root.shape:
            raise ValueError(f"backward: grad has shape {shape_str(grad.shape)} but the output "
                             f"has shape {shape_str(root.shape)}")
    grads = {id(root): grad}
    owned = set()  # keys whose gradient only the walk holds: sums go into it in place
    reuse = reuse and on_edge is None  # on_edge may keep what it is told
    observing = bool(_state.observers)
    for tensor in reversed(topological_order(root)):
        key = id(tensor)
        g = grads.pop(key, None)
        if g is None:  # no consumer passed a gradient back
            continue
        yield tensor, g
        ctx = tensor._ctx
        if ctx is None:
            owned.discard(key)
            continue
        _check_versions(tensor, ctx)
        # g is the op's to overwrite if only the walk holds it (and the caller keeps no yielded g)
        args = (g, True) if reuse and key in owned and ctx.overwrites_grad else (g,)
        owned.discard(key)
        sent = _observed(ctx, "backward", ctx.backward, *args) if observing else ctx.backward(*args)
        if type(sent) is not tuple:
            sent = (sent,)
        fresh = reuse and ctx.fresh_grads
        for parent, needs, pg in zip(ctx.parents, ctx.needs_grad, sent):
            if not needs or pg is None:
                continue
            pg = unbroadcast(pg, parent.shape)
            if on_edge is not None:
                on_edge(parent, tensor, pg)
            key = id(parent)
            if key not in grads:
                grads[key] = pg
                if fresh and pg is not g:  # not g itself, which an op may hand back (softmax)
                    owned.add(key)
            elif key in owned and np.result_type(grads[key], pg) == grads[key].dtype:
                grads[key] += pg  # an array only the walk holds
            else:  # out of place: a backward may hand the same array to two inputs
                grads[key] = grads[key] + pg
                owned.add(key)


def _check_versions(tensor, ctx):
    """Refuse to run op `ctx`'s backward if its output or an input was changed
    in place after the op ran: its saved arrays no longer match."""
    if tensor._version == ctx.out_version and \
            tuple([p._version for p in ctx.parents]) == ctx.versions:
        return  # the usual case, checked without building a message or a generator
    if tensor._version != ctx.out_version:
        changed = f"its output {shape_str(tensor.shape)}"
    else:
        changed = next((f"its input {i} {shape_str(p.shape)}"
                        for i, (p, v) in enumerate(zip(ctx.parents, ctx.versions))
                        if p._version != v), None)
        if changed is None:
            return
    where = f" (in module {ctx.scope.path or ctx.scope.kind})" if ctx.scope is not None else ""
    raise RuntimeError(f"backward: {changed} of {ctx.op_name}{where} was changed in place (by an "
                       "in-place operator, an optimizer step or load_state_dict) after "
                       f"{ctx.op_name} used it, so the gradient would mix old and new values. "
                       "Run the forward pass again after changing the tensor")


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`: undo numpy broadcasting (leading axes that
    were added, and axes of size 1 that were stretched)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


# ----- 4. the Tensor -------------------------------------------------------------
def _float_dtype(dtype):
    return dtype.kind == "f"


def as_float(tensor):
    """An integer or boolean tensor as float32, PyTorch's default dtype, for an
    op whose result is a float (numpy would make float64); a float one as is.
    Integer tensors never require grad, so the cast needs no graph."""
    if _float_dtype(tensor.dtype):
        return tensor
    return Tensor._wrap(tensor.data.astype(np.float32))


class Tensor:
    """An n-dimensional array that remembers how it was made.

    Tensor(data, requires_grad=False, dtype=None): `data` is an ndarray, a
    nested list or a number. Floating data becomes float32 unless `dtype` says
    otherwise (pass dtype=np.float64 for gradient checks); integer and boolean
    data keep their type (indices and masks) and cannot require grad.

    Dtypes of results: a number or array meeting a float tensor takes its
    dtype (float32 * 0.5 stays float32). Where integer or boolean tensors give
    a float result (a float number operand, division, exp, softmax, ...) it is
    float32, as in PyTorch. Tensors of several dtypes meeting in an op follow
    PyTorch's promotion (dtypes.py): int32 / float32 is float32.
    """
    # _base, set on views only (see _view_of): the tensor whose array this one's is a view of;
    # _origin (unset on tensors no op made): for a leaf an op made, that op with its inputs
    # (grad on, no input required grad) or its name (made under no_grad); read by viz only
    __slots__ = ("data", "_grad", "_requires_grad", "_ctx", "name", "_version", "_base",
                 "_origin", "__weakref__")
    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        try:  # numpy 2 raises ValueError on ragged lists instead of making objects
            array = np.asarray(data) if dtype is None else np.asarray(data, dtype=dtype)
        except (ValueError, TypeError):
            array = None
        if array is not None and dtype is not None and array.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: dtype {array.dtype} is not boolean, integer or "
                            "floating-point")
        if array is None or array.dtype.kind not in "biuf":
            hint = ("; to join tensors use Tensor.stack" if isinstance(data, (list, tuple)) and
                    any(isinstance(d, Tensor) for d in data) else "")
            raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} "
                            f"(ragged lists, non-numbers, or integers beyond int64){hint}")
        if dtype is None and _float_dtype(array.dtype) and array.dtype != np.float32:
            array = array.astype(np.float32)  # the one conversion: a fresh array
        elif isinstance(data, np.ndarray) and np.may_share_memory(array, data):
            array = array.copy()  # the tensor owns its data (torch.tensor copies too)
        self._own(array, requires_grad)

    def _own(self, array, requires_grad):
        """Take `array`, made for this tensor alone, as its data (no copy)."""
        if array.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: dtype {array.dtype} is not boolean, integer or floating-point")
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"Tensor: requires_grad must be True or False, got {requires_grad!r}")
        if requires_grad and not _float_dtype(array.dtype):
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype "
                            f"{array.dtype} (integer tensors hold indices, boolean ones masks)")
        self.data, self._grad, self._requires_grad, self._ctx, self.name, self._version = (
            array, None, bool(requires_grad), None, None, 0)
        return self

    @classmethod
    def _wrap(cls, array):
        """A tensor around an op's output array, without copying or casting it."""
        t = cls.__new__(cls)
        t.data, t._grad, t._requires_grad, t._ctx, t.name, t._version = (
            array, None, False, None, None, 0)
        return t

    # ----- requires_grad and grad: checked when assigned --------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"requires_grad: must be True or False, got {value!r}")
        if value and not _float_dtype(self.dtype):
            raise TypeError(f"requires_grad: only floating-point tensors can require grad, got "
                            f"dtype {self.dtype} (integer tensors hold indices, boolean ones masks)")
        if self._ctx is not None and not value:
            raise RuntimeError("requires_grad: this tensor was made by an op in the graph; only "
                               "a leaf's flag can be changed (use .detach() for a copy without "
                               "grad)")
        self._requires_grad = bool(value)

    @property
    def grad(self):
        """The accumulated gradient (an ndarray of this tensor's shape and dtype), or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            value = value.data if isinstance(value, Tensor) else value
            if not isinstance(value, np.ndarray):
                raise TypeError(f"grad: must be None or an ndarray, got {type(value).__name__}")
            if value.shape != self.shape:
                raise ValueError(f"grad: assigned a gradient of shape {shape_str(value.shape)} "
                                 f"to a tensor of shape {shape_str(self.shape)}")
            if value.dtype != self.dtype:
                raise TypeError(f"grad: assigned a {value.dtype} gradient to a {self.dtype} "
                                f"tensor")
        self._grad = value

    # ----- plain attributes -------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._ctx is None)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        """Iterating gives the rows, x[0], x[1], ... (a 0-d tensor has none:
        an error, as in PyTorch, not an empty loop)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def numpy(self):
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element has an item, got shape "
                             f"{shape_str(self.shape)}")
        return self.data.item()

    def detach(self):
        """The same values, cut from the graph (shares memory, like PyTorch)."""
        out = self._view_of(Tensor._wrap(self.data))
        out._origin = "detach"  # a drawing says where the graph was cut
        return out

    def __repr__(self):
        made_by = f", op={self._ctx.op_name}" if self._ctx is not None else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return (f"Tensor(shape={shape_str(self.shape)}, dtype={self.dtype}{made_by}{grad})\n"
                f"{self.data!r}")

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"bool: the truth value of a tensor of shape {shape_str(self.shape)} "
                             "is ambiguous; use .any() / .all() on .data")
        return bool(self.data)

    def __hash__(self):
        return id(self)

    # ----- backward ---------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) * grad into every leaf's `.grad`.

        From a scalar `grad` defaults to 1; otherwise pass the upstream
        gradient, an array of self's shape. The graph is kept, so a second call
        adds the same leaf gradients again (like PyTorch with retain_graph).
        """
        for tensor, g in walk_backward(self, grad, reuse=True):  # only the leaves' are kept
            if tensor._ctx is None:
                # a new array each time, never written in place: it may be an
                # array the caller assigned to .grad, or one a backward shares
                tensor._grad = (np.array(g, dtype=tensor.dtype, copy=True) if tensor._grad is None
                                else np.add(tensor._grad, g, dtype=tensor.dtype))

    def zero_grad(self):
        self.grad = None

    # ----- constructors: each array built once, in its dtype ------------------
    @staticmethod
    def zeros(*shape, dtype=np.float32, requires_grad=False):
        return Tensor.__new__(Tensor)._own(np.zeros(new_shape("zeros", shape), dtype), requires_grad)

    @staticmethod
    def ones(*shape, dtype=np.float32, requires_grad=False):
        return Tensor.__new__(Tensor)._own(np.ones(new_shape("ones", shape), dtype), requires_grad)

    @staticmethod
    def randn(*shape, dtype=np.float32, requires_grad=False):
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"randn: dtype must be float32 or float64, got {np.dtype(dtype)}")
        data = _random.generator().standard_normal(new_shape("randn", shape), dtype=dtype)
        return Tensor.__new__(Tensor)._own(data, requires_grad)

    # ----- arithmetic (numpy broadcasting) ----------------------------------
    def _operand(self, other, op):
        """What meets this tensor in `op`, as a tensor: a Python or numpy number,
        or an ndarray or list of numbers, becomes a constant of this tensor's
        float dtype (so float32 stays float32); meeting an integer or boolean
        tensor, float numbers become float32. Anything else (None, a string)
        is a TypeError naming the op: numpy would turn None into NaN."""
        if isinstance(other, Tensor):
            return other
        array = numbers_array(other)
        if array is None:
            raise TypeError(f"{op}: cannot combine a {self.dtype} tensor with "
                            f"{type(other).__name__} (only tensors, numbers, and arrays or "
                            "lists of numbers)")
        if _float_dtype(self.dtype):
            return Tensor._wrap(array.astype(self.dtype, copy=False))
        return Tensor(array)

    def _operands(self, other, op):
        """self and `other` for a binary op. An integer or boolean tensor
        meeting float numbers becomes float32 too, PyTorch's default dtype
        (numpy would compute in float64)."""
        if isinstance(other, Tensor):
            return self, other
        other = self._operand(other, op)
        return (as_float(self) if _float_dtype(other.dtype) else self), other

    def __add__(self, other): return apply(ops.Add, *self._operands(other, "add"))
    def __radd__(self, other): return apply(ops.Add, *self._operands(other, "add")[::-1])
    def __sub__(self, other): return apply(ops.Sub, *self._operands(other, "sub"))
    def __rsub__(self, other): return apply(ops.Sub, *self._operands(other, "sub")[::-1])
    def __mul__(self, other): return apply(ops.Mul, *self._operands(other, "mul"))
    def __rmul__(self, other): return apply(ops.Mul, *self._operands(other, "mul")[::-1])
    def __truediv__(self, other): return apply(ops.Div, *self._operands(other, "div"))
    def __rtruediv__(self, other): return apply(ops.Div, *self._operands(other, "div")[::-1])
    def __neg__(self): return apply(ops.Neg, self)
    def __matmul__(self, other): return _matmul(*self._operands(other, "matmul"))
    def __rmatmul__(self, other): return _matmul(*self._operands(other, "matmul")[::-1])

    # ----- in place: x += y, x -= y, x *= y, x /= y -------------------------
    def __iadd__(self, other): return self._in_place(ops.Add, np.add, other, "+=")
    def __isub__(self, other): return self._in_place(ops.Sub, np.subtract, other, "-=")
    def __imul__(self, other): return self._in_place(ops.Mul, np.multiply, other, "*=")
    def __itruediv__(self, other): return self._in_place(ops.Div, np.true_divide, other, "/=")

    def __ipow__(self, exponent):
        # defined, so that x **= 2 does not silently make a new tensor (Python's fallback)
        if isinstance(exponent, (bool, np.bool_)) or not isinstance(
                exponent, (int, float, np.integer, np.floating)):
            raise TypeError(f"**=: the exponent must be a number, got {exponent!r}")
        return self._in_place(ops.Pow, np.power, exponent, "**=")

    def _in_place(self, op, ufunc, other, symbol):
        """Change this tensor's values, keeping the object (a module still holds
        it). Without a graph (under no_grad, the hand-written update
        `p -= lr * p.grad`) the array is written in place, and a tensor this
        one is a view of (made by indexing, reshape, transpose or detach) sees
        the change. In a graph, the tensor becomes the op's output node, with
        a new array. Either way its version goes up (and its base's), so a
        graph that used the old values refuses to backward through them."""
        other = self._operand(other, symbol)
        if broadcast_shape(symbol, self.shape, other.shape) != self.shape:
            raise ValueError(f"{symbol}: the result's shape "
                             f"{shape_str(np.broadcast_shapes(self.shape, other.shape))} is not "
                             f"the tensor's shape {shape_str(self.shape)}")
        result_type = np.result_type(self.data, other.data) if not op.float_result or \
            _float_dtype(self.dtype) else np.dtype(np.float32)
        if not np.can_cast(result_type, self.dtype, "same_kind"):
            raise TypeError(f"{symbol}: the result is {result_type}, which a {self.dtype} tensor "
                            f"cannot hold in place (PyTorch: 'result type can't be cast to the "
                            f"desired output type'); write x = x {symbol[0]} y for a new tensor")
        base = getattr(self, "_base", None)
        recording = _state.grad_enabled and (self._requires_grad or other._requires_grad)
        if recording and self._ctx is None and self._requires_grad:
            raise RuntimeError(f"{symbol}: a leaf tensor that requires grad cannot be changed in "
                               "place while the graph is recorded (PyTorch: 'a leaf Variable that "
                               "requires grad is being used in an in-place operation'). For a "
                               "weight update use `with no_grad():`, or write x = x "
                               f"{symbol[0]} y")
        if recording and base is not None:
            raise RuntimeError(f"{symbol}: this tensor is a view of another one (made by "
                               "indexing, reshape, transpose or detach); changing a view in place "
                               "while the graph is recorded is not supported. Write "
                               f"y = y {symbol[0]} z for a new tensor")
        if recording:
            before = Tensor._wrap(self.data)  # the old value, as its own node of the graph
            before._requires_grad, before._ctx, before._version = (
                self._requires_grad, self._ctx, self._version)
            out = apply(op, before, before if other is self else other)
            self.data, self._ctx, self._requires_grad = (
                out.data.astype(self.dtype, copy=False), out._ctx, True)
            self._version += 1
            out._ctx.out_version = self._version
            return self
        if not self.data.flags.writeable:
            raise ValueError(f"{symbol}: this tensor's array is read-only (a broadcast view, made "
                             "by expand, or an array numpy lent); write x = x "
                             f"{symbol[0]} y for a new tensor")
        try:
            ufunc(self.data, other.data, out=self.data, casting="same_kind")
        except (ValueError, TypeError) as e:
            raise op_error(symbol, [self.shape, other.shape], e) from None
        self._changed()
        return self

    def __setitem__(self, index, value):
        """x[index] = value writes into x's array, as numpy does (and x[i] += y
        changes x), outside a graph only: under no_grad, or on a tensor that
        does not require grad. In a graph write x = x.masked_fill(mask, v) or
        Tensor.where(mask, v, x)."""
        value = self._operand(value, "setitem")
        if _state.grad_enabled and (self._requires_grad or value._requires_grad):
            raise RuntimeError("setitem: x[index] = value is not recorded in the graph (x or the "
                               "value requires grad); use masked_fill or Tensor.where for a new "
                               "tensor, or write it under no_grad() (a weight update)")
        if not self.data.flags.writeable:
            raise ValueError("setitem: this tensor's array is read-only (a broadcast view, made "
                             "by expand, or an array numpy lent)")
        if not np.can_cast(value.dtype, self.dtype, "same_kind"):
            raise TypeError(f"setitem: a {value.dtype} value cannot be written into a "
                            f"{self.dtype} tensor")
        try:
            self.data[_plain_index(index)] = value.data
        except (ValueError, IndexError, TypeError) as e:
            raise op_error("setitem", [self.shape, value.shape], e) from None
        self._changed()

    def _changed(self):
        """Count one in-place change of this tensor, and of every tensor it is a view of."""
        changed = self
        while changed is not None:
            changed._version += 1
            changed = getattr(changed, "_base", None)

    def _view_of(self, out):
        """`out`, remembering that its array is a view of this tensor's, so that
        an in-place change of `out` also counts as a change of this tensor."""
        if np.may_share_memory(out.data, self.data):
            out._base = self
        return out

    def __pow__(self, exponent):
        if isinstance(exponent, (Tensor, np.ndarray, list)):  # a tensor exponent
            return apply(ops.Power, *self._operands(exponent, "pow"))
        if not isinstance(exponent, (int, float, np.integer, np.floating)):
            raise TypeError(f"pow: the exponent must be a number or a tensor, got "
                            f"{type(exponent).__name__}")
        # a Python number: a numpy float64 exponent would make float32 x float64
        if isinstance(exponent, np.generic):
            exponent = exponent.item()
        base = as_float(self) if isinstance(exponent, float) else self
        return apply(ops.Pow, base, exponent=exponent)

    def __rpow__(self, base):
        """number ** x, by the Power op (a negative base works as in PyTorch)."""
        return apply(ops.Power, *self._operands(base, "pow")[::-1])

    # comparisons: plain boolean tensors, no graph
    def _compare(self, other, fn, op):
        if isinstance(other, Tensor):
            other = other.data
        elif numbers_array(other) is None:
            if op in ("eq", "ne"):  # x == None is False, as in PyTorch (and `in` works)
                return NotImplemented
            raise TypeError(f"{op}: cannot compare a {self.dtype} tensor with "
                            f"{type(other).__name__}")
        try:
            return Tensor._wrap(np.asarray(fn(self.data, other)))  # 0-d: numpy gives a scalar
        except ValueError:
            raise ValueError(f"{op}: shapes {shape_str(self.shape)} and "
                             f"{shape_str(np.shape(other))} do not broadcast together") from None

    def __eq__(self, other): return self._compare(other, np.equal, "eq")
    def __ne__(self, other): return self._compare(other, np.not_equal, "ne")
    def __lt__(self, other): return self._compare(other, np.less, "lt")
    def __le__(self, other): return self._compare(other, np.less_equal, "le")
    def __gt__(self, other): return self._compare(other, np.greater, "gt")
    def __ge__(self, other): return self._compare(other, np.greater_equal, "ge")

    # ----- elementwise math -------------------------------------------------
    def exp(self): return apply(ops.Exp, self)
    def log(self): return apply(ops.Log, self)
    def sqrt(self): return apply(ops.Sqrt, self)
    def tanh(self): return apply(ops.Tanh, self)
    def sigmoid(self): return apply(ops.Sigmoid, self)
    def relu(self): return apply(ops.ReLU, self)
    def abs(self): return apply(ops.Abs, self)

    def gelu(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return apply(ops.GELU, self, approximate=approximate)

    # ----- reductions -------------------------------------------------------
    @torch_names(**DIM)
    def sum(self, axis=None, keepdims=False):
        return apply(ops.Sum, self, axis=normalize_axes("sum", axis, self.ndim), keepdims=keepdims)

    @torch_names(**DIM)
    def max(self, axis=None, keepdims=False):
        """Largest value; the gradient is shared equally among tied maxima.
        The values only, over `axis` too (PyTorch's max(dim) also returns the
        indices: use argmax). x.max(other_tensor) is maximum(x, other)."""
        if isinstance(axis, Tensor):
            return self.maximum(axis)
        if self.size == 0:
            raise ValueError(f"max: empty tensor of shape {shape_str(self.shape)} has no maximum")
        return apply(ops.Max, self, axis=normalize_axes("max", axis, self.ndim), keepdims=keepdims)

    @torch_names(**DIM)
    def mean(self, axis=None, keepdims=False):
        """mean(x) = sum(x) * (1 / count); over an empty axis NaN (0 / 0), as numpy
        and PyTorch."""
        axes = normalize_axes("mean", axis, self.ndim)
        count = math.prod(self.shape[a] for a in axes)
        return self.sum(axes, keepdims) * (1.0 / count if count else float("nan"))

    @torch_names(**DIM)
    def var(self, axis=None, keepdims=False, correction=0, unbiased=None):
        """var(x, correction) = sum((x - mean x)^2) / (n - correction).

        correction=0 by default, the population variance (numpy's ddof=0), which
        is what layer norm divides by: the contract keeps it so that
        x.var() is the variance LayerNorm uses. PyTorch's default is
        correction=1; pass correction=1 or unbiased=True for it (std does)."""
        axes = normalize_axes("var", axis, self.ndim)  # so that errors name var, not mean
        if unbiased is not None:
            if correction not in (0, None):
                raise TypeError("var: give correction= or unbiased=, not both")
            correction = int(bool(unbiased))
        correction = 0 if correction is None else correction
        if isinstance(correction, bool) or not isinstance(correction, (int, float, np.integer,
                                                                       np.floating)):
            raise TypeError(f"var: correction must be a number, got {correction!r}")
        centered = self - self.mean(axes, keepdims=True)
        if correction == 0:
            return (centered * centered).mean(axes, keepdims)
        count = math.prod(self.shape[a] for a in axes)
        dof = max(count - correction, 0)  # PyTorch: n - correction <= 0 gives inf/NaN
        return (centered * centered).sum(axes, keepdims) * (1.0 / dof if dof else float("inf"))

    # ----- shape ------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape_arg("reshape", shape)
        return self._view_of(apply(ops.Reshape, self, shape=resolve_reshape(self.shape, shape)))

    view = reshape

    def permute(self, *axes):
        given = shape_arg("permute", axes)
        axes = normalize_axes("permute", given, self.ndim, allow_repeat=True)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute: axes {given} are not a permutation of the "
                             f"{self.ndim} axes of shape {shape_str(self.shape)}")
        return self._view_of(apply(ops.Permute, self, axes=axes))

    @torch_names(dim0="a", dim1="b")
    def transpose(self, a=-2, b=-1):
        """Swap axes a and b (default: the last two, as for K^T)."""
        pair = normalize_axes("transpose", (a, b), self.ndim, allow_repeat=True)
        axes = list(range(self.ndim))
        if pair:  # a 0-d tensor has nothing to swap
            a, b = pair
            axes[a], axes[b] = axes[b], axes[a]
        return self._view_of(apply(ops.Permute, self, axes=tuple(axes)))

    @property
    def T(self):
        return self._view_of(apply(ops.Permute, self, axes=tuple(reversed(range(self.ndim)))))

    def expand(self, *shape):
        """Broadcast to `shape` without copying; -1 keeps an axis's size."""
        shape = shape_arg("expand", shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: cannot expand shape {shape_str(self.shape)} to fewer "
                             f"dimensions {shape_str(shape)}")
        target = tuple(self.shape[i - lead] if n == -1 and i >= lead else n
                       for i, n in enumerate(shape))
        try:
            fits = np.broadcast_shapes(self.shape, target) == target
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"expand: shape {shape_str(self.shape)} cannot be expanded to "
                             f"{shape_str(target)} (only axes of size 1 can grow)")
        return apply(ops.Expand, self, shape=target)

    def __getitem__(self, index):
        """numpy's indexing, except that integers mixed with index arrays select
        first, as in PyTorch: x[:, 0, :, [0, 1]] of a (2, 3, 4, 5) tensor is
        (2, 4, 2) (numpy would give (2, 2, 4))."""
        index = _plain_index(index)
        integers_first = _integers_first(index)
        if integers_first is not None:
            return self[integers_first[0]][integers_first[1]]
        return self._view_of(apply(ops.GetItem, self, index=index))

    def masked_fill(self, mask, value):
        """Where `mask` is True put `value`; mask is boolean and broadcasts to
        self's shape (True = replace, as in PyTorch's attention masks). `value`
        is a number or a 0-d tensor, as in PyTorch; one that requires grad gets
        the sum of the gradient over the filled places (Tensor.where does it)."""
        mask = check_mask("masked_fill", array_of(mask), self.shape)
        value = self._operand(value, "masked_fill")
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape "
                             f"{shape_str(value.shape)}")
        if value.requires_grad:
            return Tensor.where(mask, value, self)
        return apply(ops.MaskedFill, self, mask=mask, value=value.data)

    @torch_names(dim="axis")
    def split(self, size, axis=0):
        """split(x, size, axis) = [x[..., start:stop] for each piece]: cut along
        `axis` into pieces of `size` (the last may be shorter), or into pieces
        of the sizes in a list, as torch.split does. The pieces are slices:
        views of x, no copies."""
        if self.ndim == 0:
            raise ValueError("split: a 0-d tensor has no axis to split")
        axis = one_axis("split", axis, self.ndim)
        length = self.shape[axis]
        if isinstance(size, (list, tuple)):
            sizes = [integer("split", "a size", n) for n in size]
            if any(n < 0 for n in sizes):
                raise ValueError(f"split: sizes {sizes} include a negative size")
            if sum(sizes) != length:
                raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis "
                                 f"{axis} of shape {shape_str(self.shape)} has {length}")
        else:
            size = integer("split", "size", size)
            if size <= 0:
                raise ValueError(f"split: size must be positive, got {size}")
            sizes = [min(size, length - start) for start in range(0, length, size)]
        bounds = np.cumsum([0] + sizes)
        lead = (slice(None),) * axis
        return [self[lead + (slice(int(a), int(b)),)] for a, b in zip(bounds[:-1], bounds[1:])]

    @staticmethod
    @torch_names(dim="axis")
    def cat(tensors, axis=0):
        """Join tensors along an existing axis; all other sizes must match."""
        tensors = tensor_list("cat", tensors, Tensor)
        first = tensors[0]
        if first.ndim == 0:
            raise ValueError("cat: 0-d tensors have no axis to join along; use Tensor.stack")
        axis = normalize_axes("cat", axis, first.ndim)[0]
        for t in tensors[1:]:
            if t.ndim != first.ndim or any(
                    a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
                raise ValueError(f"cat: shapes {[shape_str(t.shape) for t in tensors]} differ "
                                 f"outside axis {axis}")
        return apply(ops.Cat, *tensors, axis=axis)

    @staticmethod
    @torch_names(dim="axis")
    def stack(tensors, axis=0):
        """stack(ts, axis) = cat([t with a new axis of size 1 at axis, ...], axis):
        same-shaped tensors joined along a new axis."""
        tensors = tensor_list("stack", tensors, Tensor)
        shapes = {t.shape for t in tensors}
        if len(shapes) != 1:
            raise ValueError(f"stack: all tensors must have one shape, got "
                             f"{[shape_str(t.shape) for t in tensors]}")
        axis = normalize_axes("stack", axis, tensors[0].ndim + 1)[0]
        grown = [t.reshape(t.shape[:axis] + (1,) + t.shape[axis:]) for t in tensors]
        return apply(ops.Cat, *grown, axis=axis)

    @staticmethod
    def where(condition, a, b):
        """a where condition is True, else b (boolean condition; a, b tensors or
        numbers, all broadcast together)."""
        if not isinstance(a, Tensor):
            if isinstance(b, Tensor):
                b, a = b._operands(a, "where")
            elif numbers_array(a) is not None:
                a = Tensor(a)
            else:
                raise TypeError(f"where: a must be a tensor or numbers, got {type(a).__name__}")
        a, b = a._operands(b, "where")
        condition = check_mask("where", array_of(condition), None, name="condition")
        try:
            np.broadcast_shapes(condition.shape, a.shape, b.shape)
        except ValueError:
            raise ValueError(f"where: condition {shape_str(condition.shape)}, a "
                             f"{shape_str(a.shape)} and b {shape_str(b.shape)} do not "
                             "broadcast together") from None
        return apply(ops.Where, a, b, condition=condition)

    # ===== API breadth: composed from the primitives (docs/primitives.md) =====
    # A function whose docstring starts "name(x) = ..." is composed, and that
    # line is its definition in the table; the others run one primitive.

    # ----- shape ------------------------------------------------------------
    @torch_names(dim="axis")
    def unsqueeze(self, axis):
        """unsqueeze(x, axis) = reshape(x) with a new axis of size 1 at `axis`."""
        axis = normalize_axes("unsqueeze", integer("unsqueeze", "dim", axis), self.ndim + 1)[0]
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    @torch_names(dim="axis")
    def squeeze(self, axis=None):
        """squeeze(x, axis) = reshape(x) without its axes of size 1: all of them, or
        those of `axis` (an axis of another size stays, as in PyTorch)."""
        axes = normalize_axes("squeeze", axis, self.ndim)
        return self.reshape(tuple(n for i, n in enumerate(self.shape)
                                  if not (i in axes and n == 1)))

    @torch_names(start_dim="start_axis", end_dim="end_axis")
    def flatten(self, start_axis=0, end_axis=-1):
        """flatten(x, start, end) = reshape(x) with axes start..end as one."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (one_axis("flatten", a, self.ndim) for a in (start_axis, end_axis))
        if start > end:
            raise ValueError(f"flatten: start_dim {start_axis} comes after end_dim {end_axis}")
        return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])

    @torch_names(dim="axis")
    def unflatten(self, axis, sizes):
        """unflatten(x, axis, sizes) = reshape(x) with `axis` split into `sizes`
        (one may be -1)."""
        axis = one_axis("unflatten", axis, self.ndim)
        given = shape_arg("unflatten", (sizes,))
        try:
            sizes = resolve_reshape((self.shape[axis],), given)
        except ValueError:
            raise ValueError(f"unflatten: sizes {given} do not multiply to {self.shape[axis]}, "
                             f"the size of axis {axis} of shape {shape_str(self.shape)}") from None
        return self.reshape(self.shape[:axis] + sizes + self.shape[axis + 1:])

    def repeat(self, *times):
        """repeat(x, times) = reshape(expand(x as (1, n_0, 1, n_1, ...) to
        (t_0, n_0, t_1, n_1, ...))): the whole tensor tiled `times` (torch's
        repeat, numpy's tile; not numpy's repeat)."""
        times = shape_arg("repeat", times)
        if len(times) < self.ndim or any(t < 0 for t in times):
            raise ValueError(f"repeat: needs a count >= 0 per axis of shape "
                             f"{shape_str(self.shape)} (or more, for new leading axes), "
                             f"got {times}")
        shape = (1,) * (len(times) - self.ndim) + self.shape
        grid = tuple(n for pair in zip((1,) * len(shape), shape) for n in pair)
        tiled = tuple(n for pair in zip(times, shape) for n in pair)
        return self.reshape(grid).expand(tiled).reshape(tuple(t * n for t, n in zip(times, shape)))

    def flip(self, *axes, dims=None):
        """flip(x, axes) = x[..., ::-1, ...]: reversed along each of `axes`
        (x.flip(0, 1), x.flip((0, 1)) or x.flip(dims=(0, 1)))."""
        if dims is not None:
            axes = (dims,) if axes == () else None
            if axes is None:
                raise TypeError("flip: give the axes once, as arguments or as dims=")
        axes = normalize_axes("flip", shape_arg("flip", axes), self.ndim)
        return self[tuple(slice(None, None, -1) if i in axes else slice(None)
                          for i in range(self.ndim))]

    @torch_names(dim="axis")
    def chunk(self, chunks, axis=0):
        """chunk(x, n, axis) = split(x, ceil(size / n), axis): at most n pieces, as
        torch.chunk (an empty axis gives n empty pieces)."""
        chunks = integer("chunk", "chunks", chunks, minimum=1)
        if self.ndim == 0:
            raise ValueError("chunk: a 0-d tensor has no axis to cut")
        axis = one_axis("chunk", axis, self.ndim)
        length = self.shape[axis]
        if length == 0:
            return [self[(slice(None),) * axis + (slice(0, 0),)] for _ in range(chunks)]
        return self.split(-(-length // chunks), axis)

    def dim(self):
        """The number of axes, PyTorch's spelling of ndim."""
        return self.ndim

    def numel(self):
        """The number of elements, PyTorch's spelling of size (PyTorch's
        x.size() is the shape: here x.shape)."""
        return self.size

    # ----- reductions -------------------------------------------------------
    @torch_names(**DIM)
    def min(self, axis=None, keepdims=False):
        """min(x) = -max(-x): the smallest value (ties share the gradient).
        x.min(other_tensor) is minimum(x, other), as in PyTorch."""
        if isinstance(axis, Tensor):
            return self.minimum(axis)
        if not _float_dtype(self.dtype):  # no gradient to keep: numpy's own
            axes = normalize_axes("min", axis, self.ndim)
            if self.size == 0:
                raise ValueError(f"min: empty tensor of shape {shape_str(self.shape)} has no "
                                 "minimum")
            return Tensor._wrap(np.asarray(self.data.min(axis=axes, keepdims=keepdims)))
        return -(-self).max(axis, keepdims)

    def _arg(self, op, find, axis, keepdims):
        if self.size == 0:
            raise ValueError(f"{op}: empty tensor of shape {shape_str(self.shape)}")
        if axis is None:  # the index into the flattened tensor, as in PyTorch
            index = find(self.data.reshape(-1))
            return Tensor._wrap(np.asarray(index).reshape((1,) * self.ndim if keepdims else ()))
        axis = one_axis(op, axis, self.ndim)
        data = self.data.reshape(1) if self.ndim == 0 else self.data
        index = find(data, axis=axis, keepdims=keepdims)
        return Tensor._wrap(np.asarray(index.reshape(()) if self.ndim == 0 else index))

    @torch_names(**DIM)
    def argmax(self, axis=None, keepdims=False):
        """The index of the largest value (the first of ties; over the whole
        tensor, the index into the flattened tensor), int64, no gradient."""
        return self._arg("argmax", np.argmax, axis, keepdims)

    @torch_names(**DIM)
    def argmin(self, axis=None, keepdims=False):
        """The index of the smallest value, as argmax."""
        return self._arg("argmin", np.argmin, axis, keepdims)

    @torch_names(**DIM)
    def std(self, axis=None, keepdims=False, correction=1, unbiased=None):
        """std(x, correction) = sqrt(var(x, correction)); correction=1 (the
        sample standard deviation) by default, as in PyTorch."""
        return self.var(axis, keepdims, correction=correction, unbiased=unbiased).sqrt()

    @torch_names(**DIM)
    def logsumexp(self, axis=None, keepdims=False):
        """logsumexp(x) = m + log(sum(exp(x - m))) with m = max(x) held constant:
        exp cannot overflow (m is 0 where the max is infinite)."""
        axes = normalize_axes("logsumexp", axis, self.ndim)
        top = np.max(self.data, axis=axes, keepdims=True, initial=-np.inf)
        m = Tensor._wrap(np.where(np.isfinite(top), top, 0).astype(self.dtype, copy=False))
        out = (self - m).exp().sum(axes, keepdims=True).log() + m
        return out if keepdims else out.reshape(tuple(n for i, n in enumerate(self.shape)
                                                      if i not in axes))

    @torch_names(**DIM)
    def prod(self, axis=None, keepdims=False):
        """Product of the elements over `axis` (1 for none)."""
        return apply(ops.Prod, self, axis=normalize_axes("prod", axis, self.ndim),
                     keepdims=keepdims)

    def _logical(self, op, fn, axis, keepdims):
        axes = normalize_axes(op, axis, self.ndim)
        return Tensor._wrap(np.asarray(fn(self.data, axis=axes, keepdims=keepdims)))

    @torch_names(**DIM)
    def any(self, axis=None, keepdims=False):
        """True where some element is nonzero (boolean, no gradient)."""
        return self._logical("any", np.any, axis, keepdims)

    @torch_names(**DIM)
    def all(self, axis=None, keepdims=False):
        """True where every element is nonzero (boolean, no gradient)."""
        return self._logical("all", np.all, axis, keepdims)

    @torch_names(dim="axis")
    def cumsum(self, axis):
        """Running sum along `axis` (required, as in PyTorch)."""
        if self.ndim == 0:
            one_axis("cumsum", axis, 0)
            return self.reshape(1).cumsum(0).reshape(())
        return apply(ops.Cumsum, self, axis=one_axis("cumsum", axis, self.ndim))

    # ----- elementwise ------------------------------------------------------
    def clamp(self, min=None, max=None):  # noqa: A002  (PyTorch's names)
        """clamp(x, lo, hi) = where(x < lo, lo, where(x > hi, hi, x)): numbers or
        tensors, either may be None. The gradient goes to x where lo <= x <= hi
        and to the bound where it wins, as in PyTorch."""
        lo, hi = min, max
        if lo is None and hi is None:
            raise ValueError("clamp: give min, max or both")
        for name, bound in (("min", lo), ("max", hi)):
            if bound is not None and not isinstance(bound, Tensor) and \
                    numbers_array(bound) is None:
                raise TypeError(f"clamp: {name} must be a number or a tensor, got "
                                f"{type(bound).__name__}")
        if lo is not None and hi is not None and np.any(array_of(lo) > array_of(hi)):
            raise ValueError(f"clamp: min {_brief(lo)} is greater than max {_brief(hi)}")
        out = self
        if lo is not None:
            out = Tensor.where(out < lo, lo, out)
        if hi is not None:
            out = Tensor.where(out > hi, hi, out)
        return out

    clip = clamp

    def maximum(self, other):
        """The larger of self and other, elementwise (a tie's gradient is halved)."""
        return apply(ops.Maximum, *self._operands(other, "maximum"))

    def minimum(self, other):
        """minimum(a, b) = -maximum(-a, -b)."""
        a, b = self._operands(other, "minimum")
        return -apply(ops.Maximum, -a, -b)

    def sin(self): return apply(ops.Sin, self)
    def cos(self): return apply(ops.Cos, self)
    def erf(self): return apply(ops.Erf, self)

    def rsqrt(self):
        """rsqrt(x) = x ** -0.5."""
        return self ** -0.5

    def square(self):
        """square(x) = x ** 2."""
        return self ** 2

    def _step(self, fn):
        if not _float_dtype(self.dtype):  # whole numbers already
            return Tensor._wrap(self.data.copy())
        return apply(ops.Step, self, fn=fn)

    def floor(self): return self._step(np.floor)
    def ceil(self): return self._step(np.ceil)
    def sign(self): return self._step(np.sign)

    def round(self, decimals=0):
        """round(x, d) = round(x * 10^d) / 10^d: halves to even as in PyTorch (and
        numpy); gradient 0."""
        decimals = integer("round", "decimals", decimals)
        if decimals == 0:
            return self._step(np.round)
        scale = 10.0 ** decimals
        return (self * scale)._step(np.round) / scale

    def silu(self):
        """silu(x) = x * sigmoid(x)."""
        return self * self.sigmoid()

    def softplus(self, beta=1.0, threshold=20.0):
        """softplus(x) = where(beta x > threshold, x, log(1 + exp(beta x)) / beta):
        PyTorch's formula (exp is taken of a masked copy, so a large x gives no
        inf and no NaN gradient)."""
        z = self * beta
        linear = z > threshold
        return Tensor.where(linear, self, (z.masked_fill(linear, 0.0).exp() + 1).log() / beta)

    def leaky_relu(self, negative_slope=0.01):
        """leaky_relu(x) = where(x > 0, x, slope * x)."""
        return Tensor.where(self > 0, self, self * negative_slope)

    def elu(self, alpha=1.0):
        """elu(x) = where(x > 0, x, alpha (exp(x) - 1)): exp is taken of x with the
        positive entries masked to 0 (no overflow)."""
        positive = self > 0
        return Tensor.where(positive, self, (self.masked_fill(positive, 0.0).exp() - 1) * alpha)

    # ----- masks ------------------------------------------------------------
    def _triangle(self, op, diagonal, keep_lower):
        if self.ndim < 2:
            raise ValueError(f"{op}: needs at least 2 dimensions, got shape "
                             f"{shape_str(self.shape)}")
        diagonal = integer(op, "diagonal", diagonal)
        rows, cols = self.shape[-2:]
        lower = np.tri(rows, cols, diagonal if keep_lower else diagonal - 1, dtype=bool)
        return self.masked_fill(~lower if keep_lower else lower, 0)

    def tril(self, diagonal=0):
        """tril(x, k) = masked_fill(x, j > i + k, 0): the lower triangle of the
        last two axes (k > 0 keeps k diagonals above the main one)."""
        return self._triangle("tril", diagonal, keep_lower=True)

    def triu(self, diagonal=0):
        """triu(x, k) = masked_fill(x, j < i + k, 0): the upper triangle."""
        return self._triangle("triu", diagonal, keep_lower=False)

    def _bitwise(self, other, fn, op):
        arrays = [self.data] if other is None else [self.data, self._logic_operand(other, op)]
        for a in arrays:
            if a.dtype.kind not in "biu":
                raise TypeError(f"{op}: needs boolean (or integer) tensors, got dtype {a.dtype} "
                                "(compare first: (x > 0) & mask)")
        try:
            return Tensor._wrap(np.asarray(fn(*arrays)))
        except ValueError:
            raise ValueError(f"{op}: shapes {shapes_str([a.shape for a in arrays])} do not "
                             "broadcast together") from None

    def _logic_operand(self, other, op):
        array = other.data if isinstance(other, Tensor) else numbers_array(other)
        if array is None:
            raise TypeError(f"{op}: cannot combine a {self.dtype} tensor with "
                            f"{type(other).__name__}")
        return array

    def __and__(self, other): return self._bitwise(other, np.bitwise_and, "and")
    def __or__(self, other): return self._bitwise(other, np.bitwise_or, "or")
    def __xor__(self, other): return self._bitwise(other, np.bitwise_xor, "xor")
    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self): return self._bitwise(None, np.invert, "invert")

    # ----- casts ------------------------------------------------------------
    def to(self, *args, dtype=None, device=None):
        """This tensor in `dtype` (a numpy dtype, its name, or another tensor,
        whose dtype is taken); itself if it has it already. Between float dtypes
        the gradient flows; an integer or boolean result has no graph. "cpu" as
        a device is accepted and changes nothing."""
        for arg in args + ((device,) if device is not None else ()):
            if isinstance(arg, str) and arg.split(":")[0] == "cpu":
                continue
            if isinstance(arg, str) and arg.split(":")[0] in ("cuda", "mps", "meta"):
                raise ValueError(f"to: only the CPU exists here (numpy), got device {arg!r}")
            if dtype is not None:
                raise TypeError(f"to: got more than one dtype ({dtype!r} and {arg!r})")
            dtype = arg.dtype if isinstance(arg, Tensor) else arg
        if dtype is None:
            return self
        dtype = as_dtype("to", dtype)
        if dtype == self.dtype:
            return self
        if _float_dtype(dtype) and _float_dtype(self.dtype):
            return apply(ops.Cast, self, dtype=dtype)
        return Tensor._wrap(self.data.astype(dtype))

    def clone(self):
        """A copy with its own array, in the graph (the gradient flows back)."""
        if _float_dtype(self.dtype):
            return apply(ops.Cast, self, dtype=self.dtype)  # astype copies
        return Tensor._wrap(self.data.copy())

    def tolist(self):
        """The values as (nested) Python lists, or a number for a 0-d tensor."""
        return self.data.tolist()

    def type_as(self, other):
        """This tensor in other's dtype."""
        if not isinstance(other, Tensor):
            raise TypeError(f"type_as: needs a Tensor, got {type(other).__name__}")
        return self.to(other.dtype)

    def float(self): return self.to(np.float32)
    def double(self): return self.to(np.float64)
    def long(self): return self.to(np.int64)
    def int(self): return self.to(np.int32)
    def bool(self): return self.to(np.bool_)

    # ----- indexing and gathering ---------------------------------------------
    @torch_names(dim="axis")
    def gather(self, axis, index):
        """gather(x, axis, index) = x[i_0, ..., index, ..., i_n] with arange grids
        i_d over index's other axes: out[..., j, ...] = x[..., index[..., j, ...], ...]
        along `axis`, as torch.gather (index int64 or int32, as many axes as x,
        each other axis no longer than x's)."""
        index = _index_array("gather", index)
        axis = one_axis("gather", axis, self.ndim)
        if index.ndim != self.ndim or any(
                i != axis and n > m for i, (n, m) in enumerate(zip(index.shape, self.shape))):
            raise ValueError(f"gather: index of shape {shape_str(index.shape)} does not fit "
                             f"x of shape {shape_str(self.shape)} (same number of axes; "
                             f"sizes no larger than x's, except along axis {axis})")
        length = self.shape[axis] if self.ndim else 1
        if index.size and (index.min() < 0 or index.max() >= length):
            bad = index[(index < 0) | (index >= length)][0]
            raise IndexError(f"gather: index {bad} is out of range for axis {axis} of size "
                             f"{length}")
        grids = np.ix_(*(np.arange(n) for n in index.shape)) if index.ndim else ()
        return self[tuple(index if i == axis else grid for i, grid in enumerate(grids))]

    def masked_select(self, mask):
        """masked_select(x, mask) = expand(x, shape)[mask]: the elements where the
        boolean mask is True, as a 1-D tensor (x and mask broadcast together)."""
        mask = check_mask("masked_select", array_of(mask), None)
        shape = broadcast_shape("masked_select", self.shape, mask.shape)
        return self.expand(shape)[np.broadcast_to(mask, shape)]

    @staticmethod
    def einsum(equation, *tensors):
        """Einstein summation, numpy's equations ("bqd,bkd->bqk", "ii->",
        "...ij,...jk"), a gradient for every operand. Operands are broadcast
        (expand) to their letters' sizes first; then one Einsum op."""
        if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
            tensors = tuple(tensors[0])
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"einsum: operand {i} is a {type(t).__name__}, not a Tensor")
        if not tensors:
            raise ValueError("einsum: needs at least one tensor")
        inputs, output, sizes = einsum_plan(equation, [t.shape for t in tensors])
        grown = [t if t.shape == tuple(sizes[c] for c in letters)
                 else t.expand(tuple(sizes[c] for c in letters))
                 for t, letters in zip(tensors, inputs)]
        return apply(ops.Einsum, *grown, inputs=tuple(inputs), output=output)

    # ----- PyTorch's other spellings of the same ops ----------------------------
    @torch_names(dim="axis")
    def softmax(self, axis=-1):
        """The fused softmax op along `axis` (F.softmax calls this)."""
        return apply(ops.Softmax, self, axis=normalize_axes("softmax", axis, self.ndim))

    @torch_names(dim="axis")
    def log_softmax(self, axis=-1):
        """The fused log_softmax op along `axis` (F.log_softmax calls this)."""
        return apply(ops.LogSoftmax, self, axis=normalize_axes("log_softmax", axis, self.ndim))

    def matmul(self, other):
        """x.matmul(y) = x @ y."""
        return self @ other

    def mm(self, other):
        """x.mm(y) = x @ y for two matrices (PyTorch's mm takes 2-D only)."""
        return self._sized_matmul("mm", other, 2)

    def bmm(self, other):
        """x.bmm(y) = x @ y for two batches of matrices (3-D only)."""
        return self._sized_matmul("bmm", other, 3)

    def dot(self, other):
        """x.dot(y) = x @ y for two vectors (1-D only)."""
        return self._sized_matmul("dot", other, 1)

    def _sized_matmul(self, op, other, ndim):
        if not isinstance(other, Tensor) or self.ndim != ndim or other.ndim != ndim:
            shape = shape_str(other.shape) if isinstance(other, Tensor) else type(other).__name__
            raise ValueError(f"{op}: needs two {ndim}-D tensors, got {shape_str(self.shape)} "
                             f"and {shape}")
        return self @ other

    def outer(self, other):
        """x.outer(y) = x[:, None] * y[None, :] for two vectors."""
        if not isinstance(other, Tensor) or self.ndim != 1 or other.ndim != 1:
            raise ValueError("outer: needs two 1-D tensors")
        return self.reshape(-1, 1) * other.reshape(1, -1)

    def add(self, other):
        """x.add(y) = x + y."""
        return self + other

    def sub(self, other):
        """x.sub(y) = x - y."""
        return self - other

    def mul(self, other):
        """x.mul(y) = x * y."""
        return self * other

    def div(self, other):
        """x.div(y) = x / y."""
        return self / other

    def pow(self, exponent):
        """x.pow(n) = x ** n."""
        return self ** exponent

    def neg(self):
        """x.neg() = -x."""
        return -self

    def reciprocal(self):
        """x.reciprocal() = 1 / x."""
        return 1.0 / self

    def t(self):
        """x.t() = x.T for at most 2 axes (PyTorch refuses more)."""
        if self.ndim > 2:
            raise ValueError(f"t: needs a tensor of at most 2 dimensions, got shape "
                             f"{shape_str(self.shape)}; use transpose(a, b)")
        return self.T

    def view_as(self, other):
        """x.view_as(y) = x.reshape(y.shape)."""
        return self.reshape(_tensor_arg("view_as", other).shape)

    reshape_as = view_as

    def expand_as(self, other):
        """x.expand_as(y) = x.expand(y.shape)."""
        return self.expand(_tensor_arg("expand_as", other).shape)

    def contiguous(self):
        """Itself: numpy arrays need no contiguous copy for any op here."""
        return self

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place (a leaf only) and return the tensor."""
        self.requires_grad = requires_grad
        return self

    def is_floating_point(self):
        return _float_dtype(self.dtype)

    def isnan(self):
        """A boolean tensor, True where the value is NaN (no gradient)."""
        return Tensor._wrap(np.isnan(self.data))

    def isinf(self):
        """A boolean tensor, True where the value is +-inf (no gradient)."""
        return Tensor._wrap(np.isinf(self.data))

    # ----- constructors ---------------------------------------------------------
    @staticmethod
    def arange(start, end=None, step=1, dtype=None, requires_grad=False):
        """start, start + step, ... below end (arange(n): 0 .. n-1). int64 when
        start, end and step are integers, else float32, as in PyTorch."""
        if end is None:
            start, end = 0, start
        for name, v in (("start", start), ("end", end), ("step", step)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise TypeError(f"arange: {name} must be a number, got {v!r}")
        if step == 0:
            raise ValueError("arange: step must be nonzero")
        whole = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = as_dtype("arange", dtype if dtype is not None else
                         np.int64 if whole else np.float32)
        data = np.arange(start, end, step, dtype=np.float64 if not whole else None)
        return Tensor.__new__(Tensor)._own(data.astype(dtype), requires_grad)

    @staticmethod
    def linspace(start, end, steps, dtype=np.float32, requires_grad=False):
        """`steps` evenly spaced values from start to end, both included."""
        steps = integer("linspace", "steps", steps, minimum=0)
        data = np.linspace(start, end, steps).astype(as_dtype("linspace", dtype))
        return Tensor.__new__(Tensor)._own(data, requires_grad)

    @staticmethod
    def eye(n, m=None, dtype=np.float32, requires_grad=False):
        """The (n, m) identity matrix (m = n by default)."""
        n = integer("eye", "n", n, minimum=0)
        m = n if m is None else integer("eye", "m", m, minimum=0)
        return Tensor.__new__(Tensor)._own(np.eye(n, m, dtype=as_dtype("eye", dtype)),
                                           requires_grad)

    @staticmethod
    def full(shape, fill_value, dtype=None, requires_grad=False):
        """An array of `shape` filled with `fill_value`; dtype from the value
        (bool, int64, or float32) unless given, as in PyTorch."""
        shape = new_shape("full", shape if isinstance(shape, (tuple, list)) else (shape,))
        value = array_of(fill_value)
        if value.ndim or value.dtype.kind not in "biuf":
            raise TypeError(f"full: fill_value must be a number, got {fill_value!r}")
        if dtype is None:
            dtype = {"b": np.bool_, "f": np.float32}.get(value.dtype.kind, np.int64)
        data = np.full(shape, value, dtype=as_dtype("full", dtype))
        return Tensor.__new__(Tensor)._own(data, requires_grad)

    @staticmethod
    def zeros_like(other, dtype=None, requires_grad=False):
        """zeros_like(t) = full(t.shape, 0, t.dtype)."""
        return Tensor.full_like(other, 0, dtype, requires_grad)

    @staticmethod
    def ones_like(other, dtype=None, requires_grad=False):
        """ones_like(t) = full(t.shape, 1, t.dtype)."""
        return Tensor.full_like(other, 1, dtype, requires_grad)

    @staticmethod
    def full_like(other, fill_value, dtype=None, requires_grad=False):
        """full_like(t, v) = full(t.shape, v, t.dtype)."""
        array = array_of(other)
        return Tensor.full(array.shape, fill_value, array.dtype if dtype is None else dtype,
                           requires_grad)

    @staticmethod
    def rand(*shape, dtype=np.float32, requires_grad=False):
        """Uniform in [0, 1), from the generator `manual_seed` seeds."""
        if as_dtype("rand", dtype).kind != "f":
            raise TypeError(f"rand: dtype must be float32 or float64, got {np.dtype(dtype)}")
        data = _random.generator().random(new_shape("rand", shape), dtype=dtype)
        return Tensor.__new__(Tensor)._own(data, requires_grad)

    @staticmethod
    def randint(low, high=None, size=None, dtype=np.int64):
        """Integers in [low, high) of shape `size`, seeded by `manual_seed`:
        randint(high, size) or randint(low, high, size), as in PyTorch."""
        if size is None and isinstance(high, (tuple, list)):
            low, high, size = 0, low, high
        elif high is None:
            low, high = 0, low
        if size is None:
            raise TypeError("randint: needs a size, e.g. randint(10, (2, 3))")
        low, high = integer("randint", "low", low), integer("randint", "high", high)
        if low >= high:
            raise ValueError(f"randint: low {low} must be below high {high}")
        shape = new_shape("randint", size if isinstance(size, (tuple, list)) else (size,))
        dtype = as_dtype("randint", dtype)
        if dtype.kind not in "iu":
            raise TypeError(f"randint: dtype must be an integer type, got {dtype}")
        return Tensor._wrap(_random.generator().integers(low, high, shape, dtype=dtype))


def _matmul(a, b):
    check_matmul(a.shape, b.shape)
    return apply(ops.MatMul, a, b)


def array_of(x):
    """A Tensor's array, or an array-like as an ndarray (never ndarray.data,
    which is the array's raw memory)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _plain_index(index):
    """An index with Tensors replaced by their arrays, and integer arrays as
    int64: narrow widths (int8, uint8) would wrap around in the backward's
    position arithmetic, and uint64 does not mix with int64."""
    if isinstance(index, tuple):
        return tuple(_index_part(i) for i in index)
    return _index_part(index)


def _index_part(part):
    if isinstance(part, Tensor):
        part = part.data
    elif isinstance(part, list):
        array = numbers_array(part)
        if array is None:
            raise IndexError(f"getitem: a list index must hold integers or booleans of one "
                             f"shape, got {part!r}"[:200])
        part = array
    if isinstance(part, np.ndarray) and part.dtype.kind in "iu":
        return integer_index("getitem", part)
    return part


def _is_integer(part):
    return isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_))


def _integers_first(index):
    """For a tuple index mixing integers with index arrays: the index of the
    integers alone (every other part kept as `:`) and the index of the rest,
    applied one after the other (PyTorch's axis order). None otherwise."""
    if not isinstance(index, tuple) or not any(map(_is_integer, index)) or not any(
            isinstance(p, np.ndarray) and p.ndim for p in index):
        return None
    first, rest = [], []
    for part in index:
        if _is_integer(part):
            first.append(part)
            continue
        if isinstance(part, np.ndarray) and part.dtype == np.bool_:
            first.extend([slice(None)] * part.ndim)  # a mask spans one axis per dimension
        else:
            first.append(part if part is None or part is Ellipsis else slice(None))
        rest.append(slice(None) if part is None else part)  # the new axis is made already
    return tuple(first), tuple(rest)


def _index_array(op, index):
    """An index tensor or array for gather: int64 or int32 as in PyTorch (int8
    and uint8 too narrow, floats and booleans not indices)."""
    array = array_of(index)
    if array.dtype not in (np.int64, np.int32):
        raise TypeError(f"{op}: index must be int64 (or int32), got dtype {array.dtype}; "
                        "cast it with .long()")
    return array.astype(np.int64, copy=False)


def _brief(value):
    """A bound for an error message: the number, or the tensor's shape."""
    array = array_of(value)
    return repr(array.item()) if array.size == 1 else f"(a tensor of shape {shape_str(array.shape)})"


def _tensor_arg(op, other):
    if not isinstance(other, Tensor):
        raise TypeError(f"{op}: needs a Tensor, got {type(other).__name__}")
    return other
