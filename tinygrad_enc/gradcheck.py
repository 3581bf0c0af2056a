"""Check a backward pass against finite differences.

For f = sum(fn(*inputs) * u), with u a fixed random upstream gradient (random,
so that mistakes that cancel under a uniform gradient still show), the
analytic gradient from `backward` must match the central difference
(f(x + eps) - f(x - eps)) / (2 eps), element by element, in float64.
"""
import numpy as np

from .checks import number
from .tensor import Tensor, no_grad, shape_str


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree; the message names where."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Return True if fn's gradients with respect to every input that requires
    grad match finite differences within atol + rtol * |numeric|; otherwise
    raise GradcheckError naming the input, the worst element and both values.

    inputs: a Tensor or a sequence of arguments for fn (Tensors that require
    grad are checked; they must be float64). fn must be deterministic.
    """
    eps = number("gradcheck", "eps", eps)
    if not eps > 0:
        raise ValueError(f"gradcheck: eps must be > 0 (the finite-difference step), got {eps}")
    atol = number("gradcheck", "atol", atol, low=0.0)
    rtol = number("gradcheck", "rtol", rtol, low=0.0)
    if not isinstance(inputs, (Tensor, list, tuple)):
        raise TypeError(f"gradcheck: inputs must be a Tensor or a list of arguments, got "
                        f"{type(inputs).__name__}")
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [(i, t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i, t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; finite differences need float64 "
                            "(make it with Tensor(..., dtype=np.float64, requires_grad=True))")
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    upstream = np.random.default_rng(seed).standard_normal(out.shape)

    kept = [t.grad for _, t in checked]
    for _, t in checked:
        t.grad = None
    if out.requires_grad:
        out.backward(upstream)
    analytic = [t.grad if t.grad is not None else np.zeros_like(t.data) for _, t in checked]
    for (_, t), grad in zip(checked, kept):
        t.grad = grad

    def objective():
        with no_grad():
            return float(np.sum(fn(*inputs).data * upstream))

    for (i, t), grad in zip(checked, analytic):
        numeric = np.zeros_like(t.data)
        for index in np.ndindex(t.shape):
            original = t.data[index]
            t.data[index] = original + eps
            above = objective()
            t.data[index] = original - eps
            below = objective()
            t.data[index] = original
            numeric[index] = (above - below) / (2 * eps)
        excess = np.abs(grad - numeric) - (atol + rtol * np.abs(numeric))
        # a NaN anywhere (in either gradient) fails too: NaN > 0 alone is False
        if excess.size and (not np.all(np.isfinite(excess)) or excess.max() > 0):
            flat = np.argmax(np.where(np.isfinite(excess), excess, np.inf))
            worst = tuple(int(k) for k in np.unravel_index(flat, t.shape))
            raise GradcheckError(
                f"gradcheck: input {i} of shape {shape_str(t.shape)}, element {worst}: analytic "
                f"{grad[worst]:.8g} vs numeric {numeric[worst]:.8g} (|diff| "
                f"{abs(grad[worst] - numeric[worst]):.3g} > atol + rtol*|numeric| = "
                f"{atol + rtol * abs(numeric[worst]):.3g})")
    return True
