"""PyTorch state dicts <-> ours, with numpy arrays only (torch is never imported).

Use it to start from PyTorch's weights, or to check our encoder against
PyTorch's on the very same numbers::

    sd = {k: v.numpy() for k, v in torch_encoder.state_dict().items()}
    ours.load_state_dict(from_torch_encoder(sd))
    torch_encoder.load_state_dict(
        {k: torch.from_numpy(v) for k, v in to_torch_encoder(ours.state_dict()).items()})

The one real difference is in attention. ``torch.nn.MultiheadAttention`` keeps
W^Q, W^K and W^V stacked in one ``in_proj_weight`` of shape ``(3d, d)``, rows
``[0, d)`` for the query, ``[d, 2d)`` for the key and ``[2d, 3d)`` for the value
(and ``in_proj_bias`` ``(3d,)`` alike); we keep three ``nn.Linear`` layers, the
paper's three projections. Everything else only changes name. Keys, with ``i``
the layer index and ``d`` = d_model (every weight is ``(out, in)``, as Linear's):

======================================  =================================================
torch ``TransformerEncoder``            ours ``nn.TransformerEncoder``
======================================  =================================================
``layers.i.self_attn.in_proj_weight``   ``layers.i.self_attn.q_proj.weight`` (rows 0:d),
                                        ``.k_proj.weight`` (d:2d), ``.v_proj.weight``
                                        (2d:3d), each ``(d, d)``
``layers.i.self_attn.in_proj_bias``     ``layers.i.self_attn.q_proj.bias``,
                                        ``.k_proj.bias``, ``.v_proj.bias``, each ``(d,)``
``layers.i.self_attn.out_proj.weight``  ``layers.i.self_attn.out_proj.weight`` (W^O)
``layers.i.self_attn.out_proj.bias``    ``layers.i.self_attn.out_proj.bias``
``layers.i.linear1.weight`` / ``bias``  ``layers.i.ffn.linear1.weight`` / ``bias``
``layers.i.linear2.weight`` / ``bias``  ``layers.i.ffn.linear2.weight`` / ``bias``
``layers.i.norm1.weight`` / ``bias``    ``layers.i.norm1.weight`` / ``bias``
``layers.i.norm2.weight`` / ``bias``    ``layers.i.norm2.weight`` / ``bias``
``norm.weight`` / ``bias``              ``norm.weight`` / ``bias`` (final norm, if any)
======================================  =================================================

A bare ``MultiheadAttention`` maps the same way without the
``layers.i.self_attn.`` prefix (``from_torch_attention`` / ``to_torch_attention``).

A ``torch.nn.TransformerDecoder`` (``from_torch_decoder`` / ``to_torch_decoder``)
maps as the encoder, plus a second attention and a third norm per layer:
torch's ``layers.i.multihead_attn.*`` (encoder-decoder attention) is our
``layers.i.cross_attn.*``, stacked q/k/v as above, and ``layers.i.norm3`` is
``layers.i.norm3``. A ``torch.nn.Transformer`` (``from_torch_transformer`` /
``to_torch_transformer``) is ``encoder.`` + the encoder's keys and ``decoder.``
+ the decoder's; torch always gives both stacks a final norm (``encoder.norm``,
``decoder.norm``), and so does our ``nn.Transformer``. Its embeddings and
output layer have no counterpart in torch's module (which takes vectors in
and gives vectors out): load the converted dict with
``model.load_state_dict(d, strict=False)``.

A key that is absent on one side is absent on the other: a model built with
``bias=False`` or without a final norm converts as it is, and
``load_state_dict(strict=True)`` on the receiving model names whatever it misses.
Any key outside the table is refused with a ``ValueError`` listing it. Conversion
is bit-exact in both directions (only slicing and stacking, no arithmetic), and
every returned array is a fresh copy, so changing it never changes the input.
"""
import re
from collections.abc import Mapping

import numpy as np

# torch's projections stacked in in_proj_*, in this order (query, key, value).
_QKV = ("q_proj", "k_proj", "v_proj")
# Per encoder layer, torch's module name -> ours (the feed-forward pair lives in ffn).
_LAYER_MODULES = {"linear1": "ffn.linear1", "linear2": "ffn.linear2",
                  "norm1": "norm1", "norm2": "norm2"}
# A decoder layer has one norm more; its attentions by torch's name -> ours.
_DECODER_LAYER_MODULES = {**_LAYER_MODULES, "norm3": "norm3"}
_ENCODER_ATTENTION = {"self_attn": "self_attn"}
_DECODER_ATTENTION = {"self_attn": "self_attn", "multihead_attn": "cross_attn"}
_LAYER_INDEX = re.compile(r"layers\.(\d+)\.")
# torch keys we recognise but cannot map, by their last component.
_SEPARATE_QKV = ("separate query/key/value weights (MultiheadAttention with kdim or "
                 "vdim != embed_dim) are unsupported: our attention projects query, "
                 "key and value from d_model")
_BIAS_KV = "MultiheadAttention(add_bias_kv=True) is unsupported"
_UNSUPPORTED = {"q_proj_weight": _SEPARATE_QKV, "k_proj_weight": _SEPARATE_QKV,
                "v_proj_weight": _SEPARATE_QKV, "bias_k": _BIAS_KV, "bias_v": _BIAS_KV}


def from_torch_attention(sd):
    """A ``torch.nn.MultiheadAttention`` state dict -> our ``nn.MultiHeadAttention``'s.

    ``sd`` maps torch's names to arrays (numpy, or torch tensors, which are
    converted); ``in_proj_weight`` ``(3d, d)`` is split into ``q_proj.weight``,
    ``k_proj.weight``, ``v_proj.weight``, each ``(d, d)``.
    """
    sd = _state_dict(sd, "from_torch_attention")
    return _from_torch(sd, _attention_names(), "from_torch_attention")


def to_torch_attention(sd):
    """Our ``nn.MultiHeadAttention`` state dict -> ``torch.nn.MultiheadAttention``'s.

    ``q_proj``, ``k_proj`` and ``v_proj`` are stacked, in that order, into
    ``in_proj_weight`` ``(3d, d)`` and ``in_proj_bias`` ``(3d,)``.
    """
    sd = _state_dict(sd, "to_torch_attention")
    return _to_torch(sd, _attention_names(), "to_torch_attention")


def from_torch_encoder(sd):
    """A ``torch.nn.TransformerEncoder`` state dict -> our ``nn.TransformerEncoder``'s.

    ``sd`` maps torch's names to arrays; see the module docstring for the keys.
    """
    sd = _state_dict(sd, "from_torch_encoder")
    return _from_torch(sd, _encoder_names(sd), "from_torch_encoder")


def to_torch_encoder(sd):
    """Our ``nn.TransformerEncoder`` state dict -> ``torch.nn.TransformerEncoder``'s.

    Keys come out in the order torch's own ``state_dict()`` lists them.
    """
    sd = _state_dict(sd, "to_torch_encoder")
    return _to_torch(sd, _encoder_names(sd), "to_torch_encoder")


def from_torch_decoder(sd):
    """A ``torch.nn.TransformerDecoder`` state dict -> our ``nn.TransformerDecoder``'s
    (torch's ``multihead_attn`` is our ``cross_attn``)."""
    return _from_torch(sd, _decoder_names(sd), "from_torch_decoder")


def to_torch_decoder(sd):
    """Our ``nn.TransformerDecoder`` state dict -> ``torch.nn.TransformerDecoder``'s."""
    return _to_torch(sd, _decoder_names(sd), "to_torch_decoder")


def from_torch_transformer(sd):
    """A ``torch.nn.Transformer`` state dict -> the ``encoder.*`` and ``decoder.*``
    entries of our ``nn.Transformer`` (load with ``strict=False``)."""
    return _from_torch(sd, _transformer_names(sd), "from_torch_transformer")


def to_torch_transformer(sd):
    """The ``encoder.*`` and ``decoder.*`` entries of our ``nn.Transformer``'s state
    dict -> ``torch.nn.Transformer``'s. Other entries (embeddings, generator)
    have no place in torch's module and are refused: pass only the two stacks',
    e.g. ``{k: v for k, v in sd.items() if k.startswith(("encoder.", "decoder."))}``."""
    return _to_torch(sd, _transformer_names(sd), "to_torch_transformer")


def _attention_names(prefix="", our_prefix=None):
    """torch name -> the tuple of our names its array holds (q, k, v when stacked)."""
    ours = prefix if our_prefix is None else our_prefix
    return {
        prefix + "in_proj_weight": tuple(f"{ours}{p}.weight" for p in _QKV),
        prefix + "in_proj_bias": tuple(f"{ours}{p}.bias" for p in _QKV),
        prefix + "out_proj.weight": (ours + "out_proj.weight",),
        prefix + "out_proj.bias": (ours + "out_proj.bias",),
    }


def _encoder_names(sd, prefix=""):
    """Like ``_attention_names``, for an encoder with the layers ``sd`` names.

    Only the layer indices are read from ``sd``; the same indices appear in
    torch's keys and ours, so this serves both directions.
    """
    return _stack_names(sd, prefix, _ENCODER_ATTENTION, _LAYER_MODULES)


def _decoder_names(sd, prefix=""):
    return _stack_names(sd, prefix, _DECODER_ATTENTION, _DECODER_LAYER_MODULES)


def _transformer_names(sd):
    return {**_encoder_names(sd, "encoder."), **_decoder_names(sd, "decoder.")}


def _stack_names(sd, prefix, attentions, modules):
    """The names of a stack of layers under `prefix` (``""``, ``"encoder."``,
    ``"decoder."``): per layer its attentions and other modules, then the final norm."""
    layer_index = re.compile(re.escape(prefix) + _LAYER_INDEX.pattern)
    indices = sorted({int(m.group(1)) for m in map(layer_index.match, sd) if m})
    names = {}
    for i in indices:
        layer = f"{prefix}layers.{i}."
        for torch_attention, our_attention in attentions.items():
            names.update(_attention_names(f"{layer}{torch_attention}.", f"{layer}{our_attention}."))
        for torch_module, our_module in modules.items():
            for param in ("weight", "bias"):
                names[f"{layer}{torch_module}.{param}"] = (f"{layer}{our_module}.{param}",)
    names.update({f"{prefix}norm.{param}": (f"{prefix}norm.{param}",) for param in ("weight", "bias")})
    return names


def _from_torch(sd, names, caller):
    """Rename torch's arrays to ours, splitting each stacked q/k/v array in three."""
    arrays = _arrays(sd, names.keys(), caller)
    ours = {}
    for torch_name, our_names in names.items():
        if torch_name in arrays:
            parts = _split(arrays[torch_name], torch_name, len(our_names), caller)
            ours.update(zip(our_names, parts))
    return ours


def _to_torch(sd, names, caller):
    """Rename our arrays to torch's, stacking q/k/v projections into one array."""
    arrays = _arrays(sd, [name for group in names.values() for name in group], caller)
    torch_sd = {}
    for torch_name, our_names in names.items():
        if any(name in arrays for name in our_names):
            torch_sd[torch_name] = _stack([arrays.get(name) for name in our_names],
                                          our_names, caller)
    return torch_sd


def _split(value, torch_name, n, caller):
    """``value`` cut along its first axis into ``n`` equal arrays of their own."""
    if value.ndim == 0 or value.shape[0] % n:
        raise ValueError(f"{caller}: {torch_name} has shape {value.shape}; expected "
                         f"a first axis that splits into {n} equal parts")
    # np.split returns views into the input: copy, so the result owns its data.
    return [part.copy() for part in np.split(value, n)]


def _stack(parts, names, caller):
    """The arrays ``parts`` (named ``names``) stacked along their first axis, copied."""
    missing = [name for name, part in zip(names, parts) if part is None]
    if missing:
        raise ValueError(f"{caller}: {missing} missing; torch stacks {list(names)} "
                         f"into one array, so it needs all of them or none")
    if len({(part.shape, part.dtype) for part in parts}) > 1:
        found = ", ".join(f"{name} {part.shape} {part.dtype}"
                          for name, part in zip(names, parts))
        raise ValueError(f"{caller}: cannot stack {found}: they need one shape and dtype")
    return np.concatenate(parts)


def _state_dict(sd, caller):
    """``sd`` checked to be a mapping with string keys (a model or a list is refused)."""
    if not isinstance(sd, Mapping):
        hint = "; pass its state_dict(), as numpy arrays" if hasattr(sd, "state_dict") else ""
        raise TypeError(f"{caller}: expected a state dict (name -> array), got "
                        f"{type(sd).__name__}{hint}")
    bad = [key for key in sd if not isinstance(key, str)]
    if bad:
        raise TypeError(f"{caller}: keys must be strings, got {bad[0]!r}")
    return sd


def _arrays(sd, known, caller):
    """``sd`` as a dict of ndarrays, refusing any key not in ``known``."""
    unknown = [key for key in sd if key not in known]
    if unknown:
        hints = sorted({_UNSUPPORTED[key.rpartition(".")[2]] for key in unknown
                        if key.rpartition(".")[2] in _UNSUPPORTED})
        raise ValueError(f"{caller}: unexpected keys {unknown}"
                         + "".join(f"; {hint}" for hint in hints))
    return {key: _as_numpy(key, value, caller) for key, value in sd.items()}


def _as_numpy(key, value, caller):
    """One state-dict value as an ndarray: numpy already, or a torch tensor."""
    try:
        array = np.asarray(value)
    except (TypeError, RuntimeError):
        if not hasattr(value, "detach"):
            raise
        # torch refuses np.asarray for a tensor that requires grad or lives on a GPU.
        array = value.detach().cpu().numpy()
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{caller}: {key!r} is not a numeric array "
                        f"(got {type(value).__name__} of dtype {array.dtype})")
    return array
