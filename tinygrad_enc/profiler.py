"""Where the time goes: wall time per op and per module, forward and backward.

    with tinygrad_enc.profile() as p:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    print(p.table(top=20))

Inside the block every op's forward and backward is timed (the engine calls
the profiler after each one, `tensor.add_observer`) and the time is added to
the op's row and to the row of the module whose forward ran it, and of each
module around that one (a module's time includes its sub-modules'). Time in
the block that no op accounts for is Python: building tensors and the graph,
module calls, the walk that orders the backward pass, the optimizer. Outside
the block nothing is recorded and nothing is paid: with no profiler the
engine skips the timing with one check of an empty tuple per op.
"""
import time

from .tensor import add_observer, remove_observer

PHASES = ("forward", "backward")


class _Row:
    """Seconds and calls of one op, or one module, per phase."""
    __slots__ = ("seconds", "calls")

    def __init__(self):
        self.seconds, self.calls = dict.fromkeys(PHASES, 0.0), dict.fromkeys(PHASES, 0)

    def add(self, phase, seconds):
        self.seconds[phase] += seconds
        self.calls[phase] += 1

    @property
    def total(self):
        return self.seconds["forward"] + self.seconds["backward"]


class profile:
    """Context manager that times the ops run in its block, in this thread.

    After the block: `table(top=20)` is the text report; `ops` maps an op's
    name (`matmul`, `softmax`, ...) and `modules` a module's label (its
    dotted path and class, `layers.0.ffn (FeedForward)`) to a row with
    `.seconds[phase]`, `.calls[phase]` and `.total`; `seconds` is the wall
    time spent in the block. A profile may be entered again to add more.
    """

    def __init__(self):
        self.ops, self.modules, self.seconds = {}, {}, 0.0
        self._labels = {}  # id(scope) -> (scope, the labels of it and the scopes around it)
        self._observer = self._observe  # one bound method, so that removing finds it

    def __enter__(self):
        add_observer(self._observer)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._start
        remove_observer(self._observer)
        return False

    def _observe(self, phase, op, seconds, result):
        name = op.op_name
        row = self.ops.get(name)
        if row is None:
            row = self.ops[name] = _Row()
        row.add(phase, seconds)
        for label in self._scope_labels(op.scope):
            row = self.modules.get(label)
            if row is None:
                row = self.modules[label] = _Row()
            row.add(phase, seconds)

    def _scope_labels(self, scope):
        """The labels of `scope` and of every scope around it (cached per scope;
        the scope itself is kept so that its id is not reused)."""
        if scope is None:
            return ("(no module)",)
        cached = self._labels.get(id(scope))
        if cached is None:
            labels, s = [], scope
            while s is not None:
                labels.append(f"{s.path} ({s.kind})" if s.path else f"({s.kind})")
                s = s.parent
            cached = self._labels[id(scope)] = (scope, tuple(labels))
        return cached[1]

    @property
    def op_seconds(self):
        """Seconds inside ops' forward and backward, all ops together."""
        return sum(row.total for row in self.ops.values())

    def table(self, top=20):
        """The report as text: the `top` ops by time, then the `top` modules."""
        wall = self.seconds or 1e-12
        inside = self.op_seconds
        lines = [f"profile: {self.seconds * 1e3:.1f} ms in the block, {inside * 1e3:.1f} ms of "
                 f"it inside ops ({inside / wall:.0%}); the rest is Python around them "
                 "(tensors, graph, walk, optimizer)", ""]
        for title, rows in (("op", self.ops), ("module (includes its sub-modules)", self.modules)):
            width = max([len(title)] + [len(k) for k in rows]) + 2
            lines.append(f"{title:<{width}}{'forward ms':>12}{'calls':>7}{'backward ms':>13}"
                         f"{'calls':>7}{'total ms':>10}{'% of block':>12}")
            for key, row in sorted(rows.items(), key=lambda kv: -kv[1].total)[:top]:
                lines.append(f"{key:<{width}}{row.seconds['forward'] * 1e3:>12.2f}"
                             f"{row.calls['forward']:>7}{row.seconds['backward'] * 1e3:>13.2f}"
                             f"{row.calls['backward']:>7}{row.total * 1e3:>10.2f}"
                             f"{row.total / wall:>12.1%}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"
