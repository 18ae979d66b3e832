"""PNG plots for the report (imported only when matplotlib is installed): for each
activation, the function and its derivative (compiled vs symbolic) and the compiled error in
ULPs across the domain, float64 and float32."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mpmath  # noqa: E402
import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402

from verify import kernels as K  # noqa: E402
from verify.evidence import exact, measure  # noqa: E402
from verify.registry import ACTIVATION_BY_NAME, z  # noqa: E402

__all__ = ["make_plots"]


def _activation_plot(act, path, n):
    fwd, vjp = K.kernel(act.name), K.kernel(act.name + "_vjp")
    kw = act.nnlib_kwargs
    pw = act.definition.subs(act.evidence_params)
    d = sp.diff(pw, z)
    fe, de = sp.lambdify(z, pw, "mpmath"), sp.lambdify(z, d, "mpmath")
    xs = np.linspace(-6, 6, n)
    xs = xs[np.abs(xs) > 1e-9]                    # the kink itself is checked, not plotted
    ex_f = np.array([float(exact(fe, mpmath.mpf(x))) for x in xs])
    ex_d = np.array([float(exact(de, mpmath.mpf(x))) for x in xs])
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(xs, ex_f, "k-", lw=2, label="SymPy definition")
    ax[0].plot(xs[::8], fwd(xs[::8], **kw), "o", ms=3, label="nnlib (float64)")
    ax[0].set_title(f"{act.name}(z)")
    ax[1].plot(xs, ex_d, "k-", lw=2, label="SymPy derivative")
    ax[1].plot(xs[::8], vjp(xs[::8], np.ones_like(xs[::8]), **kw), "o", ms=3,
               label="nnlib vjp (grad_out = 1)")
    ax[1].set_title(f"{act.name}'(z)")
    wide = np.concatenate([-np.logspace(2.5, -3, n // 2), np.logspace(-3, 2.5, n // 2)])
    for dt, style in ((np.float64, "-"), (np.float32, "--")):
        xd = wide.astype(dt)
        cf, cd = fwd(xd, **kw), vjp(xd, np.ones_like(xd), **kw)
        uf = [measure(cf[i], exact(fe, mpmath.mpf(float(x))), dt).ulps for i, x in enumerate(xd)]
        ud = [measure(cd[i], exact(de, mpmath.mpf(float(x))), dt).ulps for i, x in enumerate(xd)]
        ax[2].plot(xd, np.maximum(uf, 1e-3), style, lw=1, label=f"forward {np.dtype(dt).name}")
        ax[2].plot(xd, np.maximum(ud, 1e-3), style, lw=1, label=f"vjp {np.dtype(dt).name}")
    ax[2].set_xscale("symlog", linthresh=1e-3)
    ax[2].set_xticks([-100, -1, -0.01, 0, 0.01, 1, 100])
    ax[2].set_yscale("log")
    ax[2].set_title("error (ulp of the exact value; floor 1e-3)")
    for a in ax:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def make_plots(data, out):
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    n = 121 if data["quick"] else 241
    for it in data["items"]:
        if it.get("kind") == "activation" and it.get("available"):
            rel = os.path.join("plots", f"{it['name']}.png")
            _activation_plot(ACTIVATION_BY_NAME[it["name"]], os.path.join(out, rel), n)
            it["plot"] = rel
