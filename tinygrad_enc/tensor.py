"""The Tensor, the graph it records, and the reverse-mode walk over that graph.

A Tensor wraps a numpy array. When an op runs on tensors that require grad,
the op's `Function` object is kept on the output as `_ctx`; the Function holds
its input tensors (`parents`) and whatever it saved from the forward pass. That
is the whole graph: arrows point from outputs back to inputs only, so there are
no reference cycles and dropping the last output frees every intermediate
array at once, by reference counting alone.

`backward()` visits the graph once, in reverse topological order found by an
iterative depth-first search (no recursion, so no depth limit). Each node's
gradient is complete when it is visited (all of its consumers came first); it
is handed to the node's Function and then dropped. Only leaves keep a `.grad`.
viz walks the same order (`topological_order`) to draw the graph.
"""
import numbers

import numpy as np

from . import random as _random


class _GraphState:
    """Process-wide switches read by every op: is the graph being recorded, and
    which module's forward is running (its Scope, kept on each op for viz)."""
    grad_enabled = True
    scope = None


class Scope:
    """The module whose forward made an op: its dotted path from the model's
    root (`layers.0.self_attn.q_proj`, "" for the root), its class name, the
    module's id, and the enclosing scope. nn.Module.__call__ opens one."""
    __slots__ = ("path", "kind", "module_id", "parent")

    def __init__(self, path, kind, module_id, parent):
        self.path, self.kind, self.module_id, self.parent = path, kind, module_id, parent

    def __repr__(self):
        return f"Scope({self.path!r}, {self.kind})"


def current_scope():
    return _GraphState.scope


def set_scope(scope):
    """Make `scope` current and return the one it replaces (to restore later)."""
    previous, _GraphState.scope = _GraphState.scope, scope
    return previous


class no_grad:
    """Context manager and decorator: ops inside build no graph.

        with no_grad():
            y = model(x)          # y.requires_grad is False

        @no_grad                  # or @no_grad()
        def evaluate(model, x): ...

    Nestable (even re-entering one instance): each exit restores the state
    its enter found.
    """

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        self._previous = []
        return self if fn is None else self(fn)

    def __enter__(self):
        self._previous.append(_GraphState.grad_enabled)
        _GraphState.grad_enabled = False
        return self

    def __exit__(self, *exc):
        _GraphState.grad_enabled = self._previous.pop()
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


def is_grad_enabled():
    return _GraphState.grad_enabled


def manual_seed(seed):
    """Seed every random thing the library does (weight init, dropout masks)."""
    _random.seed(seed)


def shape_str(shape):
    return str(tuple(shape))


class Function:
    """One primitive op. Subclasses define `forward(*arrays, **kwargs)` and
    `backward(grad) -> one gradient per input` side by side; `apply` runs the
    forward on tensors and records the graph when some input requires grad.

    A backward may return a gradient whose shape is the *broadcast* shape of
    the op; the walk reduces it to the input's own shape (`unbroadcast`), so
    broadcasting is undone in exactly one place. Return None for inputs that
    need no gradient. A forward that returns a tuple of arrays makes one tensor
    each (split); its backward then gets the list of their gradients (`Output`).
    """
    @classmethod
    def apply(cls, *inputs, **kwargs):
        ctx = cls()
        data = ctx.forward(*[t.data for t in inputs], **kwargs)
        if type(data) is tuple:  # an op with several outputs (split)
            return ctx._several_outputs(inputs, data)
        if type(data) is not np.ndarray:  # numpy hands back scalars for 0-d results
            data = np.asarray(data)
        out = Tensor._wrap(data)
        if ctx._record(inputs):
            out.requires_grad = True
            out._ctx = ctx
        return out

    def _record(self, inputs):
        """Keep the inputs if the graph is being recorded and one of them
        requires grad; say whether the outputs join the graph."""
        if not _GraphState.grad_enabled:
            return False
        needs_grad = tuple([t.requires_grad for t in inputs])  # one pass over the inputs
        if True not in needs_grad:
            return False
        self.parents = inputs
        self.needs_grad = needs_grad
        self.scope = _GraphState.scope
        return True

    def _several_outputs(self, inputs, arrays):
        """One tensor per array, output i remembering the op through Output(self, i)."""
        outs = tuple(Tensor._wrap(np.asarray(a)) for a in arrays)
        if self._record(inputs):
            self.n_outputs = len(outs)
            for i, out in enumerate(outs):
                out.requires_grad = True
                out._ctx = Output(self, i)
        return outs

    @property
    def op_name(self):
        """The op's readable name (`matmul`, `softmax`); a class may set its own."""
        return type(self).__name__.lower()


class Output(Function):
    """Output `index` of an op with several outputs, standing for the op in the
    graph: each tensor still has one Function, with the op's parents. The walk
    gathers every output's gradient and calls `op.backward(grads)` once, a list
    with None for an output that got none. Its own backward is what this
    output alone sends back (viz draws one edge per output)."""

    def __init__(self, op, index):
        self.op, self.index = op, index
        self.parents, self.needs_grad, self.scope = op.parents, op.needs_grad, op.scope

    @property
    def op_name(self):
        return self.op.op_name

    def backward(self, g):
        grads = [None] * self.op.n_outputs
        grads[self.index] = g
        return self.op.backward(grads)


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`: undo numpy broadcasting (leading axes that
    were added, and axes of size 1 that were stretched)."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _float_dtype(dtype):
    return np.issubdtype(dtype, np.floating)


def as_float(tensor):
    """An integer or boolean tensor as float32, PyTorch's default dtype, for an
    op whose result is a float (numpy would make float64); a float one as is.
    Integer tensors never require grad, so the cast needs no graph."""
    if _float_dtype(tensor.dtype):
        return tensor
    return Tensor._wrap(tensor.data.astype(np.float32))


def _numbers(value):
    """`value` as an ndarray if it is a number, or an ndarray or (nested) list
    of numbers; None otherwise (None, strings, ragged lists, other objects)."""
    if not isinstance(value, (numbers.Number, np.generic, np.ndarray, list, tuple)):
        return None
    try:  # numpy 2 raises ValueError on ragged lists
        array = np.asarray(value)
    except (ValueError, TypeError):
        return None
    return array if array.dtype.kind in "biuf" else None


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
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "__weakref__")
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
        self.data, self.grad, self.requires_grad, self._ctx, self.name = (
            array, None, bool(requires_grad), None, None)
        return self

    @classmethod
    def _wrap(cls, array):
        """A tensor around an op's output array, without copying or casting it."""
        t = cls.__new__(cls)
        t.data, t.grad, t.requires_grad, t._ctx, t.name = array, None, False, None, None
        return t

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
                if tensor.grad is None:
                    tensor.grad = np.array(g, dtype=tensor.dtype, copy=True)  # never alias
                else:
                    tensor.grad += g

    def zero_grad(self):
        self.grad = None

    # ----- constructors: each array built once, in its dtype ------------------
    @staticmethod
    def zeros(*shape, dtype=np.float32, requires_grad=False):
        return Tensor.__new__(Tensor)._own(np.zeros(_shape_arg(shape), dtype), requires_grad)

    @staticmethod
    def ones(*shape, dtype=np.float32, requires_grad=False):
        return Tensor.__new__(Tensor)._own(np.ones(_shape_arg(shape), dtype), requires_grad)

    @staticmethod
    def randn(*shape, dtype=np.float32, requires_grad=False):
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"randn: dtype must be float32 or float64, got {np.dtype(dtype)}")
        data = _random.generator().standard_normal(_shape_arg(shape), dtype=dtype)
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
        array = _numbers(other)
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

    def __add__(self, other): return ops.Add.apply(*self._operands(other, "add"))
    def __radd__(self, other): return ops.Add.apply(*self._operands(other, "add")[::-1])
    def __sub__(self, other): return ops.Sub.apply(*self._operands(other, "sub"))
    def __rsub__(self, other): return ops.Sub.apply(*self._operands(other, "sub")[::-1])
    def __mul__(self, other): return ops.Mul.apply(*self._operands(other, "mul"))
    def __rmul__(self, other): return ops.Mul.apply(*self._operands(other, "mul")[::-1])
    def __truediv__(self, other): return ops.Div.apply(*self._operands(other, "div"))
    def __rtruediv__(self, other): return ops.Div.apply(*self._operands(other, "div")[::-1])
    def __neg__(self): return ops.Neg.apply(self)
    def __matmul__(self, other): return ops.MatMul.apply(*self._operands(other, "matmul"))
    def __rmatmul__(self, other): return ops.MatMul.apply(*self._operands(other, "matmul")[::-1])

    def __pow__(self, exponent):
        if not isinstance(exponent, (int, float, np.integer, np.floating)):
            raise TypeError("pow: the exponent must be a Python number (x ** 2, x ** 0.5); "
                            "for a tensor exponent write (b * x.log()).exp()")
        # a Python number: a numpy float64 exponent would make float32 x float64
        if isinstance(exponent, np.generic):
            exponent = exponent.item()
        base = as_float(self) if isinstance(exponent, float) else self
        return ops.Pow.apply(base, exponent=exponent)

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
        elif _numbers(other) is None:
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
    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)
    def sqrt(self): return ops.Sqrt.apply(self)
    def tanh(self): return ops.Tanh.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(self)
    def relu(self): return ops.ReLU.apply(self)
    def abs(self): return ops.Abs.apply(self)

    def gelu(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return ops.GELU.apply(self, approximate=approximate)

    # ----- reductions -------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return ops.Sum.apply(self, axis=normalize_axes("sum", axis, self.ndim), keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        """Largest value; the gradient is shared equally among tied maxima."""
        if self.size == 0:
            raise ValueError(f"max: empty tensor of shape {shape_str(self.shape)} has no maximum")
        return ops.Max.apply(self, axis=normalize_axes("max", axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        axes = normalize_axes("mean", axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(axes, keepdims) * (1.0 / max(count, 1))

    def var(self, axis=None, keepdims=False):
        """Population variance, mean((x - mean x)^2), numpy's ddof=0: what layer
        norm uses. (PyTorch's `var` defaults to the unbiased ddof=1.)"""
        axes = normalize_axes("var", axis, self.ndim)  # so that errors name var, not mean
        centered = self - self.mean(axes, keepdims=True)
        return (centered * centered).mean(axes, keepdims)

    # ----- shape ------------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        return ops.Reshape.apply(self, shape=resolve_reshape(self.shape, shape))

    view = reshape

    def permute(self, *axes):
        given = _shape_arg(axes)
        axes = normalize_axes("permute", given, self.ndim, allow_repeat=True)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute: axes {given} are not a permutation of the "
                             f"{self.ndim} axes of shape {shape_str(self.shape)}")
        return ops.Permute.apply(self, axes=axes)

    def transpose(self, a=-2, b=-1):
        """Swap axes a and b (default: the last two, as for K^T)."""
        pair = normalize_axes("transpose", (a, b), self.ndim, allow_repeat=True)
        axes = list(range(self.ndim))
        if pair:  # a 0-d tensor has nothing to swap
            a, b = pair
            axes[a], axes[b] = axes[b], axes[a]
        return ops.Permute.apply(self, axes=tuple(axes))

    @property
    def T(self):
        return ops.Permute.apply(self, axes=tuple(reversed(range(self.ndim))))

    def expand(self, *shape):
        """Broadcast to `shape` without copying; -1 keeps an axis's size."""
        shape = _shape_arg(shape)
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
        return ops.Expand.apply(self, shape=target)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=_plain_index(index))

    def masked_fill(self, mask, value):
        """Where `mask` is True put `value`; mask is boolean and broadcasts to
        self's shape (True = replace, as in PyTorch's attention masks). `value`
        is a number or a 0-d tensor, as in PyTorch; one that requires grad gets
        the sum of the gradient over the filled places (Tensor.where does it)."""
        mask = check_mask("masked_fill", mask, self.shape)
        value = self._operand(value, "masked_fill")
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape "
                             f"{shape_str(value.shape)}")
        if value.requires_grad:
            return Tensor.where(mask, value, self)
        return ops.MaskedFill.apply(self, mask=mask, value=value.data)

    def split(self, size, axis=0):
        """Cut along `axis` into pieces of `size` (the last may be shorter), or
        into pieces of the sizes in a list, as torch.split does."""
        if self.ndim == 0:
            raise ValueError("split: a 0-d tensor has no axis to split")
        axis = normalize_axes("split", axis, self.ndim)[0]
        length = self.shape[axis]
        if isinstance(size, (list, tuple)):
            if any(n < 0 for n in size):
                raise ValueError(f"split: sizes {list(size)} include a negative size")
            if sum(size) != length:
                raise ValueError(f"split: sizes {list(size)} add up to {sum(size)}, but axis "
                                 f"{axis} of shape {shape_str(self.shape)} has {length}")
            sizes = list(size)
        else:
            if size <= 0:
                raise ValueError(f"split: size must be positive, got {size}")
            sizes = [min(size, length - start) for start in range(0, length, size)]
        return list(ops.Split.apply(self, sizes=sizes, axis=axis))

    @staticmethod
    def cat(tensors, axis=0):
        """Join tensors along an existing axis; all other sizes must match."""
        tensors = _tensor_list("cat", tensors)
        first = tensors[0]
        if first.ndim == 0:
            raise ValueError("cat: 0-d tensors have no axis to join along; use Tensor.stack")
        axis = normalize_axes("cat", axis, first.ndim)[0]
        for t in tensors[1:]:
            if t.ndim != first.ndim or any(
                    a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
                raise ValueError(f"cat: shapes {[shape_str(t.shape) for t in tensors]} differ "
                                 f"outside axis {axis}")
        return ops.Cat.apply(*tensors, axis=axis)

    @staticmethod
    def stack(tensors, axis=0):
        """Join same-shaped tensors along a new axis."""
        tensors = _tensor_list("stack", tensors)
        shapes = {t.shape for t in tensors}
        if len(shapes) != 1:
            raise ValueError(f"stack: all tensors must have one shape, got "
                             f"{[shape_str(t.shape) for t in tensors]}")
        axis = normalize_axes("stack", axis, tensors[0].ndim + 1)[0]
        grown = [t.reshape(t.shape[:axis] + (1,) + t.shape[axis:]) for t in tensors]
        return ops.Cat.apply(*grown, axis=axis)

    @staticmethod
    def where(condition, a, b):
        """a where condition is True, else b (boolean condition; a, b tensors or
        numbers, all broadcast together)."""
        if not isinstance(a, Tensor):
            if isinstance(b, Tensor):
                b, a = b._operands(a, "where")
            elif _numbers(a) is not None:
                a = Tensor(a)
            else:
                raise TypeError(f"where: a must be a tensor or numbers, got {type(a).__name__}")
        a, b = a._operands(b, "where")
        condition = check_mask("where", condition, None, name="condition")
        try:
            np.broadcast_shapes(condition.shape, a.shape, b.shape)
        except ValueError:
            raise ValueError(f"where: condition {shape_str(condition.shape)}, a "
                             f"{shape_str(a.shape)} and b {shape_str(b.shape)} do not "
                             "broadcast together") from None
        return ops.Where.apply(a, b, condition=condition)


def walk_backward(root, grad=None):
    """Yield (tensor, gradient) for every tensor of the graph behind `root`
    that requires grad, outputs before inputs; each gradient is complete when
    yielded. `backward` keeps the leaves' gradients; viz reads all of them."""
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input of the "
                           "ops that made it had requires_grad=True, or it was made under no_grad)")
    if grad is None:
        if root.size != 1:
            raise RuntimeError(f"backward: the output has shape {shape_str(root.shape)}; "
                               "backward() without a gradient needs a scalar (one element). "
                               "Reduce it first (.sum(), .mean()) or pass grad=")
        grad = np.ones(root.shape, dtype=root.dtype)
    else:
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.dtype)
        if grad.shape != root.shape:
            raise ValueError(f"backward: grad has shape {shape_str(grad.shape)} but the output "
                             f"has shape {shape_str(root.shape)}")
    grads = {id(root): grad}
    order = topological_order(root)
    gather = _Gather(order)
    for tensor in reversed(order):
        g = grads.pop(id(tensor), None)
        if g is not None:
            yield tensor, g
        ctx = tensor._ctx
        if isinstance(ctx, Output):
            ctx, g = ctx.op, gather(ctx, g)
        if ctx is None or g is None:  # a leaf, or no consumer passed a gradient back
            continue
        parent_grads = ctx.backward(g)
        if not isinstance(parent_grads, tuple):
            parent_grads = (parent_grads,)
        for parent, needs, pg in zip(ctx.parents, ctx.needs_grad, parent_grads):
            if not needs or pg is None:
                continue
            pg = unbroadcast(pg, parent.shape)
            key = id(parent)
            # out of place: a backward may hand the same array to two inputs
            grads[key] = grads[key] + pg if key in grads else pg


class _Gather:
    """Collects the gradients of an op's several outputs, so that the op runs
    its backward once, when the walk has visited the last of them."""

    def __init__(self, order):
        self.left, self.grads = {}, {}  # per op: outputs still to visit, gradient per output
        for tensor in order:
            if isinstance(tensor._ctx, Output):
                op = tensor._ctx.op
                self.left[id(op)] = self.left.get(id(op), 0) + 1
                self.grads[id(op)] = [None] * op.n_outputs

    def __call__(self, output, g):
        """Note `g` for `output`; the list of all the op's output gradients once
        this was its last output (None before, or if none got a gradient)."""
        key = id(output.op)
        self.grads[key][output.index] = g
        self.left[key] -= 1
        if self.left[key] or all(x is None for x in self.grads[key]):
            return None
        return self.grads.pop(key)


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
                         if (include_constants or parent.requires_grad) and id(parent) not in visited)
    return order


# ----- argument checking shared by the methods above -------------------------
def normalize_axes(op, axis, ndim, allow_repeat=False):
    """axis None | int | tuple -> sorted tuple of non-negative axes, or a clear
    ValueError naming the op. As in PyTorch, a 0-d tensor accepts axis 0 or -1
    (there is nothing to reduce over, so they give no axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, (tuple, list)) or not all(isinstance(a, (int, np.integer)) for a in axes):
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


def _shape_arg(shape):
    """Accept f(2, 3) and f((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def resolve_reshape(old, new):
    """Fill in one -1 and check the element count."""
    size = int(np.prod(old))
    if list(new).count(-1) > 1:
        raise ValueError(f"reshape: only one size may be -1, got {shape_str(new)}")
    known = int(np.prod([n for n in new if n != -1]))
    if -1 in new:
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape {shape_str(old)} ({size} elements) "
                             f"into {shape_str(new)}")
        new = tuple(size // known if n == -1 else n for n in new)
    if int(np.prod(new)) != size or any(n < 0 for n in new):
        raise ValueError(f"reshape: cannot reshape {shape_str(old)} ({size} elements) into "
                         f"{shape_str(new)} ({int(np.prod(new))} elements)")
    return tuple(new)


def check_mask(op, mask, shape, name="mask", target="the tensor's shape"):
    """A boolean mask as an ndarray; with `shape`, it must broadcast to it.
    `name` and `target` say in the errors what the mask and the shape are."""
    array = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
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


def _tensor_list(op, tensors):
    """The list of tensors that cat and stack join: at least one, all Tensors."""
    if isinstance(tensors, Tensor):
        raise TypeError(f"{op}: takes a list of tensors, got one Tensor")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: element {i} is a {type(t).__name__}, not a Tensor")
    return tensors


def _plain_index(index):
    """Tensors inside an index become their arrays (integer or boolean)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


from . import ops  # noqa: E402  (ops subclass Function, defined above)
