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
   reference counting alone.
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
import threading
import time

import numpy as np

from . import ops
from . import random as _random
from .checks import (broadcast_shape, check_mask, check_matmul, integer, integer_index,
                     new_shape, normalize_axes, numbers_array, one_axis, op_error,
                     resolve_reshape, shape_arg, shape_str, tensor_list)


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
    """Call `observer(phase, op, seconds)` after every forward and backward of
    an op in this thread ("forward" or "backward"); the op's `scope` says which
    module ran it. Off (and free) when nobody observes."""
    _state.observers = _state.observers + (observer,)


def remove_observer(observer):
    _state.observers = tuple(o for o in _state.observers if o is not observer)


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
    ctx = op()
    try:
        if _state.observers:
            ctx.scope = _state.scope
            data = _observed(ctx, "forward", ctx.forward, *arrays, **kwargs)
        else:
            data = ctx.forward(*arrays, **kwargs)
    except (ValueError, IndexError, TypeError) as e:
        raise op_error(ctx.op_name, [a.shape for a in arrays], e) from None
    out = Tensor._wrap(data if type(data) is np.ndarray else np.asarray(data))
    if _state.grad_enabled:
        needs_grad = tuple([t._requires_grad for t in inputs])
        if True in needs_grad:
            ctx.parents, ctx.needs_grad, ctx.scope = inputs, needs_grad, _state.scope
            ctx.versions = tuple([t._version for t in inputs])
            out._requires_grad, out._ctx = True, ctx
    return out


def _observed(ctx, phase, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    for observer in _state.observers:
        observer(phase, ctx, seconds, result)
    return result


# ----- 3. the graph walk ---------------------------------------------------------
def topological_order(root, include_constants=False):
    """The tensors behind `root`, each once, every tensor after the tensors it
    was computed from (post-order of an iterative depth-first search, first
    inputs first). Only those that require grad, unless `include_constants`
    (viz draws those too)."""
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
        if tensor._ctx is not None:
            stack.extend((parent, False) for parent in reversed(tensor._ctx.parents)
                         if (include_constants or parent._requires_grad)
                         and id(parent) not in visited)
    return order


def walk_backward(root, grad=None, on_edge=None):
    """Yield (tensor, gradient) for every tensor of the graph behind `root`
    that requires grad, outputs before inputs; each gradient is complete when
    yielded. `backward` keeps the leaves' gradients. `on_edge(parent,
    consumer, g)`, if given, is told of every gradient an op sends to one of
    its inputs (viz labels the edges with them)."""
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
        grad = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=root.dtype)
        if grad.shape != root.shape:
            raise ValueError(f"backward: grad has shape {shape_str(grad.shape)} but the output "
                             f"has shape {shape_str(root.shape)}")
    grads = {id(root): grad}
    observing = bool(_state.observers)
    for tensor in reversed(topological_order(root)):
        g = grads.pop(id(tensor), None)
        if g is None:  # no consumer passed a gradient back
            continue
        yield tensor, g
        ctx = tensor._ctx
        if ctx is None:
            continue
        _check_versions(tensor, ctx)
        sent = _observed(ctx, "backward", ctx.backward, g) if observing else ctx.backward(g)
        if type(sent) is not tuple:
            sent = (sent,)
        for parent, needs, pg in zip(ctx.parents, ctx.needs_grad, sent):
            if not needs or pg is None:
                continue
            pg = unbroadcast(pg, parent.shape)
            if on_edge is not None:
                on_edge(parent, tensor, pg)
            key = id(parent)
            # out of place: a backward may hand the same array to two inputs
            grads[key] = grads[key] + pg if key in grads else pg


def _check_versions(tensor, ctx):
    """Refuse to run op `ctx`'s backward if its output or an input was changed
    in place after the op ran: its saved arrays no longer match."""
    if tensor._version != ctx.out_version:
        changed = f"its output {shape_str(tensor.shape)}"
    else:
        changed = next((f"its input {i} {shape_str(p.shape)}"
                        for i, (p, v) in enumerate(zip(ctx.parents, ctx.versions))
                        if p._version != v), None)
        if changed is None:
            return
    raise RuntimeError(f"backward: {changed} of {ctx.op_name} was changed in place (by an "
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
    float32, as in PyTorch. An integer tensor meeting a float tensor follows
    numpy (int64 with float32 gives float64; PyTorch keeps float32).
    """
    __slots__ = ("data", "_grad", "_requires_grad", "_ctx", "name", "_version", "__weakref__")
    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        try:  # numpy 2 raises ValueError on ragged lists instead of making objects
            array = np.asarray(data) if dtype is None else np.asarray(data, dtype=dtype)
        except (ValueError, TypeError):
            array = None
        if array is None or array.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} "
                            "(ragged lists or non-numbers)")
        if dtype is None and _float_dtype(array.dtype) and array.dtype != np.float32:
            array = array.astype(np.float32)  # the one conversion: a fresh array
        elif isinstance(data, np.ndarray) and np.may_share_memory(array, data):
            array = array.copy()  # the tensor owns its data (torch.tensor copies too)
        self._own(array, requires_grad)

    def _own(self, array, requires_grad):
        """Take `array`, made for this tensor alone, as its data (no copy)."""
        if array.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: dtype {array.dtype} is not boolean, integer or floating-point")
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

    def numpy(self):
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element has an item, got shape "
                             f"{shape_str(self.shape)}")
        return self.data.item()

    def detach(self):
        """The same values, cut from the graph (shares memory, like PyTorch)."""
        return Tensor._wrap(self.data)

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
        for tensor, g in walk_backward(self, grad):
            if tensor._ctx is None:
                if tensor._grad is None:
                    tensor._grad = np.array(g, dtype=tensor.dtype, copy=True)  # never alias
                else:
                    tensor._grad += g

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

    def _in_place(self, op, ufunc, other, symbol):
        """Change this tensor's values, keeping the object (a module still holds
        it). Without a graph (under no_grad, the hand-written update
        `p -= lr * p.grad`) the array is written in place. In a graph, the
        tensor becomes the op's output node. Either way its version goes up,
        so a graph that used the old values refuses to backward through them."""
        other = self._operand(other, symbol)
        if broadcast_shape(symbol, self.shape, other.shape) != self.shape:
            raise ValueError(f"{symbol}: the result's shape "
                             f"{shape_str(np.broadcast_shapes(self.shape, other.shape))} is not "
                             f"the tensor's shape {shape_str(self.shape)}")
        result_type = np.result_type(self.data, other.data) if not op.float_result or \
            _float_dtype(self.dtype) else np.dtype(np.float32)
        if not np.can_cast(result_type, self.dtype, "same_kind"):
            raise TypeError(f"{symbol}: the result is {result_type}, which a {self.dtype} tensor "
                            f"cannot hold in place; write x = x {symbol[0]} y for a new tensor")
        recording = _state.grad_enabled and (self._requires_grad or other._requires_grad)
        if recording and self._ctx is None and self._requires_grad:
            raise RuntimeError(f"{symbol}: a leaf tensor that requires grad cannot be changed in "
                               "place while the graph is recorded (PyTorch: 'a leaf Variable that "
                               "requires grad is being used in an in-place operation'). For a "
                               "weight update use `with no_grad():`, or write x = x "
                               f"{symbol[0]} y")
        if recording:
            before = Tensor._wrap(self.data)  # the old value, as its own node of the graph
            before._requires_grad, before._ctx, before._version = (
                self._requires_grad, self._ctx, self._version)
            out = apply(op, before, other)
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
        self._version += 1
        return self

    def __pow__(self, exponent):
        if not isinstance(exponent, (int, float, np.integer, np.floating)):
            raise TypeError("pow: the exponent must be a Python number (x ** 2, x ** 0.5); "
                            "for a tensor exponent write (b * x.log()).exp()")
        # a Python number: a numpy float64 exponent would make float32 x float64
        if isinstance(exponent, np.generic):
            exponent = exponent.item()
        base = as_float(self) if isinstance(exponent, float) else self
        return apply(ops.Pow, base, exponent=exponent)

    def __rpow__(self, base):
        """number ** x = exp(x * ln(number)), for a positive number."""
        if not np.isscalar(base) or not base > 0:
            raise ValueError(f"pow: number ** x needs a positive number (it is computed as "
                             f"exp(x * ln number)), got {base!r}")
        return (self * float(np.log(base))).exp()

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
    def sum(self, axis=None, keepdims=False):
        return apply(ops.Sum, self, axis=normalize_axes("sum", axis, self.ndim), keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        """Largest value; the gradient is shared equally among tied maxima."""
        if self.size == 0:
            raise ValueError(f"max: empty tensor of shape {shape_str(self.shape)} has no maximum")
        return apply(ops.Max, self, axis=normalize_axes("max", axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """sum / count; over an empty axis NaN (0 / 0), as numpy and PyTorch."""
        axes = normalize_axes("mean", axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(axes, keepdims) * (1.0 / count if count else float("nan"))

    def var(self, axis=None, keepdims=False):
        """Population variance, mean((x - mean x)^2), numpy's ddof=0: what layer
        norm uses. (PyTorch's `var` defaults to the unbiased ddof=1.)"""
        axes = normalize_axes("var", axis, self.ndim)  # so that errors name var, not mean
        centered = self - self.mean(axes, keepdims=True)
        return (centered * centered).mean(axes, keepdims)

    # ----- shape ------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape_arg("reshape", shape)
        return apply(ops.Reshape, self, shape=resolve_reshape(self.shape, shape))

    view = reshape

    def permute(self, *axes):
        given = shape_arg("permute", axes)
        axes = normalize_axes("permute", given, self.ndim, allow_repeat=True)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute: axes {given} are not a permutation of the "
                             f"{self.ndim} axes of shape {shape_str(self.shape)}")
        return apply(ops.Permute, self, axes=axes)

    def transpose(self, a=-2, b=-1):
        """Swap axes a and b (default: the last two, as for K^T)."""
        pair = normalize_axes("transpose", (a, b), self.ndim, allow_repeat=True)
        axes = list(range(self.ndim))
        if pair:  # a 0-d tensor has nothing to swap
            a, b = pair
            axes[a], axes[b] = axes[b], axes[a]
        return apply(ops.Permute, self, axes=tuple(axes))

    @property
    def T(self):
        return apply(ops.Permute, self, axes=tuple(reversed(range(self.ndim))))

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
        return apply(ops.GetItem, self, index=_plain_index(index))

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

    def split(self, size, axis=0):
        """Cut along `axis` into pieces of `size` (the last may be shorter), or
        into pieces of the sizes in a list, as torch.split does. The pieces
        are slices, x[..., start:stop]: views of x, no copies."""
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
    def stack(tensors, axis=0):
        """Join same-shaped tensors along a new axis."""
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
        part = np.asarray(part)
    if isinstance(part, np.ndarray) and part.dtype.kind in "iu":
        return integer_index("getitem", part)
    return part
