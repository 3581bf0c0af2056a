"""Every primitive op: array math only, its forward and its backward side by side.

Each op is a small class with `forward(*arrays, **kwargs) -> array` and
`backward(g) -> one gradient per input` (None for an input that needs none),
where g is the gradient of the op's output. The comment on top of each
backward is the derivative it implements. This file knows nothing of Tensors
or of the graph: `tensor.apply` runs a forward on the tensors' arrays, records
the op in the graph, and later the walk calls its backward. A backward may
return a gradient in the op's broadcast shape: the walk sums it back to each
input's shape (`unbroadcast`), so broadcasting is undone in one place.

The ops come in families: elementwise with two inputs, elementwise with one,
the matrix product, reductions, shape and movement, and five fused ops at
the end: `softmax`, `log_softmax`, `layer_norm`, `linear` and `cross_entropy`
each do in one forward and one hand-written backward what several
primitives would (faster, and stable for huge logits); the functions of the
same names in functional.py call them.
`mean` and `var` are composed from primitives in tensor.py; attention and the
losses in functional.py.
"""
import math

import numpy as np

from .special import erf


class Op:
    """One primitive. `apply` (tensor.py) sets `needs_grad`, one bool per
    input, when it records the op; a backward uses it to skip gradients
    nobody asked for.

    float_result: the result is a float whatever the inputs, so integer or
    boolean inputs become float32 first (PyTorch's default dtype; numpy
    would give float64). array_inputs: attributes holding arrays the op read
    besides its tensors (a mask, an index), which a drawing shows as inputs.

    fresh_grads: every array the backward returns is new, and the op keeps
    none of them (the walk may then hand one on as the next op's to
    overwrite). overwrites_grad: the backward takes `backward(g, owned)`,
    and the walk passes owned=True when no one else holds g: the op may then
    compute in place in g instead of making an array of g's size
    (tensor.walk_backward, reuse=True).

    overwrite=True, a setting some forwards take (Softmax): the result may
    be written into the first input's array. The caller promises that
    nothing reads that array again (attention releases its scores).
    """
    float_result = False
    array_inputs = ()
    out_version = 0  # the output's version when the op made it (in-place ops raise it)
    fresh_grads = False
    overwrites_grad = False

    @property
    def op_name(self):
        """The op's readable name (`matmul`, `softmax`); a class may set its own."""
        return type(self).__name__.lower()


# ----- elementwise, two inputs (numpy broadcasting) ---------------------------
class Add(Op):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        # d(a+b)/da = 1, d(a+b)/db = 1
        return g, g


class Sub(Op):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        # d(a-b)/da = 1, d(a-b)/db = -1
        return g, -g if self.needs_grad[1] else None


class Mul(Op):
    fresh_grads = True

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        # d(ab)/da = b, d(ab)/db = a
        return (g * self.b if self.needs_grad[0] else None,
                g * self.a if self.needs_grad[1] else None)


class Div(Op):
    float_result = True
    fresh_grads = True

    def forward(self, a, b):
        self.b = b
        self.out = a / b
        return self.out

    def backward(self, g):
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -(a/b)/b
        g_over_b = g / self.b
        return g_over_b, -g_over_b * self.out if self.needs_grad[1] else None


# ----- elementwise, one input -------------------------------------------------
class Neg(Op):
    def forward(self, x):
        return -x

    def backward(self, g):
        # d(-x)/dx = -1
        return -g


class Pow(Op):
    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        return x ** exponent

    def backward(self, g):
        # d(x^n)/dx = n x^(n-1)   (0 for n = 0, as in PyTorch)
        n = self.exponent
        if n == 0:
            return np.zeros_like(g)
        return g * n * self.x ** (n - 1)


class Exp(Op):
    float_result = True

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, g):
        # d(e^x)/dx = e^x
        return g * self.out


class Log(Op):
    float_result = True

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        # d(ln x)/dx = 1/x
        return g / self.x


class Sqrt(Op):
    float_result = True

    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, g):
        # d(sqrt x)/dx = 1 / (2 sqrt x)
        return g / (2 * self.out)


class Tanh(Op):
    float_result = True

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, g):
        # d(tanh x)/dx = 1 - tanh^2 x
        return g * (1 - self.out * self.out)


class Sigmoid(Op):
    float_result = True

    def forward(self, x):
        # exp of -|x| only, so neither branch overflows
        e = np.exp(-np.abs(x))
        self.out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, g):
        # d(sigma x)/dx = sigma (1 - sigma)
        return g * self.out * (1 - self.out)


def _relu(x, out=None):
    """max(x, 0); NaN stays NaN, as in PyTorch. Against a row of zeros, not
    the number 0: numpy's maximum of an array and a scalar takes a loop
    without SIMD (measured on (1024, 256) float32: 225 us against 80)."""
    return np.maximum(x, np.zeros(x.shape[-1:], x.dtype), out=out)


class ReLU(Op):
    def forward(self, x):
        self.out = _relu(x)
        return self.out

    def backward(self, g):
        # d relu/dx = 1 where x > 0, else 0 (also at 0, as in PyTorch); out > 0
        # exactly where x > 0, and the output is kept anyway: no mask to store
        return g * (self.out > 0)


class Abs(Op):
    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, g):
        # d|x|/dx = sign(x)   (0 at 0, as in PyTorch)
        return g * np.sign(self.x)


# Python floats, not numpy float64 scalars: under numpy's promotion rules a
# float64 scalar would turn float32 arrays into float64 ones
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_SQRT_2 = math.sqrt(2)
_SQRT_2PI = math.sqrt(2 * math.pi)


class GELU(Op):
    """x * Phi(x), Phi the standard normal CDF (exact, via erf), or PyTorch's
    tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    float_result = True


    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + erf(x / _SQRT_2))
        return x * self.cdf

    def backward(self, g):
        x = self.x
        if self.approximate == "tanh":
            # d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
            t = self.t
            inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner)
        # d(x Phi(x))/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
        pdf = np.exp(-0.5 * x * x) / _SQRT_2PI
        return g * (self.cdf + x * pdf)


# ----- matrix product ---------------------------------------------------------
class MatMul(Op):
    """a @ b with numpy's rules: batch dimensions broadcast, 1-D operands are a
    row (left) or a column (right) vector that is dropped from the result.
    (tensor.py checks the shapes before it gets here.)

    Two settings, for attention:
    scale, a number: (a @ b) * scale in one op, attention's scores
    Q·Kᵀ/√d_k. The product is scaled in place, so no scaled copy of an
    operand is made or kept; the backward scales its products the same way.
    layout, for a product of stacks: the order of the result's axes in
    memory. Attention's Z, (B, H, T, d_k), is made with layout=(0, 2, 1, 3):
    held as (B, T, H, d_k), each token's heads side by side, so that
    concatenating them, z.transpose(1, 2).reshape(B, T, H * d_k), is a view
    and not a copy. The values are the same either way."""
    fresh_grads = True

    def forward(self, a, b, layout=None, scale=None):
        self.a, self.b, self.scale = a, b, scale
        if layout is None:
            out = _matmul(a, b)
        else:
            shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
            held = np.empty([shape[axis] for axis in layout], np.result_type(a, b))
            out = np.matmul(a, b, out=held.transpose(np.argsort(layout)))
        if scale is not None:
            out *= scale
        return out

    def backward(self, g):
        # d(a@b)/da = g @ b^T,  d(a@b)/db = a^T @ g
        a = self.a if self.a.ndim > 1 else self.a[None, :]  # (..., M, K)
        b = self.b if self.b.ndim > 1 else self.b[:, None]  # (..., K, N)
        # put back the axes the vectors dropped: g is (..., M, N). N first, so
        # that vector @ vector (g of shape ()) becomes (1,) and then (1, 1)
        if self.b.ndim == 1:
            g = np.expand_dims(g, -1)
        if self.a.ndim == 1:
            g = np.expand_dims(g, -2)
        grad_a = grad_b = None
        if self.needs_grad[0]:
            grad_a = _matmul(g, np.swapaxes(b, -1, -2))
            if self.a.ndim == 1:
                grad_a = grad_a[..., 0, :]
        if self.needs_grad[1]:
            if b.ndim == 2:  # one weight shared by all batch rows: a single 2-D product
                grad_b = _rows(a).T @ _rows(g)
            else:
                grad_b = np.swapaxes(a, -1, -2) @ g
            if self.b.ndim == 1:
                grad_b = grad_b[..., 0]
        if self.scale is not None:  # d(s a@b)/da = s g @ b^T, and for b the same: both new arrays
            for grad in (grad_a, grad_b):
                if grad is not None:
                    grad *= self.scale
        return grad_a, grad_b


def _matmul(a, b):
    """a @ b, with a stack of matrices times one matrix, (..., M, K) @ (K, N),
    done as one 2-D product of all the rows: numpy would loop over the stack,
    one small BLAS call per matrix (a Linear layer on (B, T, d) is this case)."""
    if a.ndim > 2 and b.ndim == 2:
        return (_rows(a) @ b).reshape(a.shape[:-1] + b.shape[-1:])
    return a @ b


def _rows(x):
    """(..., K) as one (rows, K) matrix (explicit sizes: reshape(-1, 0) is ambiguous)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


# ----- reductions -------------------------------------------------------------
class Sum(Op):
    def forward(self, x, axis, keepdims):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return np.asarray(x.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):
        # d(sum x)/dx_i = 1: copy g back along the summed axes
        if not self.keepdims:
            g = np.expand_dims(g, self.axis)
        return np.broadcast_to(g, self.shape)


class Max(Op):
    def forward(self, x, axis, keepdims):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.out = x.max(axis=axis, keepdims=True)
        return np.asarray(self.out if keepdims else self.out.squeeze(axis))

    def backward(self, g):
        # d(max x)/dx_i = 1 at the maximum (shared equally among ties), else 0;
        # a NaN is the maximum of its row (it propagates), so it gets the gradient
        if not self.keepdims:
            g = np.expand_dims(g, self.axis)
        winners = (self.x == self.out) | (np.isnan(self.x) & np.isnan(self.out))
        ties = winners.sum(axis=self.axis, keepdims=True).astype(g.dtype)  # int would make g float64
        return winners * (g / ties)


# ----- shape and movement ------------------------------------------------------
class Reshape(Op):
    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        # reshape moves no values: reshape g back
        return g.reshape(self.shape)


class Permute(Op):
    def forward(self, x, axes):
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):
        # undo the permutation: transpose by its inverse
        return g.transpose(np.argsort(self.axes))


class Expand(Op):
    def forward(self, x, shape):
        return np.broadcast_to(x, shape)

    def backward(self, g):
        # each input value was used at every broadcast copy: the walk sums them
        return g


class GetItem(Op):
    """x[index]: basic indexing (ints, slices, None, ...), integer arrays (int64,
    tensor.py sees to that) and boolean masks, with numpy's rules."""
    array_inputs = ("index",)

    def forward(self, x, index):
        self.shape, self.index = x.shape, index
        return np.asarray(x[index])

    def backward(self, g):
        # each picked element gets its g; an index picked twice gets the sum
        grad = np.zeros(self.shape, dtype=g.dtype)
        if not _has_integer_array(self.index):  # slices, ints, boolean masks: no repeats
            grad[self.index] = g
        elif isinstance(self.index, np.ndarray):  # whole rows, as an embedding looks them up
            row = math.prod(self.shape[1:])
            # the flat position of every element picked: np.add.at's fast case,
            # a 1-D index into a 1-D array, is several times quicker than rows
            flat = self.index[..., None] * row + np.arange(row)
            np.add.at(grad.reshape(-1), flat.reshape(-1), g.reshape(-1))
        else:
            np.add.at(grad, self.index, g)
        return grad


def _has_integer_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) and np.asarray(p).dtype != np.bool_ for p in parts)


class MaskedFill(Op):
    op_name = "masked_fill"
    array_inputs = ("mask",)

    def forward(self, x, mask, value):
        self.mask, self.value = mask, value  # the value: -inf masks on purpose (detect_anomaly)
        return np.where(mask, x.dtype.type(value), x)

    def backward(self, g):
        # filled places are constants: no gradient flows to them
        return np.where(self.mask, 0, g).astype(g.dtype, copy=False)


class Where(Op):
    array_inputs = ("condition",)

    def forward(self, a, b, condition):
        self.condition = condition
        return np.where(condition, a, b)

    def backward(self, g):
        # g goes to a where the condition holds, to b elsewhere
        zero = np.zeros((), dtype=g.dtype)
        return (np.where(self.condition, g, zero) if self.needs_grad[0] else None,
                np.where(self.condition, zero, g) if self.needs_grad[1] else None)


class Cat(Op):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, g):
        # each input gets back its own slice of g
        return tuple(np.split(g, self.bounds, axis=self.axis))


# ----- fused: softmax family ---------------------------------------------------
def _exp_rows(x, axis, overwrite=False):
    """(e, total, shift): e = exp(x - shift), a new array (overwrite=True: x's
    own, which the caller gives up); total, the sum of e along `axis`, kept
    as an axis of size 1; shift, None (x as it is) or the max along `axis`
    (kept). Softmax and log-sum-exp come out the same for any shift. The max
    is the usual one, as exp of x - max cannot overflow; but numpy takes
    longer to find the max of short rows (attention's 32 keys) than to take
    exp of them. So exp(x) is taken first, and kept when every row's total is
    finite and so large that an entry that underflowed is below eps^2 of it:
    then nothing was lost, and x was not rounded by a subtraction either.
    Otherwise (logits near exp's overflow, inf, NaN, or a row far below 0)
    each row is shifted by its max. A row that is all -inf (every entry
    masked) is shifted by 0, not -inf, so its entries stay 0 instead of NaN.
    With overwrite, x is gone once exp is taken, so the choice is made before,
    from x's extremes: unshifted when no entry is below log(smallest total)
    and none so large that a row's sum could overflow."""
    info = np.finfo(x.dtype)
    row = math.prod(x.shape[a] for a in (axis if isinstance(axis, tuple) else (axis,)))
    smallest = info.tiny / info.eps ** 2 * row  # float32: 8e-25 per entry of a row
    if overwrite and x.size:
        if np.log(smallest) <= x.min() and x.max() < np.log(info.max / row):  # False for NaN
            return x, _sum_along(np.exp(x, out=x), axis), None
        return _shifted_exp(x, axis, out=x)
    with np.errstate(over="ignore", under="ignore"):  # either one sends the rows the other way
        e = np.exp(x, out=np.empty_like(x))
        total = _sum_along(e, axis)
    if x.size == 0 or (total.min() >= smallest and total.max() < np.inf):  # False for NaN as well
        return e, total, None
    return _shifted_exp(x, axis, out=e)


def _shifted_exp(x, axis, out):
    """_exp_rows shifted by each row's max, into `out` (which may be x)."""
    top = x.max(axis=axis, keepdims=True, initial=-np.inf)  # initial: an empty row has a max
    shift = np.where(np.isfinite(top), top, 0)
    np.exp(np.subtract(x, shift, out=out), out=out)
    return out, _sum_along(out, axis), shift


def _sum_last(x, axes):
    """x summed over its last axes `axes`, kept as axes of size 1. As a product
    with a vector of ones: numpy's own reduction over a short last axis (a
    token's 64 features) is several times slower than one matrix-vector
    product (measured on (1024, 64) float32: 47 us against 10 us)."""
    if not x.flags.c_contiguous or x.size == 0:
        return x.sum(axis=axes, keepdims=True)
    kept = x.shape[:axes[0]]
    rows = x.reshape(math.prod(kept), -1)
    return (rows @ np.ones(rows.shape[1], dtype=x.dtype)).reshape(kept + (1,) * len(axes))


def _along_last(axis, ndim):
    """Is `axis` (an int, or a tuple as normalize_axes gives) just the last axis?"""
    return ndim > 0 and axis in (-1, ndim - 1, (ndim - 1,))


def _sum_along(x, axis):
    """x summed along `axis`, kept as axes of size 1 (_sum_last when it is the last)."""
    if _along_last(axis, x.ndim):
        return _sum_last(x, (x.ndim - 1,))
    return x.sum(axis=axis, keepdims=True)


def _dot_along(a, b, axis):
    """sum(a * b) along `axis`, kept: for the last axis one einsum, without
    the array a * b (measured on softmax's (32, 8, 128, 128) float32: 2.6 ms
    against 5.8 ms)."""
    if _along_last(axis, a.ndim):
        return np.einsum("...i,...i->...", a, b)[..., None]
    return (a * b).sum(axis=axis, keepdims=True)


class Softmax(Op):
    """exp(x_i) / sum_j exp(x_j) along `axis`. A row whose entries are all -inf
    gives all zeros (PyTorch gives NaN there): a query that may attend to no
    key receives nothing."""
    float_result = True
    fresh_grads = overwrites_grad = True

    def forward(self, x, axis, overwrite=False):
        self.axis = axis
        e, total, _ = _exp_rows(x, axis, overwrite)
        e *= 1 / np.where(total == 0, 1, total)  # one division per row, not per score
        self.out = e
        return e

    def backward(self, g, owned=False):
        # d/dx softmax: s * (g - sum(g * s))
        s = self.out
        dot = _dot_along(g, s, self.axis)
        grad = np.subtract(g, dot, out=g) if owned else g - dot
        grad *= s  # in place: one fewer array of the scores' size
        return grad


class LogSoftmax(Op):
    """x_i - log sum_j exp(x_j) along `axis`, computed from x - max where a
    shift is needed (_exp_rows), so it stays finite and exact for logits of +-1e4."""
    float_result = True

    op_name = "log_softmax"

    def forward(self, x, axis):
        self.axis = axis
        e, total, shift = _exp_rows(x, axis)
        total = np.where(total == 0, 1, total)
        shifted = x if shift is None else x - shift  # x - max first: exact for logits of 1e4
        out = shifted - np.log(total)
        self.softmax = np.multiply(e, 1 / total, out=e)
        return out

    def backward(self, g):
        # d/dx log_softmax: g - softmax * sum(g)
        return g - self.softmax * g.sum(axis=self.axis, keepdims=True)


# ----- fused: layer norm ---------------------------------------------------------
class LayerNorm(Op):
    """y = x_hat * weight + bias, x_hat = (x - mean) / sigma over the last axes
    (`axes`), sigma = sqrt(var + eps) with the biased variance (divide by n).
    weight and bias (the normalized shape) come together or not at all. One
    op instead of the eleven primitives it is composed of (two means,
    subtract, square, add eps, sqrt, divide, times weight, plus bias): layer
    norm runs twice per encoder layer, on every token. It works on x as a
    matrix, one row per token: each row's sums are one matrix-vector product
    with ones or one einsum, never an array of squares. It keeps no array of
    x's size for the backward, only each row's mean and 1/sigma: the
    backward makes x_hat again from x, which the graph keeps anyway, in the
    array that becomes dx (with the affine part; without it x_hat is the
    output)."""
    float_result = True
    fresh_grads = overwrites_grad = True

    op_name = "layer_norm"

    def forward(self, x, weight=None, bias=None, *, axes, eps):
        self.shape, self.weight = x.shape, weight
        rows = x.reshape(math.prod(x.shape[:axes[0]]), math.prod(x.shape[axes[0]:]))
        self.scale = 1 / max(rows.shape[1], 1)  # 1/n
        self.mean = (rows @ np.ones(rows.shape[1], x.dtype))[:, None] * self.scale
        x_hat = rows - self.mean
        variance = np.einsum("ij,ij->i", x_hat, x_hat) * self.scale
        self.inv_sigma = (1.0 / np.sqrt(variance + eps))[:, None]
        x_hat *= self.inv_sigma
        if weight is None:
            self.x_hat = x_hat  # the output itself
            return x_hat.reshape(x.shape)
        self.rows = rows  # x: the backward makes x_hat again from it
        y = np.multiply(x_hat, weight.reshape(-1), out=x_hat)  # y = x_hat * weight + bias, in place
        y += bias.reshape(-1)
        return y.reshape(x.shape)

    def backward(self, g, owned=False):
        # with gx = g * weight: dx = (gx - mean(gx) - x_hat * mean(gx * x_hat)) / sigma,
        # d weight = sum over the rows of g * x_hat, d bias = sum over the rows of g
        weight, scale, inv_sigma = self.weight, self.scale, self.inv_sigma
        if weight is None:
            x_hat = self.x_hat
            gx = g.reshape(x_hat.shape)
            grad = x_hat * (np.einsum("ij,ij->i", gx, x_hat)[:, None] * -scale)  # the one new array
        else:
            grad = self.rows - self.mean  # x_hat again: the one new array, which becomes dx
            grad *= inv_sigma
            g = g.reshape(grad.shape)
            needs = self.needs_grad
            grad_w = np.einsum("ij,ij->j", g, grad).reshape(weight.shape) if needs[1] else None
            grad_b = (np.ones(g.shape[0], g.dtype) @ g).reshape(weight.shape) if needs[2] else None
            w = weight.reshape(-1)  # then gx = g * weight, in g itself when it is ours
            gx = np.multiply(g, w, out=g) if owned else g * w
            grad *= np.einsum("ij,ij->i", gx, grad)[:, None] * -scale
        grad += gx
        grad -= (gx @ np.ones(gx.shape[1], gx.dtype))[:, None] * scale
        grad *= inv_sigma
        grad = grad.reshape(self.shape)
        if weight is None:
            return grad
        return (grad if needs[0] else None), grad_w, grad_b


# ===== API breadth: the primitives the tensor API is composed from ============
# Everything else in the API is composed from the ops above and these (see
# docs/primitives.md). Each of these is a primitive for a stated reason.

# ----- elementwise, one input: trigonometry, erf, steps, casts ---------------
class Sin(Op):
    float_result = True

    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, g):
        # d(sin x)/dx = cos x
        return g * np.cos(self.x)


class Cos(Op):
    """cos x. A primitive, not sin(x + pi/2): adding pi/2 rounds x, and near
    cos's zeros that is a large relative error (measured in float32 on
    [1.5, 1.65]: up to 1.4e-2, against 1.1e-7 for np.cos)."""
    float_result = True

    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, g):
        # d(cos x)/dx = -sin x
        return -g * np.sin(self.x)


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


class Erf(Op):
    """erf x = 2/sqrt(pi) * integral_0^x exp(-t^2) dt (special.py; GELU's Phi)."""
    float_result = True

    def forward(self, x):
        self.x = x
        return erf(x)

    def backward(self, g):
        # d(erf x)/dx = 2/sqrt(pi) exp(-x^2)
        return g * (_TWO_OVER_SQRT_PI * np.exp(-self.x * self.x))


class Step(Op):
    """floor, ceil, round (half to even, as PyTorch) or sign of a float array:
    `fn` is numpy's function. Piecewise constant, so the gradient is 0 wherever
    it exists, as in PyTorch; one op for the four."""

    def forward(self, x, fn):
        self.fn = fn
        return fn(x)

    def backward(self, g):
        # d(step x)/dx = 0: flat between the jumps
        return np.zeros_like(g)

    @property
    def op_name(self):
        return self.fn.__name__


class Cast(Op):
    """x in another dtype. Between float dtypes the gradient flows back, cast to
    x's dtype; to an integer or boolean dtype nothing flows (tensor.py records
    no graph for those)."""

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        # d(cast x)/dx = 1, in x's dtype
        return g.astype(self.dtype)


# ----- elementwise, two inputs: maximum, power ---------------------------------
class Maximum(Op):
    """The larger of a and b, elementwise. A primitive: where(a > b, a, b) would
    give all of a tie's gradient to b, where PyTorch gives each half.
    minimum(a, b) is -maximum(-a, -b)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)  # NaN wins, as in PyTorch

    def backward(self, g):
        # d max(a, b)/da = 1 where a > b, 1/2 where a == b, 0 where a < b (b mirrored)
        shared = np.where(self.a == self.b, g * 0.5, g)
        zero = np.zeros((), dtype=g.dtype)
        return (np.where(self.a < self.b, zero, shared) if self.needs_grad[0] else None,
                np.where(self.b < self.a, zero, shared) if self.needs_grad[1] else None)


class Power(Op):
    """a ** b with a tensor exponent (or a tensor raised by a number: 2 ** x).
    A primitive: exp(b ln a) is NaN for a negative base, where (-2) ** 2 = 4,
    and rounds where np.power is exact."""
    op_name = "pow"

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = np.power(a, b)
        return self.out

    def backward(self, g):
        # d(a^b)/da = b a^(b-1) (0 where b = 0), d(a^b)/db = a^b ln a (0 where a = 0, b >= 0)
        a, b = self.a, self.b
        zero = np.zeros((), dtype=g.dtype)
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_grad[0]:
                grad_a = np.where(b == 0, zero, g * b * np.power(a, b - 1))
            if self.needs_grad[1]:
                grad_b = np.where((a == 0) & (b >= 0), zero, g * self.out * np.log(a))
        return grad_a, grad_b


# ----- reductions and scans: prod, cumsum ---------------------------------------
class Prod(Op):
    """Product over `axis` (a tuple). A primitive: exp(sum(log x)) fails for
    x <= 0."""

    def forward(self, x, axis, keepdims):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        return np.asarray(np.prod(x, axis=axis, keepdims=keepdims))

    def backward(self, g):
        # d(prod x)/dx_i = the product of the other elements: the products to
        # the left of i times those to the right (no division, so zeros are fine)
        x, axis = self.x, self.axis
        if not self.keepdims:
            g = np.expand_dims(g, axis)
        if x.size == 0:
            return np.zeros(x.shape, dtype=g.dtype)
        last = tuple(range(x.ndim - len(axis), x.ndim))
        moved = np.moveaxis(x, axis, last)  # (kept..., reduced...)
        rows = moved.reshape(moved.shape[:x.ndim - len(axis)] + (-1,))  # (kept..., n)
        ones = np.ones(rows.shape[:-1] + (1,), dtype=x.dtype)
        left = np.cumprod(np.concatenate([ones, rows[..., :-1]], axis=-1), axis=-1)
        right = np.cumprod(np.concatenate([ones, rows[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        others = np.moveaxis((left * right).reshape(moved.shape), last, axis)
        return g * others


class Cumsum(Op):
    """Running sum along `axis`. A primitive: as a product with a triangle of
    ones, x @ triu(1), it costs n^2 instead of n (measured, forward and
    backward on (64, 512) float32: 9.2 ms against 2.9 ms)."""

    def forward(self, x, axis):
        self.axis = axis
        return np.cumsum(x, axis=axis)

    def backward(self, g):
        # d(cumsum x)_j/dx_i = 1 for j >= i: sum g from the end back to i
        return np.flip(np.cumsum(np.flip(g, self.axis), axis=self.axis), self.axis)


# ----- contraction: einsum --------------------------------------------------------
class Einsum(Op):
    """np.einsum on an equation written out in full (tensor.py does that: one
    letter per axis, every letter one size). A primitive: composed from
    permute, reshape, mul, sum and matmul it would need a plan per equation.
    Its backward is itself an einsum per operand."""

    def forward(self, *arrays, inputs, output):
        self.arrays, self.inputs, self.output = arrays, inputs, output
        return np.asarray(np.einsum(f"{','.join(inputs)}->{output}", *arrays, optimize=True))

    def backward(self, g):
        # d out/d operand_k: contract g with the other operands onto operand k's
        # letters; a letter only operand k has was summed out, so g broadcasts
        # along it; a letter repeated in it (a diagonal, "ii") gets g on the diagonal
        return tuple(self._gradient(k, g) if needed else None
                     for k, needed in enumerate(self.needs_grad))

    def _gradient(self, k, g):
        letters, x = self.inputs[k], self.arrays[k]
        others = [i for i in range(len(self.inputs)) if i != k]
        size = dict(zip(letters, x.shape))
        unique = "".join(dict.fromkeys(letters))
        seen = set(self.output).union(*(self.inputs[i] for i in others))
        kept = "".join(c for c in unique if c in seen)
        terms = ",".join([self.output] + [self.inputs[i] for i in others])
        grad = np.einsum(f"{terms}->{kept}", g, *(self.arrays[i] for i in others), optimize=True)
        grad = np.broadcast_to(grad.reshape([size[c] if c in seen else 1 for c in unique]),
                               [size[c] for c in unique])
        if unique == letters:
            return grad
        full = np.zeros(x.shape, dtype=g.dtype)
        np.einsum(f"{letters}->{unique}", full)[...] = grad  # a writeable view of the diagonal
        return full


# ----- fused: a linear layer and the cross-entropy loss ------------------------------
class Linear(Op):
    """y = x W^T + b on the last axis, (..., in) -> (..., out): the same
    function as the composed `x @ weight.T + bias` (three ops: permute,
    matmul, add; F.linear_composed), in one pass. All the rows of x are one
    (rows, in) matrix, so forward and backward are 2-D matrix products, the
    bias is added in place, and the weight's gradient comes out in the
    weight's own (out, in) layout. relu=True also takes max(0, y) in place
    (F.linear_relu, the feed-forward network's max(0, x W_1 + b_1)): y
    before the relu is never kept, and the relu's mask is read back from
    the output."""
    fresh_grads = overwrites_grad = True

    def forward(self, x, weight, bias=None, *, relu=False):
        self.x, self.weight, self.relu = x, weight, relu
        y = _rows(x) @ weight.T  # (rows, in) @ (in, out) -> (rows, out)
        if bias is not None:
            y += bias
        if relu:
            self.out = _relu(y, out=y)
        return y.reshape(x.shape[:-1] + weight.shape[:1])

    def backward(self, g, owned=False):
        # dx = g W,  dW = g^T x,  db = sum of g over the rows; with relu, g is
        # first zeroed where the output is not > 0 (ReLU's backward)
        rows = _rows(g)  # (rows, out)
        if self.relu:  # in g itself when it is ours to overwrite
            mask = _rows(self.out) > 0
            rows = np.multiply(rows, mask, out=rows) if owned else rows * mask
        needs = self.needs_grad
        grad_x = (rows @ self.weight).reshape(self.x.shape) if needs[0] else None
        grad_w = rows.T @ _rows(self.x) if needs[1] else None
        grad_b = np.ones(rows.shape[0], rows.dtype) @ rows if len(needs) > 2 and needs[2] else None
        return grad_x, grad_w, grad_b

    @property
    def op_name(self):
        return "linear_relu" if self.relu else "linear"


class CrossEntropy(Op):
    """The mean over the kept rows of -sum_c q_c log p_c, p = softmax(logits)
    and q the target distribution ((1 - smoothing) one-hot + smoothing / C):
    the composed log_softmax * q, sum, scale (F.cross_entropy_composed) in
    one op. It never builds q or log p: log p at the target is
    shifted[target] - log sum exp(shifted), and sum_c log p_c is
    sum_c shifted_c - C log sum exp(shifted), with shifted = logits - shift
    (_exp_rows). One array of the logits' size is made, and becomes p for the
    backward (with smoothing and shifted rows, a second one for the sums).

    logits (N, C), the one tensor input; target (N,) class indices, an
    array the op reads (like GetItem's index: no dtype promotion, no
    gradient); kept (N,) boolean, False for ignored rows (their target is
    not read)."""
    float_result = True
    op_name = "cross_entropy"
    array_inputs = ("target",)

    def forward(self, logits, target, kept, smoothing):
        rows, classes = logits.shape
        self.target, self.kept, self.smoothing = target, kept, smoothing
        self.count = max(int(kept.sum()), 1)
        kept_rows = np.flatnonzero(kept)
        p, total, shift = _exp_rows(logits, -1)  # exp(logits - shift): (N, C), the one new array
        picked = logits[kept_rows, target[kept_rows]]
        if shift is not None:  # the logits - max of the rows, as log p is made of them
            picked = picked - shift[kept_rows, 0]
        if smoothing:
            row_sums = _sum_last(logits if shift is None else logits - shift, (1,))[:, 0]
        p *= 1 / total
        log_total = np.log(total[:, 0])
        loss = -(1.0 - smoothing) * (picked - log_total[kept_rows]).sum()
        if smoothing:  # -smoothing / C * sum_c log p_c, on the kept rows
            loss -= smoothing / classes * (row_sums - classes * log_total)[kept_rows].sum()
        self.p = p
        return np.asarray(loss / self.count, dtype=logits.dtype)

    def backward(self, g):
        # d loss / d logits = g (p - q) / count on kept rows, 0 on ignored ones
        scale = g / self.count
        grad = self.p * scale
        kept_rows = np.flatnonzero(self.kept)
        grad[kept_rows, self.target[kept_rows]] -= (1.0 - self.smoothing) * scale
        if self.smoothing:
            grad[kept_rows] -= self.smoothing / self.p.shape[1] * scale
        if kept_rows.size < self.p.shape[0]:
            grad[~self.kept] = 0
        return grad
