"""Export and interop: ONNX files, PyTorch ``state_dict`` mappings.

A :class:`~nnlib.Sequential` of Dense layers is the network PyTorch writes as
``torch.nn.Sequential(Linear, activation, Linear, activation, ..., Linear)`` and ONNX as
``Gemm`` nodes followed by activation nodes. nnlib stores a Dense layer's weights
``(n_in, n_out)`` (``Z = X W + b``); torch's ``Linear`` stores ``(out, in)``
(``Z = X W^T + b``), so the mapping transposes.

Module names in that ``torch.nn.Sequential`` are the positions of its modules: a layer
with an activation takes two positions (``Linear`` then the activation), an
``identity`` layer one. A 2-4-4-3 tanh network is ``0.weight, 0.bias`` (``Linear(2,
4)``), ``1`` (``Tanh``), ``2.weight, 2.bias``, ``3``, ``4.weight, 4.bias``.

======================  ============================  ==================================
nnlib activation        torch.nn module               ONNX operator
======================  ============================  ==================================
identity                (none)                        (none)
sigmoid / tanh / relu   Sigmoid / Tanh / ReLU         Sigmoid / Tanh / Relu
leaky_relu(slope)       LeakyReLU(slope)              LeakyRelu(alpha=slope)
elu(alpha)              ELU(alpha)                    Elu(alpha)
softplus                Softplus() (``x`` past 20)    Softplus
sign                    (no module: refused)          Sign
======================  ============================  ==================================

A :class:`~nnlib.layers.Dropout` is the identity at inference: :func:`to_torch` maps it to
``torch.nn.Dropout(rate)`` (one position of the ``torch.nn.Sequential``, no entry in its
``state_dict``; the module is returned in ``eval()`` mode) and :func:`to_onnx` leaves it
out of the graph. So ``[Dense(2, 4, "relu"), Dropout(0.5), Dense(4, 3)]`` is ``0`` Linear,
``1`` ReLU, ``2`` Dropout, ``3`` Linear.

Any other layer -- a Python :class:`~nnlib.layers.Layer`, or a Dense or Dropout
subclass with its own ``forward`` -- is refused with a TypeError naming it: its weights
alone do not say what it computes.

torch's ``Softplus`` returns ``x`` itself beyond ``threshold=20`` (a difference below
``2e-9`` relative); the others compute nnlib's functions. In a float64 ONNX graph,
``leaky_relu`` and ``elu`` are composed of double-precision nodes (``Greater``, ``Mul``,
``Where``; ``elu``'s ``expm1`` as ``2 tanh(u/2) / (1 - tanh(u/2))``), because ONNX keeps
the ``alpha`` attribute of ``LeakyRelu`` and ``Elu`` in float32.

Nothing here imports torch or onnx until a function that needs them is called
(``pip install nnlib[onnx]`` for :func:`to_onnx`).
"""
import contextlib
import os
from typing import (TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import numpy as np

from nnlib._typing import DTypeLike

if TYPE_CHECKING:
    from nnlib.model import Sequential

__all__ = ["to_torch_state_dict", "torch_module_names", "from_torch_state_dict",
           "load_torch_state_dict", "to_torch", "to_onnx"]

_TORCH_MODULES = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU",
                  "leaky_relu": "LeakyReLU", "elu": "ELU", "softplus": "Softplus"}
_ONNX_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
             "leaky_relu": "LeakyRelu", "elu": "Elu", "softplus": "Softplus",
             "sign": "Sign"}


def torch_module_names(activations: Sequence[str]) -> List[int]:
    """The position of each layer's ``Linear`` in the equivalent ``torch.nn.Sequential``.

    Parameters
    ----------
    activations : sequence of str
        Each Dense layer's activation, in order (an identity adds no module).

    Returns
    -------
    list of int
        The index of each layer's ``Linear`` module.

    Examples
    --------
    >>> torch_module_names(["tanh", "identity", "relu", "identity"])
    [0, 2, 3, 5]
    """
    names, pos = [], 0
    for act in activations:
        names.append(pos)
        pos += 1 if act == "identity" else 2
    return names


def _check_mappable(model: "Sequential", what: str) -> None:
    """Refuse a layer the mapping does not cover, before anything is read or written:
    a Dense or Dropout maps by its weights and activation, so a subclass that computes
    its own ``forward`` (or a layer of another class) would export as a network that
    disagrees with ``predict``."""
    from nnlib.layers import Dense, Dropout
    for i, layer in enumerate(model.layers):
        base = (Dense if isinstance(layer, Dense) else
                Dropout if isinstance(layer, Dropout) else None)
        if base is None or type(layer).forward is not base.forward:
            why = ("overrides forward" if base is not None
                   else "is not a Dense or Dropout")
            raise TypeError(f"{what} maps Dense and Dropout layers only; layers[{i}] is "
                            f"{type(layer).__name__}, which {why}, so torch.nn and ONNX "
                            f"have no equivalent of it here")


@contextlib.contextmanager
def _exporting(model: "Sequential", what: str) -> Iterator[None]:
    """Hold ``model`` for an export or import of its weights (``what`` names it): its
    layers mappable (:func:`_check_mappable`) and checked as a compiled call checks them
    (``layers`` is a plain list users edit: a replaced W of another shape, a broken
    chain, a float32 array in a float64 model or an empty list exported a graph or
    state_dict that disagrees with ``predict``), and no fit of another thread training
    it (whose steps move the weights without a lock, as for ``get_weights`` and
    ``set_weights``: a state_dict read would mix steps, one written would be overwritten
    mid-step)."""
    _check_mappable(model, what)
    from nnlib.model import _NotDuringAnotherThreadsFit
    with _NotDuringAnotherThreadsFit(model, what):
        model._check_layers()
        _check_dense_arrays(model, what)
        yield


def _check_dense_arrays(model, what):
    """Each Dense's arrays of the shapes its widths declare and a known activation: the
    mapping writes them as they are (a W assigned since, of other shapes, passed
    ``_check_layers``, which chains the declared widths)."""
    from nnlib._codes import ACTIVATION_CODES
    from nnlib._validation import ShapeError
    from nnlib.layers import Dense
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, Dense):
            continue
        W, b = np.shape(layer.W), np.shape(layer.b)
        if W != (layer.n_in, layer.n_out) or b != (layer.n_out,):
            raise ShapeError(f"{what}: layers[{i}] is Dense({layer.n_in}, {layer.n_out}) "
                             f"but holds W of shape {W} and b of shape {b} (assigned "
                             f"since?); it needs ({layer.n_in}, {layer.n_out}) and "
                             f"({layer.n_out},)")
        if layer.activation not in ACTIVATION_CODES:
            raise ValueError(f"{what}: layers[{i}] has the unknown activation "
                             f"{layer.activation!r}; expected one of "
                             f"{sorted(ACTIVATION_CODES)}")


def _dense_positions(model: "Sequential") -> List[Tuple[int, Any]]:
    """[(position of its Linear, layer)] of each Dense layer of ``model`` in the
    equivalent ``torch.nn.Sequential`` (a Dropout takes one position)."""
    from nnlib.layers import Dropout
    out, pos = [], 0
    for layer in model.layers:
        if isinstance(layer, Dropout):
            pos += 1
            continue
        out.append((pos, layer))
        pos += 1 if layer.activation == "identity" else 2
    return out


def to_torch_state_dict(model: "Sequential", as_tensors: bool = False) -> Dict[str, Any]:
    """The model's weights as the ``state_dict`` of the equivalent ``torch.nn.Sequential``.

    Parameters
    ----------
    model : nnlib.Sequential
    as_tensors : bool, default False
        Return ``torch.Tensor`` values (imports torch) instead of NumPy arrays.

    Returns
    -------
    dict
        ``{"<i>.weight": (n_out, n_in) array, "<i>.bias": (n_out,) array, ...}``, copies
        in the model's dtype, ``i`` as :func:`torch_module_names`.

    Examples
    --------
    >>> import nnlib
    >>> model = nnlib.Sequential([nnlib.Dense(2, 4, "tanh"), nnlib.Dense(4, 3)])
    >>> {k: v.shape for k, v in to_torch_state_dict(model).items()}
    {'0.weight': (4, 2), '0.bias': (4,), '2.weight': (3, 4), '2.bias': (3,)}
    """
    out: Dict[str, Any] = {}
    with _exporting(model, "to_torch_state_dict"):
        for pos, layer in _dense_positions(model):
            out[f"{pos}.weight"] = np.ascontiguousarray(layer.W.T)
            out[f"{pos}.bias"] = layer.b.copy()
    if as_tensors:
        import torch
        out = {k: torch.from_numpy(v) for k, v in out.items()}
    return out


def _as_array(value, key):
    try:
        if hasattr(value, "detach"):                    # a torch tensor
            value = value.detach().cpu().numpy()
        a = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"state_dict[{key!r}] is not an array: {exc}") from None
    if a.dtype.kind not in "fiu":
        raise TypeError(f"state_dict[{key!r}] has dtype {a.dtype}; expected numbers")
    return a


def _in_dtype(a, dtype, what):
    """``a`` cast to ``dtype``, refusing a finite value the cast makes infinite (beyond
    float32's range: the weight would silently become inf)."""
    with np.errstate(over="ignore"):
        out = np.asarray(a).astype(dtype)
    if not np.isfinite(out).all():
        from nnlib.exceptions import DTypeRangeError
        big = np.abs(np.asarray(a, dtype=np.float64)).max()
        raise DTypeRangeError(f"{what} holds {big:.7g}, beyond the range of "
                              f"{np.dtype(dtype).name} (max {np.finfo(dtype).max:.7g}): "
                              f"it would become inf; use float64")
    return out


def _check_torch_keys(state_dict, positions):
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict; got {type(state_dict).__name__}")
    want = {f"{p}.{k}" for p in positions for k in ("weight", "bias")}
    if set(state_dict) != want:
        missing, extra = sorted(want - set(state_dict)), sorted(set(state_dict) - want)
        raise ValueError(f"the state_dict does not match a torch.nn.Sequential of this "
                         f"architecture: missing {missing}, unexpected {extra}")


def load_torch_state_dict(model: "Sequential", state_dict: Dict[str, Any]) -> None:
    """Copy a torch ``state_dict`` (NumPy arrays or tensors) into ``model``'s layers, in
    place, after checking every key and shape (nothing changes on an error).

    Parameters
    ----------
    model : Sequential
        A model of Dense (and Dropout) layers, changed in place.
    state_dict : dict
        ``{"<i>.weight": (out, in), "<i>.bias": (out,)}`` of the equivalent
        ``torch.nn.Sequential`` (:func:`to_torch_state_dict`'s keys).

    Raises
    ------
    ValueError
        If the keys are not those of the model's architecture (:func:`torch_module_names`)
        or a shape differs (a :class:`~nnlib.exceptions.DTypeRangeError` for a value
        beyond the range of the model's dtype); TypeError for a value that is not a
        numeric array.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib import Dense, Sequential
    >>> src = Sequential([Dense(2, 3, "relu", random_state=0), Dense(3, 2, random_state=1)])
    >>> dst = Sequential([Dense(2, 3, "relu"), Dense(3, 2)])
    >>> load_torch_state_dict(dst, to_torch_state_dict(src))
    >>> X = np.array([[1.0, -2.0], [0.5, 0.25]])
    >>> np.array_equal(dst.predict(X), src.predict(X))
    True
    >>> load_torch_state_dict(dst, {"0.weight": np.ones((3, 2))})
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    with _exporting(model, "load_torch_state_dict"):
        _load_torch_state_dict(model, state_dict)


def _load_torch_state_dict(model, state_dict):
    """load_torch_state_dict's checks and copy, while it holds ``model``."""
    pairs = _dense_positions(model)
    _check_torch_keys(state_dict, [pos for pos, _ in pairs])
    new = []
    for pos, layer in pairs:
        W = _as_array(state_dict[f"{pos}.weight"], f"{pos}.weight")
        b = _as_array(state_dict[f"{pos}.bias"], f"{pos}.bias")
        if W.shape != (layer.n_out, layer.n_in) or b.shape != (layer.n_out,):
            raise ValueError(f"state_dict['{pos}.weight'] has shape {W.shape} and "
                             f"'{pos}.bias' {b.shape}; layer Dense({layer.n_in}, "
                             f"{layer.n_out}) needs ({layer.n_out}, {layer.n_in}) and "
                             f"({layer.n_out},)")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"state_dict['{pos}.*'] holds non-finite values")
        new.append((layer, _in_dtype(W, layer.W.dtype, f"state_dict['{pos}.weight']"),
                    _in_dtype(b, layer.b.dtype, f"state_dict['{pos}.bias']")))
    for layer, W, b in new:
        layer.W[...] = W.T
        layer.b[...] = b


def from_torch_state_dict(state_dict: Dict[str, Any], activations: Sequence[str],
                          dtype: DTypeLike = np.float64,
                          activation_params: Optional[Sequence[Optional[float]]] = None
                          ) -> "Sequential":
    """A new :class:`~nnlib.Sequential` with the weights of a torch ``state_dict``.

    Parameters
    ----------
    state_dict : dict
        Of a ``torch.nn.Sequential`` of ``Linear`` layers and activations.
    activations : list of str
        One nnlib activation name per ``Linear`` (the state_dict does not hold them);
        their positions must match the keys (an activation between two ``Linear``).
    dtype : float32 or float64, default float64
    activation_params : list, optional
        ``leaky_relu``'s slope or ``elu``'s alpha per layer (None: the default).

    Examples
    --------
    >>> import numpy as np
    >>> sd = {"0.weight": np.ones((3, 2)), "0.bias": np.zeros(3),
    ...       "2.weight": np.ones((1, 3)), "2.bias": np.zeros(1)}
    >>> m = from_torch_state_dict(sd, ["relu", "identity"])
    >>> m.predict(np.array([[1.0, -2.0]]))
    array([[0.]])
    """
    from nnlib.layers import Dense
    from nnlib.model import Sequential
    if isinstance(activations, str):
        # list("relu") would be four activations, reported as missing keys
        raise TypeError(f"activations must hold one activation name per Linear, e.g. "
                        f"[{activations!r}, 'identity']; got the string {activations!r}")
    acts = list(activations)
    params = list(activation_params) if activation_params is not None else [None] * len(acts)
    if len(params) != len(acts):
        raise ValueError(f"got {len(acts)} activations but {len(params)} activation_params")
    positions = torch_module_names(acts)
    _check_torch_keys(state_dict, positions)
    layers = []
    for pos, act, param in zip(positions, acts, params):
        W = _as_array(state_dict[f"{pos}.weight"], f"{pos}.weight")
        if W.ndim != 2:
            raise ValueError(f"state_dict['{pos}.weight'] must be 2-d (out, in); got "
                             f"shape {W.shape}")
        layers.append(Dense(W.shape[1], W.shape[0], act, init="zeros", dtype=dtype,
                            activation_param=param))
    model = Sequential(layers)
    load_torch_state_dict(model, state_dict)
    return model


def to_torch(model: "Sequential") -> Any:
    """The equivalent ``torch.nn.Sequential`` (imports torch), with the model's weights
    and dtype, in ``eval()`` mode (its Dropout modules off, as nnlib's ``predict``).

    Raises
    ------
    ValueError
        For a ``sign`` activation (torch.nn has no module for it).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from nnlib import Dense, Sequential
    >>> m = Sequential([Dense(2, 3, "relu", random_state=0), Dense(3, 2, random_state=1)])
    >>> net = to_torch(m)
    >>> net
    Sequential(
      (0): Linear(in_features=2, out_features=3, bias=True)
      (1): ReLU()
      (2): Linear(in_features=3, out_features=2, bias=True)
    )
    >>> X = np.array([[1.0, -2.0], [0.5, 0.25]])
    >>> np.allclose(net(torch.tensor(X)).detach().numpy(), m.predict(X), rtol=0, atol=1e-12)
    True
    """
    with _exporting(model, "to_torch"):
        return _to_torch(model)


def _to_torch(model):
    """to_torch's module, while it holds ``model``."""
    import torch
    from nnlib.layers import Dropout
    modules = []
    for layer in model.layers:
        if isinstance(layer, Dropout):
            modules.append(torch.nn.Dropout(layer.rate))
            continue
        modules.append(torch.nn.Linear(layer.n_in, layer.n_out))
        act = layer.activation
        if act == "identity":
            continue
        if act not in _TORCH_MODULES:
            raise ValueError(f"torch.nn has no module for the {act!r} activation")
        cls = getattr(torch.nn, _TORCH_MODULES[act])
        modules.append(cls(layer.activation_param) if act in ("leaky_relu", "elu")
                       else cls())
    net = torch.nn.Sequential(*modules).to(torch.float32 if model.dtype == np.float32
                                           else torch.float64)
    net.load_state_dict(to_torch_state_dict(model, as_tensors=True))
    return net.eval()           # nnlib's predict: dropout off


def to_onnx(model: "Sequential", path: Union[str, "os.PathLike[str]", None] = None, *,
            dtype: DTypeLike = np.float32, opset: int = 17, input_name: str = "X",
            output_name: str = "logits") -> Any:
    """Export the model as an ONNX graph: per Dense layer ``Gemm(X, W, b)`` and its
    activation (a Dropout, the identity at inference, is left out).

    Parameters
    ----------
    model : nnlib.Sequential
    path : str or path-like, optional
        Where to write the ``.onnx`` file (atomically: a temporary file, then renamed).
    dtype : float32 or float64, default float32
        The graph's element type. onnxruntime runs every activation in float32, and
        all but softplus in float64 (leaky_relu and elu are composed of double nodes
        there: see the module docstring). A weight beyond the dtype's range raises
        :class:`~nnlib.exceptions.DTypeRangeError`.
    opset : int, default 17
    input_name, output_name : str
        The graph's input ``(batch, n_in)`` and output ``(batch, n_out)``: the logits,
        what ``model.predict`` returns.

    Returns
    -------
    onnx.ModelProto
        The checked model (``onnx.checker.check_model``).

    Examples
    --------
    >>> from nnlib import Dense, Sequential
    >>> m = Sequential([Dense(2, 3, "relu", random_state=0), Dense(3, 2, random_state=1)])
    >>> proto = to_onnx(m, "m.onnx")
    >>> [node.op_type for node in proto.graph.node]
    ['Gemm', 'Relu', 'Gemm']
    >>> proto.graph.input[0].name, proto.graph.output[0].name
    ('X', 'logits')
    """
    with _exporting(model, "to_onnx"):
        proto = _onnx_model(model, dtype, opset, input_name, output_name)
    # written once the weights are read and the guard has seen no fit meanwhile
    if path is not None:
        _write_atomically(path, proto.SerializeToString())
    return proto


def _onnx_model(model, dtype, opset, input_name, output_name):
    """to_onnx's checked ``onnx.ModelProto`` of ``model``."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ImportError("to_onnx needs the onnx package: pip install nnlib[onnx] "
                          "(or pip install onnx onnxruntime)") from exc
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}")
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    opset = _check_opset(opset, model, dtype, onnx.defs.onnx_opset_version())
    from nnlib.layers import Dropout
    nodes, inits, current = [], [], input_name
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dropout):      # the identity at inference
            continue
        w, b = f"W{i}", f"b{i}"
        inits += [numpy_helper.from_array(_in_dtype(layer.W, dtype, f"layers[{i}].W"), w),
                  numpy_helper.from_array(_in_dtype(layer.b, dtype, f"layers[{i}].b"), b)]
        z = f"Z{i}"
        nodes.append(helper.make_node("Gemm", [current, w, b], [z], name=f"dense{i}"))
        act, current = layer.activation, z
        if act in ("leaky_relu", "elu") and dtype == np.float64:
            # ONNX keeps an attribute alpha in float32: a slope of 0.01 became
            # 0.0099999998 (1.4e-9 off in every negative output of a float64 graph), so
            # these two are composed of double-precision constants instead
            current = f"H{i}"
            more_nodes, more_inits = _double_activation(act, layer.activation_param, z,
                                                        current, i)
            nodes += more_nodes
            inits += [numpy_helper.from_array(v, k) for k, v in more_inits.items()]
        elif act != "identity":
            attrs = {}
            if act == "leaky_relu":
                attrs["alpha"] = float(layer.activation_param)
            elif act == "elu":
                attrs["alpha"] = float(layer.activation_param)
            current = f"H{i}"
            nodes.append(helper.make_node(_ONNX_OPS[act], [z], [current],
                                          name=f"{act}{i}", **attrs))
    _check_io_names(input_name, output_name,
                    {t.name for t in inits} | {o for n in nodes[:-1] for o in n.output})
    nodes[-1].output[0] = output_name
    graph = helper.make_graph(
        nodes, "nnlib.Sequential",
        [helper.make_tensor_value_info(input_name, elem, ["batch", model.n_in])],
        [helper.make_tensor_value_info(output_name, elem,
                                       ["batch", model.n_out])],
        initializer=inits)
    proto = helper.make_model(graph, producer_name="nnlib",
                              opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(proto)
    return proto


def _check_io_names(input_name, output_name, internal):
    """The graph's input and output names: two different non-empty strings, neither the
    name of a weight or an intermediate result (``input_name="W0"`` made the input the
    first weight's initializer: a graph with no input)."""
    for what, name in (("input_name", input_name), ("output_name", output_name)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what} must be a non-empty string; got {name!r}")
        if name in internal:
            raise ValueError(f"{what}={name!r} is the name of one of the graph's own "
                             f"tensors ({', '.join(sorted(internal)[:8])}, ...); choose "
                             f"another")
    if input_name == output_name:
        raise ValueError(f"input_name and output_name must differ; both are "
                         f"{input_name!r}")


def _check_opset(opset, model, dtype, newest):
    """``opset`` as an int, after refusing one the graph cannot be written in: below 7
    (onnxruntime has no Gemm there), below 9 for Sign and for the Where of a float64
    leaky_relu or elu, above the installed onnx's newest (check_model passed opset 99,
    onnxruntime refused it)."""
    import numbers
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral):
        raise TypeError(f"opset must be an integer; got {opset!r} "
                        f"({type(opset).__name__})")
    acts = {getattr(layer, "activation", None) for layer in model.layers}
    low, why = 7, "Gemm"
    if "sign" in acts:
        low, why = 9, "Sign"
    elif dtype == np.float64 and acts & {"leaky_relu", "elu"}:
        low, why = 9, "Where (a float64 leaky_relu or elu)"
    opset = int(opset)                  # an Integral (np.int64 too) as int
    if not low <= opset <= newest:
        raise ValueError(f"opset must be in [{low}, {newest}] for this graph ({why} "
                         f"needs {low}; the installed onnx knows up to {newest}); got "
                         f"{opset}")
    return opset


def _double_activation(act, param, z, out, i):
    """(nodes, {initializer name: float64 scalar}) computing ``leaky_relu`` or ``elu``
    of ``z`` into ``out`` in double precision, as nnlib does: ``where(z > 0, z, slope *
    z)`` and ``where(z > 0, z, alpha * expm1(min(z, 0)))``. ONNX has no Expm1, and
    ``Exp(z) - 1`` loses every digit for tiny z; ``expm1(u) = 2 t / (1 - t)`` with ``t =
    tanh(u / 2)`` is accurate to about 1 ulp for u <= 0 (no cancellation: 1 - t is in [1,
    2)). onnxruntime has no double Elu kernel, so these also make it runnable there."""
    from onnx import helper

    def k(n):
        # every name this layer adds: "elu3_t2", never "t2" + "3" (layer 3's t2 and
        # layer 32's t would both be "t23")
        return f"{act}{i}_{n}"

    c = {k("zero"): 0.0, k("param"): float(param)}
    pos = helper.make_node("Greater", [z, k("zero")], [k("pos")], name=k("pos"))
    if act == "leaky_relu":
        nodes = [pos, helper.make_node("Mul", [z, k("param")], [k("neg")], name=k("neg"))]
    else:
        c.update({k("half"): 0.5, k("one"): 1.0, k("two"): 2.0})
        steps = [("Min", [z, k("zero")], "u"),                  # u = min(z, 0)
                 ("Mul", [k("u"), k("half")], "uh"),
                 ("Tanh", [k("uh")], "t"),                      # t = tanh(u / 2)
                 ("Mul", [k("t"), k("two")], "t2"),
                 ("Sub", [k("one"), k("t")], "d"),
                 ("Div", [k("t2"), k("d")], "em1"),             # expm1(u) = 2t / (1 - t)
                 ("Mul", [k("em1"), k("param")], "neg")]
        nodes = [pos] + [helper.make_node(op, ins, [k(o)], name=k(o))
                         for op, ins, o in steps]
    nodes.append(helper.make_node("Where", [k("pos"), z, k("neg")], [out],
                                  name=f"{act}{i}"))
    return nodes, {k: np.array(v, dtype=np.float64) for k, v in c.items()}


def _write_atomically(path: Union[str, "os.PathLike[str]"], data: bytes) -> None:
    # as save writes: mkstemp's mode 0600 made every .onnx unreadable to other users,
    # and a replaced file lost its mode, a symbolic link its link
    from nnlib._format import write_atomically
    write_atomically(path, lambda f: f.write(data))
