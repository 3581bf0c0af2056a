"""tinygrad_enc: a small reverse-mode autograd engine on numpy, and a
Transformer encoder built on it part by part.

    from tinygrad_enc import Tensor, no_grad, manual_seed, detect_anomaly, nn, optim
    import tinygrad_enc.functional as F
    from tinygrad_enc.gradcheck import gradcheck
"""
from . import functional, gradcheck, interop, nn, optim
from .anomaly import AnomalyError, detect_anomaly
from .profiler import profile
from .tensor import Tensor, is_grad_enabled, manual_seed, no_grad

__all__ = ["Tensor", "no_grad", "manual_seed", "is_grad_enabled", "detect_anomaly",
           "AnomalyError", "profile", "functional", "gradcheck", "interop", "nn", "optim"]
