"""Module, Parameter and ModuleList: how layers hold their weights.

A Module finds its parameters and sub-modules by looking at its own
attributes, so `self.q_proj = Linear(d, d)` is all it takes to register one.
Names are dotted paths from the root, as in PyTorch: `layers.0.self_attn.q_proj.weight`.

While a module's forward runs, every op it makes keeps a `Scope`: which
module made it, inside which call. That is how the graph drawing groups ops
into boxes per module, and how detect_anomaly and the profiler name modules.
"""
import weakref
from collections import namedtuple
from collections.abc import Mapping

import numpy as np

from ..checks import integer
from ..tensor import Tensor, array_of, current_scope, set_scope, shape_str


class Parameter(Tensor):
    """A Tensor that requires grad and that a Module registers as a weight.
    A floating ndarray or Tensor keeps its dtype (its values are copied);
    lists and numbers become float32; integer or boolean data raises
    TypeError, since only floating tensors can require grad."""

    def __init__(self, data, dtype=None):
        array = data.data if isinstance(data, Tensor) else data
        if dtype is None and isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.floating):
            dtype = array.dtype
        super().__init__(array, requires_grad=True, dtype=dtype)

    def __repr__(self):
        return f"Parameter(shape={shape_str(self.shape)}, dtype={self.dtype})"


class StateDictError(ValueError, RuntimeError):
    """A state dict that does not fit the module. It is a ValueError, and a
    RuntimeError too, which is what PyTorch raises for the same mistake."""


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _number_array(value, what):
    """`value` (a Tensor, an ndarray, a nested list, any array-like) as an
    ndarray of numbers (bool, integer or float), or a TypeError saying that
    `what` must be one (a string, None, a ragged list, a complex array)."""
    try:
        array = array_of(value)
    except (ValueError, TypeError):  # numpy 2 refuses ragged lists
        array = None
    if array is None or array.dtype.kind not in "biuf":
        got = f"dtype {array.dtype}" if array is not None else type(value).__name__
        raise TypeError(f"{what} must be an array of numbers, got {got}")
    return array


class Scope:
    """One module call: a weak reference to the module (an op's record never
    keeps a model alive) and the scope of the call it was made in (None for
    the outermost). Opening one costs a few hundred nanoseconds; the dotted
    path (`layers.0.self_attn`, relative to the outermost call, "" for it) is
    found only when asked for."""
    __slots__ = ("module_ref", "kind", "parent", "_path")

    def __init__(self, module, parent):
        self.module_ref, self.kind, self.parent, self._path = (
            weakref.ref(module), type(module).__name__, parent, None)

    @property
    def module(self):
        """The module, or None if it no longer exists."""
        return self.module_ref()

    @property
    def path(self):
        if self._path is None:
            if self.parent is None:
                self._path = ""
            else:
                outer, me = self.parent.module, self.module
                name = next((n for n, m in outer.named_modules() if m is me and n), None) \
                    if outer is not None and me is not None else None
                name = name or self.kind
                self._path = f"{self.parent.path}.{name}" if self.parent.path else name
        return self._path

    def __repr__(self):
        return f"Scope({self.path!r}, {self.kind})"


class Module:
    """Base class of every layer. Subclasses set attributes in __init__ (after
    calling super().__init__()) and define forward(); call the module itself."""

    def __init__(self):
        self.training = True
        self._buffers = {}
        self._non_persistent = set()

    def __setattr__(self, name, value):
        # `self.pe = table` on a registered buffer replaces the buffer itself,
        # which is what to() casts and state_dict() saves.
        buffers = self.__dict__.get("_buffers")
        if buffers is None and isinstance(value, (Module, Parameter)):
            raise AttributeError(f"{type(self).__name__}: cannot assign {name} before "
                                 "Module.__init__(): call super().__init__() first in __init__")
        if buffers is not None and name in buffers:
            self._buffers[name] = _number_array(value, f"{type(self).__name__}: buffer {name!r}")
            value = self._buffers[name]
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        previous = set_scope(Scope(self, current_scope()))
        try:
            return self.forward(*args, **kwargs)
        finally:
            set_scope(previous)

    # ----- finding parameters and modules ----------------------------------
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix=""):
        """(dotted path, module) for this module ("") and every descendant."""
        stack, seen = [(prefix, self)], set()
        while stack:
            path, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield path, module
            kids = [(f"{path}.{name}" if path else name, child)
                    for name, child in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_parameters(self):
        """(dotted path, Parameter) for every parameter, each once."""
        seen = set()
        for path, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{path}.{name}" if path else name), value

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    def register_buffer(self, name, array, persistent=True):
        """A constant array kept with the module (moved by `to`), in the state
        dict unless persistent=False. Assigning to `self.<name>` later
        replaces it."""
        self._buffers[name] = _number_array(array, f"{type(self).__name__}: buffer {name!r}")
        if not persistent:
            self._non_persistent.add(name)
        setattr(self, name, self._buffers[name])

    def named_buffers(self):
        for path, module in self.named_modules():
            for name in module._buffers:
                yield (f"{path}.{name}" if path else name), module, name

    # ----- modes and gradients ---------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, (bool, np.bool_)):  # train("eval") would mean training
            raise TypeError(f"train: mode must be True or False, got {mode!r}")
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, dtype):
        """Cast every parameter and every floating buffer to the floating
        `dtype` in place (gradients are dropped); integer and boolean buffers
        keep their type, as in PyTorch. Returns self.

        Each module casts its own children first, by calling their `to`, so a
        module whose buffer comes from a formula overrides `to` to compute it
        again (SinusoidalPositionalEncoding does). A non-floating dtype raises
        TypeError: parameters require grad, and only floating tensors can."""
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"to: {dtype!r} is not a dtype") from None
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"to: parameters require grad, so the dtype must be floating, "
                            f"got {dtype}")
        for child in self.children():
            child.to(dtype)
        for value in vars(self).values():
            if isinstance(value, Parameter):
                value.data = value.data.astype(dtype)
                value.grad = None
                value._version += 1  # a graph made before holds the old arrays
        for name, array in list(self._buffers.items()):
            if np.issubdtype(array.dtype, np.floating):
                setattr(self, name, array.astype(dtype))
        return self

    # ----- state dicts -------------------------------------------------------
    def state_dict(self):
        """name -> a copy of each parameter's (and persistent buffer's) array."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        for name, module, key in self.named_buffers():
            if key not in module._non_persistent:
                state[name] = module._buffers[key].copy()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the parameters in place (cast to their dtype).

        All or nothing: every value is checked and converted before the first
        one is written, so an error leaves the module as it was. Values are
        ndarrays, Tensors or nested lists of numbers (bool, integer or float:
        NaN is a value like any other); a string, an object or a complex array
        raises TypeError naming its key. Every mis-shaped key, and with
        strict=True every missing or unexpected key, is named in one
        StateDictError. Returns (missing_keys, unexpected_keys), as PyTorch does."""
        if not isinstance(state_dict, Mapping):
            hint = "; pass its state_dict()" if isinstance(state_dict, Module) else ""
            raise TypeError(f"load_state_dict: expected a dict name -> array, got "
                            f"{type(state_dict).__name__}{hint}")
        targets = {name: (p, p.data) for name, p in self.named_parameters()}
        targets.update({name: (module, module._buffers[key])
                        for name, module, key in self.named_buffers()
                        if key not in module._non_persistent})
        missing = sorted(set(targets) - set(state_dict), key=str)
        unexpected = sorted(set(state_dict) - set(targets), key=str)
        arrays, problems = {}, []
        for name in sorted(set(targets) & set(state_dict)):
            have = targets[name][1]
            value = _number_array(state_dict[name], f"load_state_dict: {name!r}")
            if value.shape != have.shape:
                problems.append(f"mis-shaped: {name}: checkpoint {shape_str(value.shape)}, "
                                f"model {shape_str(have.shape)}")
            arrays[name] = value.astype(have.dtype)
        if strict:
            problems += [f"missing: {k}" for k in missing] + [f"unexpected: {k}" for k in unexpected]
        if problems:
            raise StateDictError(f"load_state_dict into {type(self).__name__}: "
                                 + "; ".join(problems))
        for name, value in arrays.items():  # every value is good: now write them
            owner, have = targets[name]
            if isinstance(owner, Parameter):
                have[...] = value
                owner._version += 1  # a graph made before used the old values
            else:
                owner.register_buffer(name.rpartition(".")[2], value)
        return IncompatibleKeys(missing, unexpected)

    # ----- printing ----------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n  " + "\n  ".join(lines) + "\n)" if lines else ")")


class ModuleList(Module):
    """A list of modules, each registered under its index ("0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        self._length = 0
        self.extend(modules)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: can only hold Modules, got {type(module).__name__}")
        setattr(self, str(self._length), module)
        self._length += 1
        return self

    def extend(self, modules):
        if isinstance(modules, Module):
            raise TypeError(f"ModuleList: takes an iterable of Modules, got one "
                            f"{type(modules).__name__} (put it in a list)")
        for module in modules:
            self.append(module)
        return self

    def __len__(self):
        return self._length

    def __iter__(self):
        return (getattr(self, str(i)) for i in range(self._length))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self)[index])
        index = integer("ModuleList", "index", index)
        if not -self._length <= index < self._length:
            raise IndexError(f"ModuleList: index {index} out of range for {self._length} modules")
        return getattr(self, str(index % self._length))

    def forward(self, *args, **kwargs):
        raise TypeError("ModuleList is a container: call its modules, not the list")
