"""Write docs/primitives.md: the few primitive ops, and everything composed of them.

    python docs/make_primitives_table.py

A primitive is a class in tinygrad_enc/ops.py with a hand-written backward;
the table shows the derivative its backward implements (the comment on top
of it) and the functions that run it. A composed function is a Tensor method
or a function of tinygrad_enc.functional whose docstring starts with its
definition, "name(args) = ...": the table quotes that line. Rerun after adding
or changing either; tests/test_api_table.py fails while the file is stale.
"""
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinygrad_enc import functional, ops  # noqa: E402
from tinygrad_enc import tensor as tensor_module  # noqa: E402
from tinygrad_enc.tensor import Tensor  # noqa: E402

OUT = ROOT / "docs" / "primitives.md"
DEFINITION = re.compile(r"^[\w.]+\(.*?\) = ")
END = re.compile(r"(: |; |\. |, which )")


def primitives():
    """(class, family) for every Op subclass, in the order of ops.py; the
    family is the `# ----- name ---` heading above the class."""
    family, found = None, []
    for line in inspect.getsource(ops).splitlines():
        heading = re.match(r"# -{3,} (.+?) -{3,}", line)
        if heading:
            family = heading.group(1)
        cls = re.match(r"class (\w+)\(Op\):", line)
        if cls:
            found.append((getattr(ops, cls.group(1)), family))
    return found


def derivative(cls):
    """The comment on top of the backward: the derivative it implements."""
    lines = inspect.getsource(cls.backward).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("#"))
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#"):
            break
        block.append(line.strip().lstrip("# "))
    return " ".join(block)


def public_functions():
    """(qualified name, function) for the Tensor's methods and the functional
    module's functions, in source order."""
    members = []
    for name, value in vars(Tensor).items():
        fn = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        if callable(fn) and (not name.startswith("_") or name in _OPERATORS):
            members.append((f"x.{name}" if name not in _STATIC else f"Tensor.{name}", fn))
    for name, fn in vars(functional).items():
        if inspect.isfunction(fn) and not name.startswith("_") and fn.__module__ == functional.__name__:
            members.append((f"F.{name}", fn))
    return members


_OPERATORS = {"__add__": "+", "__sub__": "-", "__mul__": "*", "__truediv__": "/",
              "__neg__": "-x", "__matmul__": "@", "__pow__": "**", "__rpow__": "n ** x",
              "__getitem__": "x[i]", "__and__": "&", "__or__": "|", "__xor__": "^",
              "__invert__": "~"}
_STATIC = {n for n, v in vars(Tensor).items() if isinstance(v, staticmethod)}


_PLUMBING = {"numpy", "item", "detach", "backward", "zero_grad", "dim", "numel", "tolist"}


def _alias(label, fn):
    """The Tensor method F.name calls when it is just x.name(...)."""
    if not label.startswith("F."):
        return None
    name = label[2:]
    body = inspect.getsource(fn).split(":", 1)[1]
    if re.fullmatch(rf'\s*(""".*?"""\s*)?return x\.{name}\([^()]*\)\s*', body, re.S):
        return vars(Tensor).get(name)
    return None


def definition(fn):
    """The one-line definition a composed function's docstring starts with."""
    doc = inspect.getdoc(fn) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    if not DEFINITION.match(first):
        return None
    rest = first[first.index(" = ") + 3:]
    end = END.search(rest)
    return first[:first.index(" = ") + 3] + (rest[:end.start()] if end else rest.rstrip("."))


def primitives_used(fn, depth=2):
    """The primitives fn runs: those it applies, and those of the Tensor
    methods and helpers it calls (two calls deep)."""
    source = inspect.getsource(inspect.unwrap(fn))
    used = re.findall(r"apply\((?:ops\.)?(\w+)", source)
    if depth:
        calls = re.findall(r"(?:self\.|Tensor\.)(\w+)\(|(?<![\w.])(_\w+)\(", source)
        for name in dict.fromkeys(a or b for a, b in calls):
            helper = vars(Tensor).get(name, vars(tensor_module).get(name) if name.startswith("_")
                                      else None)
            helper = getattr(helper, "__func__", helper)
            if inspect.isfunction(helper) and helper is not fn and definition(helper) is None:
                used += primitives_used(helper, depth - 1)
    return used


def class_doc(cls):
    """The first paragraph of a primitive's own docstring (none: empty)."""
    doc = cls.__dict__.get("__doc__") or ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def _cell(text):
    return text.replace("|", "\\|")


def table():
    prims = primitives()
    names = {cls.__name__ for cls, _ in prims}
    users = {name: [] for name in names}
    composed, others = {}, {}
    for label, fn in public_functions():
        shown = _OPERATORS.get(label[2:], label)
        fn = _alias(label, fn) or fn  # F.relu is x.relu
        line = definition(fn)
        if line is not None:
            composed.setdefault(fn, ([], line))[0].append(shown)
            continue
        used = primitives_used(fn)
        for name in used:
            if name in users and shown not in users[name]:
                users[name].append(shown)
        if not used and not isinstance(vars(Tensor).get(label[2:]), property) \
                and label[2:] not in _PLUMBING:
            others.setdefault(fn, []).append(shown)
    lines = [
        "# Primitives and composed functions",
        "",
        "Generated by `python docs/make_primitives_table.py` from the code; do not edit.",
        "",
        f"**{len(prims)} primitives** (classes in `tinygrad_enc/ops.py`, each a forward and a "
        f"hand-written backward) and **{len(composed)} composed functions** (one line or a few "
        "of primitives; their gradient is what the primitives' backward passes compose). "
        "Where a function could have been composed but is a primitive, the note says why.",
        "",
        "## Primitives",
        "",
        "| primitive | family | backward: the derivative | run by | note |",
        "|---|---|---|---|---|",
    ]
    for cls, family in prims:
        doc = class_doc(cls)
        run_by = ", ".join(f"`{u}`" for u in users[cls.__name__]) or "functions below"
        lines.append(f"| `{cls.__name__}` | {family} | {_cell(derivative(cls))} | {run_by} | "
                     f"{_cell(doc)} |")
    lines += ["", "## Composed functions", "", "| function | definition |", "|---|---|"]
    for shown, line in composed.values():
        lines.append(f"| {', '.join(f'`{n}`' for n in shown)} | `{_cell(line.replace('`', ''))}` |")
    lines += ["", "## Without a graph", "",
              "Constructors, indices, masks and the rest: they run no primitive, so "
              "nothing flows back through them.", "",
              ", ".join(f"`{n}`" for names in others.values() for n in names)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUT.write_text(table())
    print(f"wrote {OUT.relative_to(ROOT)}")
