"""detect_anomaly: stop at the first NaN or infinity, and say where it came from.

    with tinygrad_enc.detect_anomaly():
        loss = criterion(model(x), y)
        loss.backward()

Inside the block every op's forward result and every gradient its backward
sends are checked. The first NaN (or an infinity that the op made from finite
inputs, like log(0) or exp(1000)) raises AnomalyError naming the op, the
module path that ran it, the input shapes, and the line of your code that
created the op (recorded at forward time, inside the block). Infinities
that are meant, such as the -inf that masks attention scores, pass. Outside
the block nothing is checked and nothing costs: the check is an observer
(tensor.add_observer), and it watches the thread that opened the block only.
"""
import linecache
import os
import sys

import numpy as np

from .checks import shape_str
from .tensor import add_observer, remove_observer

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class AnomalyError(RuntimeError):
    """A NaN or an infinity appeared; the message says where."""


def _user_line():
    """'file:line in function: code' of the innermost frame outside this package."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "unknown"
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}: {code}"


def _bad(array):
    """'NaN' or 'inf' if a float array holds one, else None."""
    array = np.asarray(array)
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    return "NaN" if np.isnan(array).any() else "inf"


def _where(op):
    """The lines of an AnomalyError that say which op it was and where it ran."""
    scope = getattr(op, "scope", None)
    module = f"'{scope.path}' ({scope.kind})" if scope is not None and scope.path else \
        scope.kind if scope is not None else "none (called outside any module)"
    shapes = ", ".join(shape_str(a.shape) for a in getattr(op, "input_arrays", ()))
    created = getattr(op, "created_at", "unknown (made before detect_anomaly began)")
    return (f"\n  op:         {op.op_name}\n  module:     {module}\n  inputs:     "
            f"{shapes or 'none'}\n  created at: {created}")


class detect_anomaly:
    """Context manager: raise AnomalyError at the first NaN or unexpected
    infinity in a forward result or a gradient (see the module docstring)."""

    def __enter__(self):
        add_observer(self._observe)
        return self

    def __exit__(self, *exc):
        remove_observer(self._observe)
        return False

    def _observe(self, phase, op, seconds, result):
        if phase == "forward":
            op.created_at = _user_line()
            self._check_forward(op, result)
            return
        for i, grad in enumerate(result if type(result) is tuple else (result,)):
            kind = _bad(grad) if grad is not None else None
            if kind is not None:
                raise AnomalyError(f"detect_anomaly: the backward of {op.op_name} sent {kind} "
                                   f"in the gradient of its input {i} "
                                   f"{shape_str(np.shape(grad))}{_where(op)}")

    @staticmethod
    def _check_forward(op, result):
        kind = _bad(result)
        if kind is None:
            return
        inputs = [_bad(a) for a in op.input_arrays]
        if kind == "inf" and ("inf" in inputs or _fills_infinity(op)):
            return  # an infinity passed on or put there on purpose (a -inf mask)
        source = next((f"; its input {i} already held {k} (a weight or data set outside "
                       "the ops, or a value made before detect_anomaly began)"
                       for i, k in enumerate(inputs) if k == kind), "")
        raise AnomalyError(f"detect_anomaly: the forward of {op.op_name} produced "
                           f"{kind}{source}{_where(op)}")


def _fills_infinity(op):
    """masked_fill with -inf (attention masks) makes infinities on purpose."""
    return op.op_name == "masked_fill" and bool(np.isinf(op.value))
