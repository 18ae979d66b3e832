"""The registry: every nnlib kernel name mapped to its mathematics, stated from first
principles in SymPy.

Design note
-----------
Names mirror ``nnlib.functional`` one for one (``sigmoid`` here is ``nnlib.functional.sigmoid``
and ``sigmoid_vjp``). Each entry holds

* the **definition** from first principles (the notes' formula: sigma = 1/(1+e^-z), tanh as
  a quotient of exponentials, relu = max(z, 0) as a Piecewise with the value at the kink
  stated, softmax as exp over a sum of exp, sparsemax as a Euclidean projection, ...);
* the **closed form the kernel implements** (sigma' = sigma(1 - sigma), tanh' = 1 - tanh^2,
  dCE/dz = softmax - e_y, ...), transcribed from the kernel source, so the proof is about
  the code and not about a textbook;
* the **conventions at kinks** (relu'(0) = 0, ...) that proofs check as subgradient
  membership rather than by differencing;
* the **tolerance** the evidence uses and why.

Nothing here imports nnlib: the checks look the kernels up by name at run time, so an entry
whose kernel has not been written yet still gets its definition and proof.
"""
from dataclasses import dataclass, field

import sympy as sp

z = sp.Symbol("z", real=True)          # the pre-activation
y = sp.Symbol("y", real=True)          # an activation's output, y = act(z)
slope = sp.Symbol("a", positive=True)   # leaky_relu's slope (a > 0 assumed by act_grad_y)
alpha = sp.Symbol("alpha", positive=True)

oo = sp.oo


@dataclass
class Tolerance:
    """Pass if the error is at most ``ulps`` units in the last place of the exact value, or
    (when ``abs_eps`` is set) at most ``abs_eps * eps(dtype) * scale`` in absolute value,
    where ``scale`` is |grad_out| for a vjp. ``why`` says why an absolute bound is needed."""
    ulps: float
    abs_eps: float = None
    why: str = ""

    def as_dict(self):
        return {"ulps": self.ulps, "abs_eps": self.abs_eps, "why": self.why}


# float64 kernels go through libm (exp, tanh, log1p: < 1 ulp each) and a few roundings;
# float32 kernels compute in double and round once at the end (<= 0.5 ulp + tiny).
FWD_TOL = {"float64": Tolerance(4), "float32": Tolerance(1)}
VJP_TOL = {"float64": Tolerance(4), "float32": Tolerance(1)}
_FROM_OUTPUT = ("the derivative is evaluated from the rounded output ({}); where the "
                "output approaches {} the factor {} carries the output's absolute rounding "
                "error (<= eps/2), so only an absolute bound holds there")


@dataclass
class Activation:
    """An elementwise activation: pieces on open intervals of z, values at the kinks."""
    name: str
    latex: str                       # definition in LaTeX (as the notes write it)
    pieces: list                     # [(lo, hi, expr in z)] on the open interval (lo, hi)
    kink_values: dict = field(default_factory=dict)   # {kink: act(kink)}
    grad_convention: dict = field(default_factory=dict)  # {kink: act'(kink) the kernel uses}
    closed_grad_x: sp.Expr = None    # act'(z) as the kernel computes it (act_grad_x)
    closed_grad_y: sp.Expr = None    # act'(z) written in y = act(z) (act_grad_y)
    closed_forward: sp.Expr = None   # the formula the kernel evaluates, if not the definition
    closed_tex: str = ""             # how the kernel's source writes act'(z), for the report
    params: dict = field(default_factory=dict)  # {symbol: (nnlib keyword, evidence value)}
    convention_note: str = ""
    differentiable_at_kinks: bool = True   # False for sign (a jump)
    # the vjp is the zero map: +0 for every x and grad_out (NaN and inf too), as PyTorch's
    # zeros_like(grad) -- sign, whose derivative is the constant 0 where it exists
    vjp_zero_map: bool = False
    # the sign of a zero output at a kink at 0: "input" (f(-0) = -0: p * x, expm1(-0),
    # x * 0 keep it) or "positive" (relu returns +0, as scalar.pxd documents)
    zero_sign: str = "input"
    fwd_tol: dict = field(default_factory=lambda: dict(FWD_TOL))
    vjp_tol: dict = field(default_factory=lambda: dict(VJP_TOL))
    kind: str = "activation"

    @property
    def definition(self):
        """The definition as one SymPy Piecewise (or a plain expression if smooth)."""
        if len(self.pieces) == 1 and not self.kink_values:
            return self.pieces[0][2]
        args = []
        for k, v in sorted(self.kink_values.items()):
            args.append((v, sp.Eq(z, k)))
        for lo, hi, e in self.pieces:
            cond = sp.And(z > lo, z < hi) if lo != -oo and hi != oo else (
                z > lo if hi == oo else z < hi)
            args.append((e, cond))
        return sp.Piecewise(*args)

    @property
    def kinks(self):
        return sorted(self.kink_values)

    @property
    def evidence_params(self):
        return {s: v for s, (_, v) in self.params.items()}

    @property
    def nnlib_kwargs(self):
        return {kw: v for _, (kw, v) in self.params.items()}


_sig = 1 / (1 + sp.exp(-z))
_tanh_def = (sp.exp(z) - sp.exp(-z)) / (sp.exp(z) + sp.exp(-z))
_abs_vjp = {"float64": None, "float32": None}

ACTIVATIONS = [
    Activation(
        "identity", r"z", [(-oo, oo, z)],
        closed_grad_x=sp.Integer(1), closed_grad_y=sp.Integer(1)),
    Activation(
        "sigmoid", r"\sigma(z) = \frac{1}{1 + e^{-z}}", [(-oo, oo, _sig)],
        closed_grad_x=_sig * (1 - _sig), closed_grad_y=y * (1 - y),
        closed_tex=r"\sigma'(z) = \sigma(z)\,(1 - \sigma(z)) = y(1-y)",
        vjp_tol={"float64": Tolerance(4, 4, _FROM_OUTPUT.format("s = sigma(z)", "1", "1 - s")),
                 "float32": Tolerance(1, 1, _FROM_OUTPUT.format("s = sigma(z)", "1", "1 - s"))}),
    Activation(
        "tanh", r"\tanh z = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}", [(-oo, oo, _tanh_def)],
        closed_forward=sp.tanh(z),
        closed_grad_x=1 - sp.tanh(z) ** 2, closed_grad_y=1 - y ** 2,
        closed_tex=r"\tanh'(z) = 1 - \tanh^2 z = 1 - y^2",
        vjp_tol={"float64": Tolerance(4, 4, _FROM_OUTPUT.format("t = tanh z", "+-1", "1 - t^2")),
                 "float32": Tolerance(1, 1, _FROM_OUTPUT.format("t = tanh z", "+-1", "1 - t^2"))}),
    Activation(
        "relu", r"\operatorname{relu}(z) = \max(z, 0)", [(-oo, 0, sp.Integer(0)), (0, oo, z)],
        kink_values={0: sp.Integer(0)}, grad_convention={0: sp.Integer(0)},
        zero_sign="positive",
        closed_grad_x=sp.Piecewise((1, z > 0), (0, True)),
        closed_grad_y=sp.Piecewise((1, y > 0), (0, True)),
        convention_note=r"relu'(0) = 0 (PyTorch's choice; the notes' table writes 1 for "
                        r"$z \ge 0$): both lie in the subdifferential $[0, 1]$"),
    Activation(
        "leaky_relu", r"\operatorname{leaky}_a(z) = \max(z, a z),\ a > 0",
        [(-oo, 0, slope * z), (0, oo, z)],
        kink_values={0: sp.Integer(0)}, grad_convention={0: slope},
        closed_grad_x=sp.Piecewise((1, z > 0), (slope, True)),
        closed_grad_y=sp.Piecewise((1, y > 0), (slope, True)),
        params={slope: ("slope", 0.2)},
        convention_note=r"leaky'(0) = a, in the Clarke subdifferential $[\min(a,1), \max(a,1)]$"),
    Activation(
        "softplus", r"\operatorname{softplus}(z) = \log(1 + e^{z})",
        [(-oo, oo, sp.log(1 + sp.exp(z)))],
        closed_grad_x=_sig, closed_grad_y=1 - sp.exp(-y),
        closed_tex=r"\operatorname{softplus}'(z) = \sigma(z) = -\operatorname{expm1}(-y)"),
    Activation(
        "elu", r"\operatorname{elu}_\alpha(z) = z \ (z > 0),\ \alpha (e^{z} - 1)\ (z \le 0)",
        [(-oo, 0, alpha * (sp.exp(z) - 1)), (0, oo, z)],
        kink_values={0: sp.Integer(0)}, grad_convention={0: alpha},
        closed_grad_x=sp.Piecewise((1, z > 0), (alpha * sp.exp(z), True)),
        closed_grad_y=sp.Piecewise((1, y > 0), (y + alpha, True)),
        params={alpha: ("alpha", 0.7)},
        convention_note=r"elu'(0) = \alpha (the left derivative), in the Clarke "
                        r"subdifferential $[\min(\alpha,1), \max(\alpha,1)]$"),
    Activation(
        "sign", r"\operatorname{sign}(z) \in \{-1, 0, 1\}",
        [(-oo, 0, sp.Integer(-1)), (0, oo, sp.Integer(1))],
        kink_values={0: sp.Integer(0)}, grad_convention={0: sp.Integer(0)},
        closed_grad_x=sp.Integer(0), closed_grad_y=sp.Integer(0),
        differentiable_at_kinks=False, vjp_zero_map=True,
        convention_note=r"sign jumps at 0: no derivative or subgradient exists there (the "
                        r"notes: N/A); the kernel returns 0, so sign units do not learn by "
                        r"backprop; its vjp is the zero map (+0 for any grad_out, NaN and "
                        r"inf included), as PyTorch's and JAX's"),
]

ACTIVATION_BY_NAME = {a.name: a for a in ACTIVATIONS}


# ------------------------------------------------------------------ conventions, stated
# What each kernel returns where the mathematics leaves a choice: the element of the
# subdifferential at a kink, the rule that breaks a tie, the sign of a zero. verify/
# conventions.py checks that the compiled value EQUALS the stated choice, bit for bit in
# each dtype; the proofs (verify.proofs, verify.losses, verify.output_maps) show that each
# choice is a subgradient (or, for sparsemax, an element of the generalized Jacobian).

@dataclass
class Convention:
    """One stated choice: ``kernel`` called on ``inputs`` (a dict of call arguments built
    for a dtype by ``make(dtype)``) must return exactly ``expected(dtype)`` (arrays compared
    bit for bit after the kernel's own rounding to the dtype)."""
    kernel: str
    statement: str
    make: object          # dtype -> (args tuple, kwargs dict)
    expected: object      # dtype -> array or float, exact in the dtype
    proof: str = ""       # where the choice is shown to be a subgradient


def _np():
    import numpy
    return numpy


def _hinge(z, y, margin, want):
    """A hinge convention on rows z (labels y): the gradient of the MEAN is want / n."""
    def make(dt):
        np = _np()
        return (np.array(z, dtype=dt), np.array(y)), {"margin": margin}

    def expected(dt):
        np = _np()
        n = len(y)
        return (np.array(want, dtype=np.float64) * (1.0 / n)).astype(dt)
    return make, expected


def _sparsemax_vjp(z, g, want):
    def make(dt):
        np = _np()
        return (np.array([z], dtype=dt), np.array([g], dtype=dt)), {}

    def expected(dt):
        return _np().array([want], dtype=dt)
    return make, expected


def _sparsemax_equal(c, v):
    def make(dt):
        np = _np()
        with np.errstate(over="ignore"):
            return (np.full((1, c), v).astype(dt),), {}

    def expected(dt):
        np = _np()
        return np.full((1, c), 1.0 / c).astype(dt)
    return make, expected


_HINGE_PROOF = "hinge_loss proof: the kernel's rule lies in conv{0, e_j - e_y : active}"
_SPMX_PROOF = "sparsemax proof: J_S with S = {j : p_j > 0} lies in the Clarke Jacobian"

CONVENTIONS = [
    Convention("hinge_loss_grad", "h = 0 (on the kink): the subgradient is e_{j*} - e_y, "
               "not 0", *_hinge([[1.0, 0.0, 0.0]], [0], 1.0, [[-1.0, 1.0, 0.0]]), _HINGE_PROOF),
    Convention("hinge_loss_grad", "margin 0, the true class tied with another (h = 0): "
               "e_{j*} - e_y, so the perceptron learns from a tie",
               *_hinge([[1.0, 1.0]], [0], 0.0, [[-1.0, 1.0]]), _HINGE_PROOF),
    Convention("hinge_loss_grad", "competitors tied at the maximum: j* is the FIRST index "
               "attaining it", *_hinge([[0.0, 3.0, 3.0, 1.0]], [0], 1.0,
                                       [[-1.0, 1.0, 0.0, 0.0]]), _HINGE_PROOF),
    Convention("hinge_loss_grad", "tie around the label: j* is the first index j != y "
               "attaining the maximum", *_hinge([[3.0, 0.0, 3.0]], [1], 1.0,
                                                [[1.0, -1.0, 0.0]]), _HINGE_PROOF),
    Convention("hinge_loss_grad", "tie after the label: the first index past y",
               *_hinge([[0.0, 2.0, 2.0]], [0], 0.5, [[-1.0, 1.0, 0.0]]), _HINGE_PROOF),
    Convention("hinge_loss_grad", "h < 0: the gradient is 0",
               *_hinge([[5.0, 0.0, 0.0]], [0], 1.0, [[0.0, 0.0, 0.0]]), _HINGE_PROOF),
    Convention("hinge_loss", "h = 0: the loss is exactly 0",
               lambda dt: ((_np().array([[1.0, 0.0, 0.0]], dtype=dt), _np().array([0])),
                           {"margin": 1.0}),
               lambda dt: 0.0, _HINGE_PROOF),
    Convention("sparsemax_vjp", "z_j = tau (a support boundary): j is outside the support "
               "S = {j : p_j > 0}, the smallest region meeting there",
               *_sparsemax_vjp([0.75, 0.25, 0.0], [1.0, 0.5, 2.0], [0.25, -0.25, 0.0]),
               _SPMX_PROOF),
    Convention("sparsemax_vjp", "a vertex of the simplex (z = e_0, four regions meet): "
               "S = {0}, so the vjp is 0", *_sparsemax_vjp([1.0, 0.0, 0.0], [1.0, 0.5, 2.0],
                                                           [0.0, 0.0, 0.0]), _SPMX_PROOF),
    Convention("sparsemax_vjp", "ties inside the support: every tied entry is in it",
               *_sparsemax_vjp([2.0, 2.0, 0.0, -1.0], [1.0, -1.0, 4.0, 8.0],
                               [1.0, -1.0, 0.0, 0.0]), _SPMX_PROOF),
] + [
    Convention("sparsemax", f"an all-equal row of {c} values {v:g} ({how}) maps to exactly "
               f"1/{c} (the cumulative sums run on z - max z)", *_sparsemax_equal(c, v),
               "sparsemax proof: the projection of a multiple of 1 is 1/c")
    for c, how in ((3, "insertion sort"), (25, "heap sort"), (257, "two VEC_BLOCKs"))
    for v in (0.0, 1e4, -3e38)
]
