"""Activations (``nnlib.functional`` from ``nnlib/_kernels/activations.pyx``): each
registry entry's closed-form derivative proved (``verify.proofs``), the compiled forward and
vjp measured in ULPs (``verify.api.check_elementwise``), and where nnlib takes the derivative
from the output, its accuracy swept over |z| (``verify.accuracy``), and the vjp given the output measured
against the closed form in y (``verify.accuracy.output_vjp_evidence``)."""
import time

import sympy as sp

from verify import kernels as K
from verify.accuracy import FROM_OUTPUT, output_form_sweep, output_vjp_evidence
from verify.api import check_elementwise
from verify.proofs import prove_activation
from verify.registry import ACTIVATIONS

__all__ = ["run_activations", "accuracy_note"]


def accuracy_note(acc):
    """What the derivative-accuracy rows mean, stated from the measured data: which of
    nnlib's paths keep relative accuracy on the whole sweep and which only an absolute one
    beyond some |z| (the derivative taken from the rounded output)."""
    rel = sorted({s["path"] for s in acc["series"] if s["z_star"] is None})
    absl = {}
    for s in acc["series"]:
        if s["z_star"] is not None:
            absl.setdefault(s["path"], []).append(f"{s['dtype']} from |z| = {s['z_star']:.3g}")
    text = []
    if absl:
        text.append("Where the derivative is computed from the rounded output (s(1 - s), "
                    "1 - t^2), the factor 1 - s carries the output's absolute rounding error "
                    "as the output nears its asymptote, so only an absolute accuracy of about "
                    "eps holds there (relative error up to 100 %, ~1e16 ulp, where the true "
                    "derivative is far below eps). Measured: " + "; ".join(
                        f"{p}: {', '.join(v)}" for p, v in absl.items()) + ".")
    if rel:
        text.append("Relative accuracy on the whole sweep: " + ", ".join(rel) + ".")
    text.append("Measured on a log-spaced sweep of |z| for each path nnlib has (the "
                "functional vjp, and dense_backward from the layer's output H); the check "
                "fails only if neither bound holds.")
    return " ".join(text)


def _evidence_status(name, result, required):
    """A kernel with no compiled evidence fails: proved but not measured is not a pass."""
    if result is None:
        return ("FAIL (exported but not callable)" if required
                else "FAIL (not available in nnlib: proof only, no evidence)"), False
    return ("pass" if result.passed else "FAIL"), result.passed


def run_activations(ctx):
    out = []
    exported = K.exported()
    for act in ACTIVATIONS:
        if not ctx.wanted(act.name):
            continue
        t0 = time.perf_counter()
        proof = prove_activation(act)
        fwd, vjp = K.kernel(act.name), K.kernel(act.name + "_vjp")
        required = act.name in exported
        result = None
        if fwd is not None and vjp is not None:
            kw = act.nnlib_kwargs
            result = check_elementwise(
                act.definition, sp.Symbol("z", real=True),
                lambda x, f=fwd: f(x, **kw), lambda x, g, f=vjp: f(x, g, **kw),
                params=act.evidence_params, dtypes=ctx.dtypes, tol=act.fwd_tol,
                vjp_tol=act.vjp_tol, n_random=40 if ctx.quick else 200, seed=ctx.seed,
                name=act.name)
        ev_verdict, ev_ok = _evidence_status(act.name, result, required)
        accuracy = None
        if result is not None and act.name in FROM_OUTPUT:
            accuracy = output_form_sweep(act, ctx.dtypes, ctx.quick)
            ev_ok = ev_ok and accuracy["passed"]
        from_y = None
        if result is not None and act.closed_grad_y is not None:
            from_y = output_vjp_evidence(act, ctx.dtypes, ctx.quick, ctx.seed)
            ev_ok = ev_ok and from_y["passed"]
        passed = proof.passed and ev_ok
        out.append({
            "name": act.name, "section": "kernels", "kind": "activation",
            "definition": act.latex, "definition_sympy": sp.srepr(act.definition),
            "derived": proof.derived, "closed": proof.closed,
            "convention": act.convention_note,
            "params": {str(s): v for s, v in act.evidence_params.items()},
            "proof": proof.as_dict(),
            "evidence": result.as_dict() if result is not None else None,
            "available": result is not None, "required": required,
            "passed": passed,
            "verdict": ("pass" if passed else "FAIL") if result is not None else ev_verdict,
            "seconds": round(time.perf_counter() - t0, 3),
            "extra_rows": (accuracy["rows"] if accuracy else []) + (
                from_y["rows"] if from_y else []),
            "output_vjp": {k: v for k, v in from_y.items() if k != "rows"} if from_y else None,
            "notes": [accuracy_note(accuracy)] if accuracy else [],
            "_result": result, "_accuracy": accuracy})
    return out
