"""Proofs: the closed form each kernel implements equals the derivative SymPy derives from
the definition.

Design note
-----------
A proof is a list of steps, each a claim (in LaTeX), a status and the method that settled
it (see ``verify._exact``). Status values:

* ``proved``     an exact argument (an identity reduced to 0 by a canonical form, a
                 substitution, a one-sided limit, a certificate);
* ``convention`` a choice the kernel makes where the mathematics leaves one open (the
                 derivative of relu at 0, the derivative of sign at its jump), stated
                 together with the set it was checked to lie in;
* ``failed``     the claim is false (a counterexample value is given);
* ``undecided``  no exact argument was found (never reported as proved).

Kinks are handled piece by piece: on each open interval (lo, hi) the variable is written
as ``lo + t`` or ``hi - t`` with ``t > 0``, so every Piecewise condition decides itself and
the identity on that piece is an ordinary one. At a kink, the one-sided derivatives are
computed as limits, and the kernel's value there is checked to lie between them (the Clarke
subdifferential of a continuous piecewise-smooth function of one variable) — the derivative
of SymPy's Piecewise or Heaviside at the kink itself is never used (Heaviside(0) = 1/2 and
the derivative of a 3-way Max at a tie evaluated to 3/2, not subgradients).
"""
from dataclasses import dataclass, field

import sympy as sp

from verify._exact import prove_zero
from verify.registry import y, z

__all__ = ["Step", "Proof", "prove_activation"]


@dataclass
class Step:
    claim: str
    status: str
    method: str = ""

    def as_dict(self):
        return {"claim": self.claim, "status": self.status, "method": self.method}


@dataclass
class Proof:
    name: str
    steps: list = field(default_factory=list)
    derived: str = ""        # LaTeX of the derived derivative (gradient, Jacobian, ...)
    closed: str = ""         # LaTeX of the closed form the kernel implements

    @property
    def status(self):
        st = {s.status for s in self.steps}
        if "failed" in st:
            return "failed"
        if "undecided" in st:
            return "undecided"
        return "proved" if self.steps else "undecided"

    @property
    def passed(self):
        return self.status == "proved"

    def add(self, claim, ok, method, status=None):
        self.steps.append(Step(claim, status or ("proved" if ok else "undecided"), method))

    def identity(self, claim, lhs, rhs):
        """Add the step ``lhs == rhs`` (identically): proved by ``prove_zero``, or refuted by
        a rational point where the two sides differ (then the step is "failed" and the point
        is named), or left "undecided"."""
        diff = sp.sympify(lhs) - sp.sympify(rhs)
        ok, how = prove_zero(diff)
        if ok:
            self.add(claim, True, how)
            return True
        witness = find_counterexample(diff)
        if witness is not None:
            self.add(claim, False, f"false: the sides differ by {witness[1]} at "
                                   f"{witness[0]}", "failed")
        else:
            self.add(claim, False, how)
        return False

    def as_dict(self):
        return {"name": self.name, "status": self.status, "derived": self.derived,
                "closed": self.closed, "steps": [s.as_dict() for s in self.steps]}


def find_counterexample(diff, tries=12, seed=1):
    """A point (rational values for the free symbols, respecting positive=True) where
    ``diff`` is clearly nonzero (|diff| > 1e-20 at 60 digits), or None."""
    import random
    rng = random.Random(seed)
    syms = sorted(diff.free_symbols, key=str)
    for _ in range(tries):
        subs = {}
        for s in syms:
            v = sp.Rational(rng.randint(-40, 40), rng.randint(7, 13))
            subs[s] = abs(v) + sp.Rational(1, 7) if s.is_positive else v
        try:
            val = sp.N(diff.subs(subs), 60)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if val.is_number and val.is_finite and abs(val) > 1e-20:
            return {str(k): str(v) for k, v in subs.items()}, sp.N(val, 6)
    return None


def _piece_point(lo, hi, t):
    """A point of the open interval (lo, hi) written with a positive symbol t."""
    if lo == -sp.oo and hi == sp.oo:
        return z
    if hi == sp.oo:
        return lo + t
    if lo == -sp.oo:
        return hi - t
    return lo + (hi - lo) / (1 + t)


def _interval_tex(lo, hi):
    return {(-sp.oo, sp.oo): r"z \in \mathbb{R}"}.get(
        (lo, hi), f"{sp.latex(lo)} < z < {sp.latex(hi)}")


def _branch_by_sign(expr, sign):
    """Resolve a Piecewise in y using only the sign of y (a proved lemma)."""
    d = sp.Dummy("y", positive=True) if sign > 0 else sp.Dummy("y", negative=True)
    return expr.subs(y, d).subs(d, y)


def prove_activation(act):
    """Prove the closed forms of an elementwise activation (see the module note)."""
    pr = Proof(act.name)
    t = sp.Dummy("t", positive=True)
    derived_pieces = []
    monotone = all(sp.diff(e, z).subs(z, _piece_point(lo, hi, t)).is_positive is True
                   for lo, hi, e in act.pieces)
    for lo, hi, e in act.pieces:
        zz = _piece_point(lo, hi, t)
        where = _interval_tex(lo, hi)
        d = sp.diff(e, z)
        derived_pieces.append((sp.simplify(d), where))
        if act.closed_forward is not None:
            pr.identity(f"{where}: \\text{{definition}} = {sp.latex(act.closed_forward)}",
                        e.subs(z, zz), act.closed_forward.subs(z, zz))
        pr.identity(f"{where}: \\frac{{d}}{{dz}}\\left({sp.latex(e)}\\right) = "
                    f"{sp.latex(act.closed_grad_x)}",
                    d.subs(z, zz), act.closed_grad_x.subs(z, zz))
        if act.closed_grad_y is not None:
            gy = act.closed_grad_y.subs(y, e.subs(z, zz))
            method_extra = ""
            if gy.has(sp.Piecewise) and monotone and act.kinks == [0] and \
                    all(act.kink_values[k] == 0 for k in act.kinks):
                # Lemma (proved below): act is increasing with act(0) = 0, so sign y = sign z.
                sgn = 1 if lo >= 0 else -1
                gy = _branch_by_sign(act.closed_grad_y, sgn).subs(y, e.subs(z, zz))
                method_extra = r" \quad \text{(branch by the lemma: sign y = sign z)}"
            pr.identity(f"{where}: {sp.latex(act.closed_grad_y)}\\big|_{{y = {sp.latex(e)}}} = "
                        f"\\frac{{d}}{{dz}}\\left({sp.latex(e)}\\right)" + method_extra,
                        gy, d.subs(z, zz))
    if monotone and act.kinks:
        pr.add(r"\text{lemma: } \operatorname{act}' > 0 \text{ on every piece and } "
               r"\operatorname{act}(0) = 0 \Rightarrow \operatorname{sign} y = "
               r"\operatorname{sign} z", True, "is_positive on each piece + continuity")
    for k in act.kinks:
        left = [p for p in act.pieces if p[1] == k][0]
        right = [p for p in act.pieces if p[0] == k][0]
        lv = sp.limit(left[2].subs(z, k - t), t, 0, "+")
        rv = sp.limit(right[2].subs(z, k + t), t, 0, "+")
        kv = act.kink_values[k]
        conv = act.grad_convention.get(k)
        if act.differentiable_at_kinks:
            ok = (sp.simplify(lv - kv) == 0) and (sp.simplify(rv - kv) == 0)
            pr.add(f"\\text{{continuous at }} z = {sp.latex(k)}: "
                   f"\\lim_{{z\\to {k}^-}} = {sp.latex(lv)} = \\lim_{{z \\to {k}^+}} = "
                   f"{sp.latex(rv)} = \\operatorname{{act}}({k})", ok, "one-sided limits",
                   None if ok else "failed")
            dl = sp.limit(sp.diff(left[2], z).subs(z, k - t), t, 0, "+")
            dr = sp.limit(sp.diff(right[2], z).subs(z, k + t), t, 0, "+")
            lo_, hi_ = sp.Min(dl, dr), sp.Max(dl, dr)
            inside = sp.And(conv >= lo_, conv <= hi_)
            # a convention equal to a one-sided derivative is in their hull: decided
            # first, as simplifying the inequalities with symbolic parameters (a, alpha
            # > 0: Min / Max) costs far more for the same verdict
            ok = inside is sp.true or sp.simplify(conv - dl) == 0 or \
                sp.simplify(conv - dr) == 0 or bool(sp.simplify(inside)) is True
            pr.add(f"z = {k}: \\text{{kernel uses }} {sp.latex(conv)} \\in "
                   f"\\operatorname{{conv}}\\{{{sp.latex(dl)}, {sp.latex(dr)}\\}} "
                   f"\\text{{ (one-sided derivatives)}}", ok,
                   "subgradient membership (Clarke)", "convention" if ok else "failed")
        else:
            pr.add(f"\\text{{jump at }} z = {k}: \\lim^- = {sp.latex(lv)} \\ne "
                   f"\\lim^+ = {sp.latex(rv)}; \\text{{ no derivative; kernel uses }} "
                   f"{sp.latex(conv)}", sp.simplify(lv - rv) != 0, "one-sided limits",
                   "convention")
        gx = act.closed_grad_x.subs(z, k)
        pr.add(f"\\text{{closed form at }} z = {k}: {sp.latex(gx)} = {sp.latex(conv)}",
               sp.simplify(gx - conv) == 0, "substitution",
               None if sp.simplify(gx - conv) == 0 else "failed")
        if act.closed_grad_y is not None:
            gy = act.closed_grad_y.subs(y, kv)
            pr.add(f"\\text{{output form at }} y = {sp.latex(kv)}: {sp.latex(gy)} = "
                   f"{sp.latex(conv)}", sp.simplify(gy - conv) == 0, "substitution",
                   None if sp.simplify(gy - conv) == 0 else "failed")
    if len(derived_pieces) == 1:
        pr.derived = sp.latex(derived_pieces[0][0])
    else:
        pr.derived = r"\begin{cases}" + r" \\ ".join(
            f"{sp.latex(d)} & {w}" for d, w in derived_pieces) + r"\end{cases}"
    pr.closed = act.closed_tex or sp.latex(act.closed_grad_x) + (
        f" \\;=\\; {sp.latex(act.closed_grad_y)}\\big|_{{y=\\operatorname{{act}}(z)}}"
        if act.closed_grad_y is not None else "")
    return pr
