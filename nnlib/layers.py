"""Layers of a :class:`nnlib.Sequential` model, and the protocol they follow.

The layer protocol (:class:`Layer`), the small surface ``Sequential`` trains through:

* ``params`` -- the live parameter arrays (updated in place by the optimizer) and
  ``param_names``, their names; ``regularized[i]`` says whether ``fit``'s L2 penalty
  applies to ``params[i]`` (Dense: the weights, not the bias);
* ``forward(X)`` -- the output at inference (``predict``, ``evaluate``);
* ``forward_train(X)`` -- ``(output, backprop)`` for one training batch, where
  ``backprop(dH)`` returns ``(dX, grads)``: the gradient with respect to the input and
  one gradient per parameter, in the order of ``params`` (what backward needs is kept in
  the closure: thinc's habit);
* ``n_in``/``n_out`` (None for a layer that keeps any width, like :class:`Dropout`) and
  ``dtype`` (None for a layer without parameters).

A model made only of :class:`Dense` and :class:`Dropout` layers trains in the compiled
epoch (``nnlib/_kernels/train.pyx``), the whole epoch without the GIL, its dropouts
included. Any other layer -- a user's subclass of :class:`Layer`, a subclass of Dense
or Dropout that overrides ``forward``, ``forward_train`` or ``backward``, or a Dense whose
``regularized`` flags differ from ``(True, False)`` -- makes the
model train through ``nnlib.batch_training``: a Python loop over the batches that still calls the compiled
kernels for each Dense layer, the loss and the optimizer step, and that uses the layer's
own forward and backward everywhere (fit, evaluate, loss_and_grads, predict).

A :class:`Dense` layer holds its weights ``W`` (n_in, n_out) and bias ``b`` (n_out,) as
live NumPy arrays and computes ``H = act(X @ W + b)`` through the compiled kernels of
:mod:`nnlib.functional.dense`.

Initializers (fan_in = n_in, fan_out = n_out; biases start at 0):

=================  ===============================================  ===================
name               distribution                                     reference
=================  ===============================================  ===================
glorot_uniform     U(-a, a), a = sqrt(6 / (fan_in + fan_out))       Glorot & Bengio 2010
glorot_normal      N(0, 2 / (fan_in + fan_out))                     Glorot & Bengio 2010
he_uniform         U(-a, a), a = sqrt(6 / fan_in)                   He et al. 2015
he_normal          N(0, 2 / fan_in)                                 He et al. 2015
zeros              0                                                (the notes' XOR nets)
=================  ===============================================  ===================

(``glorot_uniform`` is also PyTorch's ``xavier_uniform_`` and Keras' default.)
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from nnlib._aligned import aligned_copy, aligned_zeros
from nnlib._codes import ACTIVATION_PARAMS, activation_code
from nnlib._dense_args import activation_spec
# One seed rule for the whole library (a negative seed is a clear ValueError, not
# NumPy's "expected non-negative integer"). Re-exported: nnlib.model imports it here.
from nnlib._random import as_generator
from nnlib._typing import ArrayLike, DTypeLike, FloatArray, SeedLike, Threads
from nnlib._validation import (DTypeError, ShapeError, as_float_array, check_int_scalar,
                               check_real_scalar, native_float_dtype)
from nnlib.functional.dense import dense_backward, dense_forward

__all__ = ["Layer", "Dense", "Dropout", "INITIALIZERS", "as_generator", "is_compiled"]

# What forward_train returns with the output: dH -> (dX, one gradient per parameter).
Backprop = Callable[[FloatArray], Tuple[FloatArray, List[FloatArray]]]


class Layer:
    """Base class of the layer protocol (see the module docstring).

    Subclasses set ``n_in``, ``n_out`` and implement ``forward`` and ``forward_train``;
    layers with parameters also set ``params``, ``param_names``, ``regularized`` and a
    ``dtype``.

    Examples
    --------
    A layer that scales each feature by a learned factor:

    >>> import numpy as np
    >>> class Scale(Layer):
    ...     def __init__(self, n):
    ...         self.n_in = self.n_out = n
    ...         self.s = np.ones(n)
    ...     params = property(lambda self: [self.s])
    ...     param_names = ("s",)
    ...     dtype = property(lambda self: self.s.dtype)
    ...     def forward(self, X, n_threads=None):
    ...         return X * self.s
    ...     def forward_train(self, X):
    ...         return X * self.s, lambda dH: (dH * self.s, [(dH * X).sum(axis=0)])
    >>> layer = Scale(2)
    >>> H, backprop = layer.forward_train(np.array([[1.0, 2.0]]))
    >>> backprop(np.ones((1, 2)))[1]
    [array([1., 2.])]
    """

    n_in: Any = None            # int, or None for a layer that keeps any width
    n_out: Any = None
    dtype: Any = None
    param_names: Tuple[str, ...] = ()

    @property
    def params(self) -> List[np.ndarray]:
        """The live parameter arrays (none here): the optimizer updates them in place,
        in this order, and ``Sequential.params`` lists them after the previous layers'.

        Examples
        --------
        A learned shift of each feature:

        >>> import numpy as np, nnlib
        >>> class Shift(Layer):
        ...     def __init__(self, n):
        ...         self.n_in = self.n_out = n
        ...         self.c = np.zeros(n)
        ...     params = property(lambda self: [self.c])
        ...     dtype = property(lambda self: self.c.dtype)
        ...     def forward(self, X, n_threads=None):
        ...         return X + self.c
        ...     def forward_train(self, X):
        ...         return X + self.c, lambda dH: (dH, [dH.sum(axis=0)])
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0), Shift(2)])
        >>> [p.shape for p in model.params]            # W, b, then the shift c
        [(2, 2), (2,), (2,)]
        >>> _ = model.fit(np.eye(2), [0, 1], epochs=5)
        >>> model.params[2] is model.layers[1].c, bool(np.all(model.layers[1].c != 0))
        (True, True)
        >>> Layer().params
        []
        """
        return []

    @property
    def regularized(self) -> Tuple[bool, ...]:
        """Which params fit's L2 penalty applies to (default: none), one flag per array
        of ``params``: the penalty adds ``l2/2 * ||p||^2`` to the loss and ``l2 * p`` to
        the gradient of each flagged ``p``.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> Layer().regularized, nnlib.Dense(2, 2).regularized     # Dense: W, not b
        ((), (True, False))
        >>> class NoDecay(nnlib.Dense):           # trains through the per-batch path
        ...     regularized = (False, False)
        >>> X, y = np.eye(2), [0, 1]
        >>> for layer in (nnlib.Dense(2, 2, random_state=0), NoDecay(2, 2, random_state=0)):
        ...     model = nnlib.Sequential([layer])
        ...     penalty = model.loss_and_grads(X, y, l2=2.0)[0] - model.loss_and_grads(X, y)[0]
        ...     print(model.compiled, bool(np.isclose(penalty, (layer.W ** 2).sum())))
        True True
        False False
        """
        return tuple(False for _ in self.params)

    def forward(self, X: ArrayLike, n_threads: Threads = None) -> FloatArray:
        """The output at inference (``predict``, ``evaluate``), shape (n, n_out);
        subclasses implement it.

        Parameters
        ----------
        X : ndarray (n, n_in)
            The previous layer's output, in the model's dtype.
        n_threads : int or None
            A thread count the layer may use (compiled layers do).

        Examples
        --------
        A layer with only ``forward`` serves ``predict`` and ``evaluate``; ``fit`` also
        needs :meth:`forward_train`:

        >>> import numpy as np, nnlib
        >>> class Negate(Layer):
        ...     def forward(self, X, n_threads=None):
        ...         return -X
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, init="zeros"), Negate()])
        >>> model.layers[0].b[:] = [1.0, -1.0]
        >>> model.predict(np.ones((1, 2)))
        array([[-1.,  1.]])
        >>> model.fit(np.ones((1, 2)), [1])
        Traceback (most recent call last):
        ...
        NotImplementedError: Negate must implement forward_train(X) -> (H, backprop)
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward(X)")

    def forward_train(self, X: ArrayLike) -> Tuple[FloatArray, Backprop]:
        """``(output, backprop)`` for one training batch; subclasses implement it.

        Parameters
        ----------
        X : ndarray (n, n_in)
            The batch's input to the layer.

        Returns
        -------
        output : ndarray (n, n_out)
        backprop : callable
            ``backprop(dH) -> (dX, grads)``: given dObjective/d(output), the gradient
            with respect to X and one gradient per array of ``params``, in order.

        Examples
        --------
        A layer that doubles its input: the model's gradient with respect to the Dense
        weights is twice that of a Dense layer alone, with doubled weights:

        >>> import numpy as np, nnlib
        >>> class Double(Layer):
        ...     def forward(self, X, n_threads=None):
        ...         return 2 * X
        ...     def forward_train(self, X):
        ...         return 2 * X, lambda dH: (2 * dH, [])
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0), Double()])
        >>> twice = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> for p in twice.params:
        ...     p *= 2
        >>> X, y = np.array([[1.0, -1.0], [0.5, 2.0]]), [0, 1]
        >>> loss, (dW, db) = model.loss_and_grads(X, y)
        >>> loss2, (dW2, db2) = twice.loss_and_grads(X, y)
        >>> model.compiled, bool(np.isclose(loss, loss2)), np.allclose(dW, 2 * dW2)
        (False, True, True)
        """
        raise NotImplementedError(f"{type(self).__name__} must implement "
                                  f"forward_train(X) -> (H, backprop)")


_DENSE_METHODS = ("forward", "forward_train", "backward", "_act_args")
_DROPOUT_METHODS = ("forward", "forward_train")


def is_compiled(layer: Layer) -> bool:
    """Whether the compiled epoch can train ``layer``: a Dense or a Dropout whose class
    keeps the layer's own forward and backward (a subclass that overrides them trains in
    Python), and a Dense whose L2 penalty is the compiled one's, on W and not b.

    Parameters
    ----------
    layer : Layer

    Returns
    -------
    bool

    Examples
    --------
    >>> is_compiled(Dense(2, 2)), is_compiled(Dropout(0.5)), is_compiled(Layer())
    (True, True, False)
    >>> class Traced(Dense):
    ...     def forward(self, X, n_threads=None):
    ...         return super().forward(X, n_threads)
    >>> class NoDecay(Dense):
    ...     regularized = (False, False)
    >>> is_compiled(Traced(2, 2)), is_compiled(NoDecay(2, 2))
    (False, False)
    """
    cls = type(layer)
    if cls is Dropout:          # the classes themselves: only ``regularized`` can differ
        return True
    if cls is Dense:
        return tuple(layer.regularized) == Dense.regularized
    for base, methods in ((Dense, _DENSE_METHODS), (Dropout, _DROPOUT_METHODS)):
        if isinstance(layer, base):
            # the compiled epoch adds l2 * W to every dW and nothing to db, whatever a
            # subclass or an instance says in ``regularized``
            if base is Dense and tuple(layer.regularized) != Dense.regularized:
                return False
            for name in methods:        # a plain loop: fit asks this of every layer
                if getattr(cls, name) is not getattr(base, name):
                    return False
            return True
    return False


def _glorot_uniform(rng, n_in, n_out):
    a = np.sqrt(6.0 / max(n_in + n_out, 1))
    return rng.uniform(-a, a, size=(n_in, n_out))


def _glorot_normal(rng, n_in, n_out):
    return rng.normal(0.0, np.sqrt(2.0 / max(n_in + n_out, 1)), size=(n_in, n_out))


def _he_uniform(rng, n_in, n_out):
    a = np.sqrt(6.0 / max(n_in, 1))
    return rng.uniform(-a, a, size=(n_in, n_out))


def _he_normal(rng, n_in, n_out):
    return rng.normal(0.0, np.sqrt(2.0 / max(n_in, 1)), size=(n_in, n_out))


def _zeros(rng, n_in, n_out):
    return np.zeros((n_in, n_out))


INITIALIZERS: Dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "glorot_uniform": _glorot_uniform,
    "glorot_normal": _glorot_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
    "zeros": _zeros,
}


class Dense(Layer):
    """Fully connected layer ``H = act(X @ W + b)``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths (>= 1).
    activation : str, default "identity"
        identity, sigmoid, tanh, relu, leaky_relu, softplus, elu or sign.
    init : str, default "glorot_uniform"
        Weight initializer (see the module docstring).
    dtype : float32 or float64, default float64
    random_state : None, int or numpy.random.Generator
        Seed for the initializer.
    activation_param : float, optional
        leaky_relu's slope (default 0.01) or elu's alpha (default 1.0), >= 0 and at most
        the largest value of ``dtype`` (DTypeRangeError otherwise; checked again when the
        model runs, as the attribute or the weights' dtype may change).

    Attributes
    ----------
    W : ndarray (n_in, n_out);  b : ndarray (n_out,)
        Live arrays: writing into them changes the layer.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Dense(2, 3, "tanh", random_state=0)
    >>> layer, layer.W.shape, layer.b
    (Dense(2, 3, activation='tanh', dtype=float64), (2, 3), array([0., 0., 0.]))
    >>> X = np.array([[1.0, -1.0]])
    >>> np.allclose(layer.forward(X), np.tanh(X @ layer.W + layer.b))
    True
    >>> H, backprop = layer.forward_train(X)
    >>> dX, (dW, db) = backprop(np.ones_like(H))
    >>> dX.shape, dW.shape, db.shape
    ((1, 2), (2, 3), (3,))
    """

    def __init__(self, n_in: int, n_out: int, activation: str = "identity",
                 init: str = "glorot_uniform", dtype: DTypeLike = np.float64,
                 random_state: SeedLike = None,
                 activation_param: Optional[float] = None) -> None:
        self.n_in = check_int_scalar(n_in, "n_in", low=1)
        self.n_out = check_int_scalar(n_out, "n_out", low=1)
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise DTypeError(f"dtype must be float32 or float64; got {dtype!r}") from None
        if dt not in (np.float32, np.float64):
            raise DTypeError(f"dtype must be float32 or float64; got {dt}")
        _, param = activation_spec(activation, activation_param, dt)
        self.activation = activation
        # the parameter as given (None: the activation's default, whichever it is)
        self._activation_param = None if activation_param is None else param
        if self.n_in * self.n_out > np.iinfo(np.intp).max // dt.itemsize:
            # NumPy's own answer ("array is too big") does not say which argument is at
            # fault.
            raise ShapeError(f"Dense({self.n_in}, {self.n_out}) has too many weights "
                             f"(n_in * n_out = {self.n_in * self.n_out}) for one array")
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; expected one of "
                             f"{sorted(INITIALIZERS)}")
        self.init = init
        rng = as_generator(random_state)
        # at a cache line (nnlib._aligned: the kernels' speed would depend on where
        # NumPy's allocator put them)
        self.W = aligned_copy(INITIALIZERS[init](rng, self.n_in, self.n_out), dt)
        self.b = aligned_zeros(self.n_out, dt)

    @property
    def dtype(self) -> np.dtype:
        """The weights' dtype (native byte order): the dtype the layer computes in.

        Examples
        --------
        >>> import numpy as np
        >>> layer = Dense(2, 3, dtype=np.float32)
        >>> layer.dtype, layer.forward(np.ones((1, 2), np.float32)).dtype
        (dtype('float32'), dtype('float32'))
        >>> layer.W = layer.W.astype(">f4")             # big-endian weights, same type
        >>> layer.dtype
        dtype('float32')
        """
        dt = self.W.dtype
        return dt if dt.isnative else (native_float_dtype(dt) or dt)

    @property
    def activation_param(self) -> float:
        """leaky_relu's slope or elu's alpha: the value given (to the constructor or
        set here), else the activation's default (0.0 for an activation without one).
        Setting None goes back to the default. What ``forward``, ``fit``, ``save`` and
        the exports all use.

        Examples
        --------
        >>> import numpy as np
        >>> layer = Dense(1, 1, "leaky_relu", init="zeros")
        >>> layer.W[...] = 1.0
        >>> layer.activation_param
        0.01
        >>> layer.activation_param = 0.5
        >>> layer.forward(np.array([[-1.0]])), layer.spec()["activation_param"]
        (array([[-0.5]]), 0.5)
        """
        if self._activation_param is not None:
            return self._activation_param
        default = ACTIVATION_PARAMS.get(self.activation)
        return float(default[1]) if default is not None else 0.0

    @activation_param.setter
    def activation_param(self, value: Optional[float]) -> None:
        # set as an attribute, the value was kept and then ignored unless the
        # constructor had been given one: forward and save used the default while
        # to_torch and to_onnx used the new value
        self._activation_param = (None if value is None else
                                  check_real_scalar(value, "activation_param", low=0.0))

    @property
    def _param_given(self) -> bool:
        return self._activation_param is not None

    @property
    def activation_code(self) -> int:
        """The activation's integer code (``nnlib._codes``), of ``activation`` as it is.

        Examples
        --------
        >>> from nnlib._codes import ACTIVATION_CODES
        >>> layer = Dense(2, 2, "relu")
        >>> layer.activation = "tanh"
        >>> layer.activation_code == ACTIVATION_CODES["tanh"]
        True
        """
        return activation_code(self.activation)

    def __setstate__(self, state):
        # a pickle from before activation_param became a property holds the resolved
        # value beside whether it was given
        if "_param_given" in state:
            given = state.pop("_param_given")
            param = state.pop("activation_param", None)
            state.pop("activation_code", None)
            state["_activation_param"] = param if given else None
        self.__dict__.update(state)

    param_names = ("W", "b")
    regularized = (True, False)

    @property
    def params(self) -> List[np.ndarray]:
        """``[W, b]``, the live arrays (what an optimizer updates in place).

        Examples
        --------
        >>> import numpy as np
        >>> layer = Dense(2, 1, init="zeros")
        >>> W, b = layer.params
        >>> W is layer.W, b is layer.b
        (True, True)
        >>> b += 1.5                                  # changes the layer
        >>> layer.forward(np.zeros((1, 2)))
        array([[1.5]])
        """
        return [self.W, self.b]

    def spec(self) -> Dict[str, Any]:
        """JSON-able description (used by save/load).

        Examples
        --------
        >>> Dense(2, 3, "elu", activation_param=0.5).spec()
        {'type': 'Dense', 'n_in': 2, 'n_out': 3, 'activation': 'elu', 'activation_param': 0.5,
         'init': 'glorot_uniform'}
        """
        spec = {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out,
                "activation": self.activation,
                "activation_param": self.activation_param if self._param_given else None,
                "init": self.init}
        flags = tuple(bool(f) for f in self.regularized)
        if flags != Dense.regularized:          # set on the instance: kept by save/load
            spec["regularized"] = list(flags)
        return spec

    def _act_args(self):
        """(activation name, its parameter or None for the default)."""
        return self.activation, self.activation_param if self._param_given else None

    def forward(self, X: ArrayLike, n_threads: Threads = None) -> FloatArray:
        """``act(X @ W + b)``; X (n, n_in) in the layer's dtype.

        Parameters
        ----------
        X : array_like (n, n_in)
            In the layer's dtype.
        n_threads : int or None
            Threads of the compiled kernel.

        Returns
        -------
        ndarray (n, n_out)

        Examples
        --------
        >>> import numpy as np
        >>> layer = Dense(2, 1, "relu", init="zeros")
        >>> layer.W[:] = [[1.0], [-1.0]]
        >>> layer.forward(np.array([[3.0, 1.0], [1.0, 3.0]]))
        array([[2.],
               [0.]])
        """
        return dense_forward(X, self.W, self.b, *self._act_args(), n_threads=n_threads)

    def backward(self, X: ArrayLike, H: ArrayLike,
                 grad_H: ArrayLike) -> Tuple[FloatArray, FloatArray, FloatArray]:
        """(dX, dW, db) given the input X, the output H and dObjective/dH.

        Parameters
        ----------
        X : array_like (n, n_in)
            In the layer's dtype.
        H : array_like (n, n_out)
            The layer's output for X (the activation's derivative is taken from it).
        grad_H : array_like (n, n_out)
            dObjective/dH.

        Returns
        -------
        dX : ndarray (n, n_in)
        dW : ndarray (n_in, n_out)
        db : ndarray (n_out,)

        Examples
        --------
        >>> import numpy as np
        >>> layer = Dense(2, 1, "relu", init="zeros")
        >>> layer.W[:] = [[1.0], [-1.0]]
        >>> X = np.array([[3.0, 1.0], [1.0, 3.0]])
        >>> dX, dW, db = layer.backward(X, layer.forward(X), np.ones((2, 1)))
        >>> dX, dW.ravel(), db                  # the second row is cut by relu
        (array([[ 1., -1.],
               [ 0.,  0.]]), array([3., 1.]), array([1.]))
        """
        return dense_backward(X, self.W, H, grad_H, *self._act_args())

    def forward_train(self, X: ArrayLike) -> Tuple[FloatArray, Backprop]:
        """``(H, backprop)`` for a training batch; ``backprop(dH) -> (dX, [dW, db])``.

        Parameters
        ----------
        X : array_like (n, n_in)
            In the layer's dtype.

        Returns
        -------
        H : ndarray (n, n_out)
        backprop : callable
            ``backprop(dH) -> (dX, [dW, db])``.

        Examples
        --------
        >>> import numpy as np
        >>> layer = Dense(2, 3, "tanh", random_state=0)
        >>> X = np.array([[1.0, -1.0]])
        >>> H, backprop = layer.forward_train(X)
        >>> dX, grads = backprop(np.ones_like(H))
        >>> [g.shape for g in grads] == [layer.W.shape, layer.b.shape]
        True
        """
        H = self.forward(X)

        def backprop(grad_H: FloatArray) -> Tuple[FloatArray, List[FloatArray]]:
            dX, dW, db = self.backward(X, H, grad_H)
            return dX, [dW, db]
        return H, backprop

    def _check_live(self):
        """The arrays may have been replaced by a user: keep them usable in place."""
        W, b = self.W, self.b
        # the common case, which the loop below would leave as it is: plain native
        # arrays of one dtype, the declared shapes, C-contiguous, aligned, writeable
        if (type(W) is np.ndarray and type(b) is np.ndarray and W.dtype is b.dtype
                and W.dtype.isnative and W.shape == (self.n_in, self.n_out)
                and b.shape == (self.n_out,) and W.flags.carray and b.flags.carray):
            return
        for name, shape in (("W", (self.n_in, self.n_out)), ("b", (self.n_out,))):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.shape != shape:
                raise ShapeError(f"Dense.{name} must be an array of shape {shape}; got "
                                 f"{getattr(a, 'shape', type(a).__name__)}")
            dt = a.dtype if a.dtype.isnative else (native_float_dtype(a.dtype) or a.dtype)
            if dt != self.dtype:
                raise DTypeError(f"Dense.W and Dense.b must share a dtype; got "
                                 f"{self.W.dtype} and {self.b.dtype}")
            if not (a.flags.c_contiguous and a.flags.writeable and a.dtype.isnative):
                setattr(self, name, as_float_array(a, name).copy())

    def __repr__(self) -> str:
        return (f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}, "
                f"dtype={self.dtype.name})")


class Dropout(Layer):
    """Inverted dropout (the lecture notes' regularizer): in training each input is kept
    with probability ``1 - rate`` and scaled by ``1 / (1 - rate)``, so the expected
    output equals the input; at inference the layer is the identity.

    Parameters
    ----------
    rate : float in [0, 1)
        Probability of dropping an input.
    random_state : None, int or numpy.random.Generator
        Seed of the masks (Keras's ``seed``). None: each ``fit`` seeds the layer from its
        own ``random_state`` (so ``fit(random_state=0)`` is reproducible, and its
        shuffling is the same as without the layer). The mask of a training step is the
        compiled counter-based mask of ``(seed, step)`` (:func:`nnlib.functional.dropout`),
        ``step`` counting this layer's training batches (it carries over between fits):
        the same seeds give the same masks, bit for bit, for any thread count.

    Attributes
    ----------
    seed : int or None
        The layer's own seed (None: the fit's).
    step : int
        Training batches seen; the next one uses the masks of this count.

    Between Dense layers, before the first or after the last, a Dropout trains inside the
    compiled epoch (``nnlib/_kernels/train.pyx``); ``predict`` and ``evaluate`` skip it.

    Examples
    --------
    >>> import numpy as np
    >>> drop = Dropout(0.5, random_state=0)
    >>> H, backprop = drop.forward_train(np.ones((2, 4)))
    >>> sorted(set(H.ravel().tolist()))              # dropped or scaled by 2
    [0.0, 2.0]
    >>> np.array_equal(backprop(np.ones((2, 4)))[0], H)
    True
    >>> drop.forward(np.ones((1, 2)))                # inference: the identity
    array([[1., 1.]])
    """

    def __init__(self, rate: float, random_state: SeedLike = None) -> None:
        from nnlib._validation import check_real_scalar
        self.rate = check_real_scalar(rate, "rate", low=0.0, high=1.0, high_open=True)
        self.random_state = random_state
        self.seed: Optional[int] = None             # None: each fit seeds the masks
        if isinstance(random_state, (int, np.integer)) and not isinstance(random_state,
                                                                          bool):
            as_generator(random_state)              # the library's seed checks
            self.seed = int(random_state)
        elif random_state is not None:
            self.seed = int(as_generator(random_state).integers(0, 2**63))
        self.step = 0                               # training batches seen
        self._fit_seed: Optional[int] = None        # the running fit's seed (seed None)

    @property
    def mask_seed(self) -> int:
        """The seed the masks use now: the layer's own, else the one its last fit drew
        (else, outside any fit, one drawn from fresh entropy and kept).

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> Dropout(0.5, random_state=7).mask_seed
        7
        >>> def seed_after_fit():
        ...     drop = Dropout(0.5)                       # seeded by each fit
        ...     model = nnlib.Sequential([nnlib.Dense(2, 4, random_state=0), drop,
        ...                               nnlib.Dense(4, 2, random_state=1)])
        ...     _ = model.fit(np.eye(2), [0, 1], epochs=1, random_state=0)
        ...     return drop.mask_seed
        >>> seed_after_fit() == seed_after_fit()          # the fit's random_state decides
        True
        """
        if self.seed is not None:
            return self.seed
        if self._fit_seed is None:
            self._fit_seed = int(np.random.default_rng().integers(0, 2**63))
        return self._fit_seed

    def forward(self, X: ArrayLike, n_threads: Threads = None) -> FloatArray:
        """The identity (no dropout at inference): ``X`` itself (the model's array).

        Parameters
        ----------
        X : array_like (n, width)
        n_threads : int or None
            Unused (the protocol's signature).

        Returns
        -------
        X

        Examples
        --------
        >>> import numpy as np
        >>> X = np.ones((2, 3))
        >>> Dropout(0.5, random_state=0).forward(X) is X
        True
        """
        return X                                    # type: ignore[return-value]

    def forward_train(self, X: ArrayLike) -> Tuple[FloatArray, Backprop]:
        """``(dropout(X), backprop)`` with this step's mask; the step count advances.

        Parameters
        ----------
        X : array_like (n, width)

        Returns
        -------
        H : ndarray (n, width)
            X with the step's mask: dropped entries 0, kept ones scaled by
            ``1 / (1 - rate)``.
        backprop : callable
            ``backprop(dH) -> (dX, [])``, the same mask applied to dH.

        Examples
        --------
        >>> import numpy as np
        >>> drop = Dropout(0.5, random_state=0)
        >>> first, _ = drop.forward_train(np.ones((4, 4)))
        >>> second, _ = drop.forward_train(np.ones((4, 4)))
        >>> drop.step, np.array_equal(first, second)     # a new mask each step
        (2, False)
        """
        from nnlib.functional.dropout import dropout, dropout_vjp
        step, seed = self.step, self.mask_seed
        self.step = (step + 1) % 2**64
        H = dropout(X, self.rate, seed, step)
        return H, lambda grad_H: (dropout_vjp(X, grad_H, self.rate, seed, step), [])

    def spec(self) -> Dict[str, Any]:
        """JSON-able description (used by save/load): the rate, the layer's own seed
        (None: the fit's) and the step count.

        Examples
        --------
        >>> import numpy as np
        >>> drop = Dropout(0.25, random_state=3)
        >>> _ = drop.forward_train(np.ones((2, 2)))      # one training batch
        >>> drop.spec()
        {'type': 'Dropout', 'rate': 0.25, 'seed': 3, 'step': 1}
        """
        return {"type": "Dropout", "rate": self.rate, "seed": self.seed,
                "step": self.step}

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"
