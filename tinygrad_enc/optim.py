"""Optimizers, a learning-rate schedule and gradient clipping.

Every update works on the parameters' arrays in place, with plain numpy: no
graph is built, and the Parameter objects (which modules hold) stay the same.
The update rules are PyTorch's, so trajectories agree step by step. Each
numpy call writes into an existing array (`out=`, `*=`): one scratch array,
shared by all the parameters, holds the intermediate terms, so a step makes
no new array the size of a weight.
"""
import math

import numpy as np


class Optimizer:
    """Holds the parameters and their per-parameter state; `step()` updates
    every parameter that has a gradient, `zero_grad()` clears gradients.
    The state arrays follow the weights' dtype: after `model.to(np.float64)`
    the next step casts them, so the running averages are kept in float64."""

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if lr < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {lr}")
        self.lr = lr
        self.state = [{} for _ in self.params]
        self._scratch_arrays = {}  # (dtype, slot) -> flat array, as large as the largest weight

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p.data, p.grad, state)
                p._version += 1  # a graph kept from before the step now refuses backward

    def _update(self, weight, grad, state):
        raise NotImplementedError

    def _scratch(self, like, slot=0):
        """A temporary array of `like`'s shape and dtype, for intermediate
        terms; all parameters share it (`slot` gives a second one)."""
        key = (like.dtype, slot)
        flat = self._scratch_arrays.get(key)
        if flat is None or flat.size < like.size:
            flat = self._scratch_arrays[key] = np.empty(like.size, like.dtype)
        return flat[:like.size].reshape(like.shape)


class SGD(Optimizer):
    """w -= lr * v, where v = momentum * v + (g + weight_decay * w) (v = g on
    the first step, and with momentum=0 simply v = g). nesterov=True uses
    g + momentum * v instead of v, as PyTorch."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def _update(self, weight, grad, state):
        step = self._scratch(weight)
        if self.weight_decay:  # g + weight_decay * w
            np.multiply(weight, self.weight_decay, out=step)
            step += grad
            grad = step
        if self.momentum:
            velocity = state.get("velocity")
            if velocity is None:
                velocity = state["velocity"] = grad.astype(weight.dtype)  # a copy
            else:
                if velocity.dtype != weight.dtype:  # model.to() cast the weights
                    velocity = state["velocity"] = velocity.astype(weight.dtype)
                velocity *= self.momentum
                velocity += grad
            if self.nesterov:  # g + momentum * v
                ahead = self._scratch(weight, slot=1)
                np.multiply(velocity, self.momentum, out=ahead)
                grad = np.add(grad, ahead, out=step)
            else:
                grad = velocity
        np.multiply(grad, self.lr, out=step)
        weight -= step


class Adam(Optimizer):
    """Adam: running means of the gradient (m) and of its square (v), with
    bias correction for their zero start:
        w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    `weight_decay` adds weight_decay * w to the gradient (L2, as torch.optim.Adam)."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def _update(self, weight, grad, state):
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                weight *= 1 - self.lr * self.weight_decay
            else:  # g + weight_decay * w, in a scratch array of its own
                decayed = self._scratch(weight, slot=1)
                np.multiply(weight, self.weight_decay, out=decayed)
                decayed += grad
                grad = decayed
        if not state:
            state.update(t=0, m=np.zeros_like(weight), v=np.zeros_like(weight))
        elif state["m"].dtype != weight.dtype:  # model.to() cast the weights
            state.update(m=state["m"].astype(weight.dtype), v=state["v"].astype(weight.dtype))
        state["t"] += 1
        m, v, t = state["m"], state["v"], state["t"]
        term = self._scratch(weight)
        # m = beta1 m + (1 - beta1) g
        m *= beta1
        np.multiply(grad, 1 - beta1, out=term)
        m += term
        # v = beta2 v + (1 - beta2) g^2
        v *= beta2
        np.multiply(grad, grad, out=term)
        term *= 1 - beta2
        v += term
        # w -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        np.sqrt(v, out=term)
        term /= math.sqrt(1 - beta2 ** t)
        term += self.eps
        np.divide(m, term, out=term)
        term *= self.lr / (1 - beta1 ** t)
        weight -= term


class AdamW(Adam):
    """Adam with decoupled weight decay: w *= 1 - lr * weight_decay before the
    Adam step, instead of adding to the gradient (default 0.01, as PyTorch)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


class NoamSchedule:
    """The paper's warm-up schedule: lr = factor * d_model^-0.5 *
    min(step^-0.5, step * warmup^-1.5), rising linearly for `warmup` steps,
    then decaying as 1/sqrt(step). Sets the optimizer's lr for step 1 on
    creation; call `step()` after each `optimizer.step()`."""

    def __init__(self, optimizer, d_model, warmup, factor=1.0):
        if warmup <= 0:
            raise ValueError(f"NoamSchedule: warmup must be positive, got {warmup}")
        self.optimizer, self.d_model, self.warmup, self.factor = optimizer, d_model, warmup, factor
        self.step_num = 1
        optimizer.lr = self.rate(1)

    def rate(self, step):
        return self.factor * self.d_model ** -0.5 * min(step ** -0.5, step * self.warmup ** -1.5)

    def step(self):
        self.step_num += 1
        self.optimizer.lr = self.rate(self.step_num)
        return self.optimizer.lr


def clip_grad_norm(params, max_norm):
    """Scale all gradients together so their joint L2 norm is at most
    max_norm; return the norm before clipping (as torch's clip_grad_norm_)."""
    grads = [p.grad for p in params if p.grad is not None]
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= scale
    return total
