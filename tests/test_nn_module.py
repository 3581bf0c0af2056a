"""Module, Parameter, ModuleList: registration, dotted names, modes, state
dicts, dtype casts, and the module path every op records for the graph drawing."""
import numpy as np
import pytest

from nn_helpers import graph_functions, leaf, scope_chain, tiny_encoder
from tinygrad_enc import Tensor, manual_seed, nn
from tinygrad_enc.tensor import current_scope


class Net(nn.Module):
    """A bit of everything: a direct Parameter, sub-modules, a ModuleList, a
    persistent buffer and a module with a non-persistent one."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.full(3, 2.0, dtype=np.float32))
        self.embed = nn.Embedding(5, 3)
        self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3, bias=False)])
        self.norm = nn.LayerNorm(3)
        self.pos = nn.SinusoidalPositionalEncoding(3, max_len=6)
        self.drop = nn.Dropout(0.5)
        self.register_buffer("counts", np.arange(4, dtype=np.float32))
        self.not_a_module = [nn.Linear(3, 3)]  # hidden in a list: not registered

    def forward(self, ids):
        h = self.pos(self.embed(ids)) * self.scale
        for block in self.blocks:
            h = self.drop(block(h).relu())
        return self.norm(h)


PARAMS = ["scale", "embed.weight", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
          "norm.weight", "norm.bias"]


@pytest.fixture
def net():
    manual_seed(0)
    return Net()


def test_registration_by_attribute_in_order(net):
    assert [name for name, _ in net.named_parameters()] == PARAMS
    assert [type(m).__name__ for m in net.children()] == \
        ["Embedding", "ModuleList", "LayerNorm", "SinusoidalPositionalEncoding", "Dropout"]
    assert [name for name, _ in net.named_modules()] == \
        ["", "embed", "blocks", "blocks.0", "blocks.1", "norm", "pos", "drop"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert net.blocks[1].bias is None


def test_parameter_keeps_a_floating_dtype_and_refuses_integers():
    assert nn.Parameter(Tensor(np.ones(2), dtype=np.float64)).dtype == np.float64
    assert nn.Parameter(np.ones(2, dtype=np.float16)).dtype == np.float16
    assert nn.Parameter([1.0, 2.0]).dtype == nn.Parameter(0.5).dtype == np.float32
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        nn.Parameter(np.arange(3))


def test_num_parameters_against_hand_count(net):
    # scale 3 + embedding 5*3 + linear 3*3+3 + linear 3*3 + layer norm 3+3
    assert net.num_parameters() == 3 + 15 + 12 + 9 + 6


def test_shared_parameter_listed_once():
    manual_seed(0)
    net = nn.Module()
    net.a = nn.Linear(2, 2)
    net.b = nn.Linear(2, 2)
    net.b.weight = net.a.weight
    assert [name for name, _ in net.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    assert net.num_parameters() == 8


def test_encoder_dotted_names():
    enc = tiny_encoder(final_norm=True)
    names = [name for name, _ in enc.named_parameters()]
    assert names[:2] == ["layers.0.self_attn.q_proj.weight", "layers.0.self_attn.q_proj.bias"]
    assert "layers.1.ffn.linear2.bias" in names and names[-2:] == ["norm.weight", "norm.bias"]
    assert len(names) == 2 * 16 + 2
    modules = dict(enc.named_modules())
    assert modules["layers.1.self_attn.q_proj"] is enc.layers[1].self_attn.q_proj
    assert modules["layers.0.ffn.linear1"] is enc.layers[0].ffn.linear1


def test_train_eval_recursive(net):
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    ids = np.array([[1, 2, 3, 4]])
    np.testing.assert_array_equal(net(ids).data, net(ids).data)  # dropout is off
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.blocks.train(False)
    assert [m.training for m in net.modules()] == [True, True, False, False, False, True, True,
                                                    True]


def test_zero_grad(net):
    net(np.array([[0, 1, 2]])).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_holds_copies_and_persistent_buffers_only(net):
    sd = net.state_dict()
    assert list(sd) == PARAMS + ["counts"]  # pos.pe is not persistent
    sd["scale"][...] = 7.0
    sd["counts"][...] = 7.0
    np.testing.assert_array_equal(net.scale.data, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(net.counts, [0.0, 1.0, 2.0, 3.0])


def test_load_state_dict_copies_in_place_and_casts(net):
    weight = net.blocks[0].weight
    array = weight.data
    sd = {k: np.full_like(v, 0.5, dtype=np.float64) for k, v in net.state_dict().items()}
    assert net.load_state_dict(sd) == ([], [])
    assert net.blocks[0].weight is weight and weight.data is array
    assert all(p.dtype == np.float32 and np.all(p.data == 0.5) for p in net.parameters())
    np.testing.assert_array_equal(net.counts, np.full(4, 0.5))
    assert net.counts.dtype == np.float32
    sd["scale"][...] = 9.0
    assert np.all(net.scale.data == 0.5)


def test_load_state_dict_accepts_tensors(net):
    sd = {k: Tensor(np.ones_like(v)) for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    assert all(np.all(p.data == 1.0) for p in net.parameters())


class _ArrayWithData:
    """An array-like (it has __array__) whose `.data` is something else."""

    def __init__(self, array):
        self.array, self.data = array, "not the values"

    def __array__(self, dtype=None, copy=None):
        return self.array


def test_load_state_dict_unwraps_only_tensors(net):
    sd = {k: _ArrayWithData(np.full_like(v, 0.25)) for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    assert all(np.all(p.data == 0.25) for p in net.parameters()) and np.all(net.counts == 0.25)


def _broken_state_dict(net):
    sd = net.state_dict()
    del sd["norm.bias"], sd["blocks.1.weight"]
    sd["blocks.0.weight"] = np.zeros((3, 4), dtype=np.float32)
    sd["head.weight"] = np.zeros(3, dtype=np.float32)
    return sd


def test_load_state_dict_strict_names_every_problem_at_once(net):
    before = net.state_dict()
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict({k: v + 1 for k, v in _broken_state_dict(net).items()})
    message = str(info.value)
    for part in ["missing: blocks.1.weight", "missing: norm.bias", "unexpected: head.weight",
                 "blocks.0.weight: checkpoint (3, 4), model (3, 3)"]:
        assert part in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)
    for name, value in net.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_not_strict_returns_missing_and_unexpected(net):
    sd = _broken_state_dict(net)
    with pytest.raises(nn.StateDictError, match="mis-shaped: blocks.0.weight"):
        net.load_state_dict(sd, strict=False)  # a wrong shape is refused even so (as PyTorch)
    del sd["blocks.0.weight"]
    sd["norm.weight"] = np.full(3, 4.0)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["blocks.0.weight", "blocks.1.weight", "norm.bias"]
    assert unexpected == ["head.weight"]
    np.testing.assert_array_equal(net.norm.weight.data, [4.0, 4.0, 4.0])


def test_to_float64_casts_parameters_and_buffers(net):
    net(np.array([[0, 1]])).sum().backward()
    assert net.to(np.float64) is net
    assert all(p.dtype == np.float64 and p.grad is None for p in net.parameters())
    assert net.counts.dtype == np.float64 and net.pos.pe.dtype == np.float64
    assert "pos.pe" not in net.state_dict()
    out = net(np.array([[0, 1]]))
    assert out.dtype == np.float64
    out.sum().backward()
    assert net.blocks[0].weight.grad.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, "int64"])
def test_to_refuses_a_non_floating_dtype(net, dtype):
    with pytest.raises(TypeError, match="to: parameters require grad, so the dtype must be "
                                        "floating, got " + np.dtype(dtype).name):
        net.to(dtype)
    assert all(p.dtype == np.float32 for p in net.parameters())  # nothing was cast


def test_to_casts_only_floating_buffers(net):
    net.register_buffer("token_ids", np.arange(3))
    net.to(np.float64)
    assert net.token_ids.dtype == np.arange(3).dtype and net.counts.dtype == np.float64


def test_assigning_to_a_buffer_name_replaces_the_buffer(net):
    net.counts = np.full(4, 7.0, dtype=np.float32)
    net.pos.pe = np.ones((6, 3), dtype=np.float32)
    np.testing.assert_array_equal(net.state_dict()["counts"], 7.0)
    net.to(np.float64)
    assert net.counts.dtype == net.pos.pe.dtype == np.float64
    np.testing.assert_array_equal(net.counts, 7.0)  # not the arrays registered first
    np.testing.assert_array_equal(net.pos(Tensor(np.zeros((1, 2, 3)), dtype=np.float64)).data, 1.0)


def test_module_list():
    manual_seed(0)
    items = [nn.Linear(2, 2), nn.LayerNorm(2), nn.Dropout(0.1)]
    ml = nn.ModuleList(items)
    assert len(ml) == 3 and list(ml) == items
    assert ml[0] is items[0] and ml[-1] is items[2] and list(ml[1:]) == items[1:]
    with pytest.raises(IndexError, match="index 3 out of range for 3"):
        ml[3]
    with pytest.raises(TypeError, match="only hold Modules, got int"):
        ml.append(5)
    ml.append(nn.Linear(2, 1))
    assert len(ml) == 4 and [n for n, _ in ml.named_parameters()][-2:] == ["3.weight", "3.bias"]
    with pytest.raises(TypeError, match="container"):
        ml(Tensor(np.zeros(2)))


# ----- every op records the path of the module whose forward made it -------------

def test_ops_record_module_paths_and_nested_parents():
    enc = tiny_encoder()
    x = leaf(2, 5, 8)
    out = enc(x)
    scopes = {ctx.scope.path: ctx.scope for ctx in graph_functions(out)}
    for path in ["layers.1.self_attn.q_proj", "layers.0.ffn.linear1", "layers.0.self_attn",
                 "layers.1.norm2", "layers.0"]:
        assert path in scopes
    # the feed-forward network's relu runs inside linear1's op (linear_relu)
    assert {ctx.op_name for ctx in graph_functions(out)
            if ctx.scope.path == "layers.0.ffn.linear1"} == {"linear_relu"}
    assert scope_chain(scopes["layers.1.self_attn.q_proj"]) == \
        ["layers.1.self_attn.q_proj", "layers.1.self_attn", "layers.1", ""]
    assert scope_chain(scopes["layers.0.ffn.linear1"]) == \
        ["layers.0.ffn.linear1", "layers.0.ffn", "layers.0", ""]
    q_proj = scopes["layers.1.self_attn.q_proj"]
    assert q_proj.kind == "Linear" and q_proj.module is enc.layers[1].self_attn.q_proj
    root = scopes["layers.0"].parent  # the encoder's own forward makes no op
    assert root is scopes["layers.1"].parent and root.parent is None
    assert (root.path, root.kind) == ("", "TransformerEncoder") and root.module is enc
    # exactly the paths of the modules that made ops (dropout is the identity here, and a
    # relu FeedForward's ops are its two linears)
    ran = {path for path, m in enc.named_modules()
           if not isinstance(m, (nn.Dropout, nn.ModuleList, nn.TransformerEncoder, nn.FeedForward))}
    assert set(scopes) == ran


def test_scope_of_each_op_is_the_innermost_module():
    enc = tiny_encoder()
    out = enc(leaf(1, 3, 8))
    weight = enc.layers[0].self_attn.q_proj.weight
    # q_proj's linear op, made in q_proj; the reshape into heads it feeds, made in self_attn
    uses = [ctx for ctx in graph_functions(out) if any(p is weight for p in ctx.parents)]
    assert [(ctx.op_name, ctx.scope.path) for ctx in uses] == \
        [("linear", "layers.0.self_attn.q_proj")]
    consumers = [ctx for ctx in graph_functions(out)
                 if any(p._ctx is uses[0] for p in ctx.parents)]
    assert [(ctx.op_name, ctx.scope.path) for ctx in consumers] == \
        [("reshape", "layers.0.self_attn")]


def test_scope_is_restored_after_forward_and_after_errors():
    manual_seed(0)
    lin = nn.Linear(3, 2)
    y = lin(leaf(4, 3))
    assert current_scope() is None
    loss = (y * y).sum()
    assert loss._ctx.scope is None  # made outside any module
    with pytest.raises(ValueError):
        lin(leaf(4, 5))
    assert current_scope() is None
    assert ((y + 1).sum())._ctx.scope is None


def test_paths_are_relative_to_the_called_module():
    enc = tiny_encoder()
    layer = enc.layers[1]
    paths = {ctx.scope.path for ctx in graph_functions(layer(leaf(1, 3, 8)))}
    assert "self_attn.q_proj" in paths and "ffn.linear1" in paths and "" in paths


def test_warm_forward_does_not_walk_the_module_tree(monkeypatch):
    """Scope recording must cost next to nothing: once a model has run, calling
    it again looks up each module's name without searching the module tree."""
    enc = tiny_encoder(num_layers=3)
    x = leaf(1, 3, 8)
    enc(x)
    calls = []
    for method in ("named_modules", "named_children"):
        original = getattr(nn.Module, method)
        monkeypatch.setattr(nn.Module, method,
                            lambda self, *a, _f=original, _m=method, **k: (calls.append(_m),
                                                                            _f(self, *a, **k))[1])
    out = enc(x)
    assert calls == []
    assert any(ctx.scope.path == "layers.2.ffn.linear2" for ctx in graph_functions(out))


def test_paths_follow_a_replaced_submodule():
    enc = tiny_encoder()
    enc(leaf(1, 3, 8))
    manual_seed(1)
    enc.layers[0].ffn.linear2, enc.layers[1].ffn.linear2 = \
        enc.layers[1].ffn.linear2, enc.layers[0].ffn.linear2
    paths = {ctx.scope.path: id(ctx.scope.module) for ctx in graph_functions(enc(leaf(1, 3, 8)))}
    assert paths["layers.0.ffn.linear2"] == id(enc.layers[0].ffn.linear2)
    assert paths["layers.1.ffn.linear2"] == id(enc.layers[1].ffn.linear2)


def test_load_state_dict_takes_torch_tensors():
    torch = pytest.importorskip("torch")
    manual_seed(0)
    model = nn.Linear(3, 2)
    model.load_state_dict({"weight": torch.ones(2, 3), "bias": torch.arange(2.0)})
    np.testing.assert_array_equal(model.weight.data, np.ones((2, 3)))
    np.testing.assert_array_equal(model.bias.data, [0.0, 1.0])
