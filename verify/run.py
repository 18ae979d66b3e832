"""Run every check and collect the results into one JSON-able dict (the report's data).

Sections, as listed in ``SECTIONS``, come from one verify module per nnlib module:
``kernels`` (verify.activations, verify.output_maps, verify.losses, verify.dense:
definition, proof, evidence), ``optimizers`` (verify.optim), ``backprop``, ``train``
(verify.train: the compiled epoch), ``convexity``, ``notes``. A section that fails to
import, or raises, is a FAIL item. Each item is a dict with at least ``name``,
``section``, ``passed`` (True / False) and ``verdict`` (a short word for the summary).
``only`` keeps the items whose name is listed.

Nothing passes by absence: a kernel, class or section verify cannot reach is a failure. The
one exception is a part that needs an optional dependency (``kernels.OPTIONAL``, e.g. the
plots need matplotlib): it is listed in ``data["skipped"]`` as "skipped (needs X)" (an item
may also carry ``"skipped": X``) and ``strict`` turns each skip into a failing item.

The seed (``--seed``) is recorded in the data and in every failing item (``"seed"``, printed
after its verdict in the summary and report.md), so a failure can be replayed. One seed is used per run (the full run draws more random
points than --quick, not more seeds); to try others, run again with ``--seed N``.
"""
import time

from verify import kernels as K
from verify.kernels import skip_verdict
from verify.registry import ACTIVATIONS

__all__ = ["run_all", "SECTIONS", "load_sections"]


class Context:
    def __init__(self, quick=False, dtypes=("float64", "float32"), only=None, seed=0,
                 strict=False):
        self.quick, self.dtypes, self.only, self.seed = quick, list(dtypes), only, seed
        self.strict = strict

    def wanted(self, name):
        return not self.only or name in self.only


def coverage(ctx):
    """Every kernel nnlib.functional exports and every optimizer class nnlib.optim defines
    has an entry here; a new kernel without one is a failure, not a silent gap."""
    if ctx.only and not ctx.wanted("coverage"):
        return []
    from verify.dropout import DROPOUT_NAMES
    from verify.losses import LOSS_NAMES
    from verify.output_maps import MAP_NAMES
    from verify.optim import CONFIGS
    covered = set()
    for name in [a.name for a in ACTIVATIONS] + MAP_NAMES + DROPOUT_NAMES:
        covered |= {name, name + "_vjp"}
    for name in LOSS_NAMES:
        covered |= {name, name + "_grad"}
    covered |= {"dense_forward", "dense_backward", "loss_and_grad"}
    missing = sorted(K.exported() - covered)
    optim = K.nnlib_attr("optim")
    base = getattr(optim, "Optimizer", None)
    classes = {n for n in dir(optim) if isinstance(getattr(optim, n), type) and base and
               issubclass(getattr(optim, n), base) and getattr(optim, n) is not base} \
        if optim is not None else set()
    missing_opt = sorted(classes - {c for c, _ in CONFIGS})
    ok = not missing and not missing_opt
    return [{"name": "coverage", "section": "kernels", "passed": ok,
             "verdict": "every exported kernel and optimizer is verified" if ok else
             "FAIL: no verify entry for " + ", ".join(missing + missing_opt),
             "rows": [("nnlib.functional.__all__", f"{len(K.exported())} names, "
                                                   f"{len(K.exported() & covered)} covered"),
                      ("nnlib.optim optimizer classes", ", ".join(sorted(classes)) or "none")]}]


# (report section, module, function), in report order. Every module is imported by
# load_sections: one that fails to import (or lacks its function) is a reported failure,
# never a silently missing section.
SECTIONS = [
    ("kernels", "verify.activations", "run_activations"),
    ("kernels", "verify.run", "coverage"),
    ("kernels", "verify.output_maps", "run_maps"),
    ("kernels", "verify.losses", "run_losses"),
    ("kernels", "verify.dense", "run_layer"),
    ("kernels", "verify.dropout", "run_dropout"),
    ("optimizers", "verify.optim", "run_optimizers"),
    ("backprop", "verify.backprop", "run_backprop"),
    ("train", "verify.train", "run_train"),
    ("convexity", "verify.convexity", "run_convexity"),
    ("notes", "verify.notes_examples", "run_notes"),
]


def load_sections(sections=None):
    """Import each section's module; returns, in order, (section, function) for those that
    load and a FAIL item (with the traceback) for each that does not."""
    import importlib
    out = []
    for section, mod, fn in SECTIONS if sections is None else sections:
        try:
            out.append((section, getattr(importlib.import_module(mod), fn)))
        except Exception as exc:          # ImportError, AttributeError, or the module raised
            out.append(_crash(f"{mod}.{fn}", section, exc, "FAIL (section did not import)"))
    return out


def run_all(quick=False, dtypes=("float64", "float32"), only=None, seed=0, plots_to=None,
            strict=False):
    """Run every section; returns {"items": [...], "seconds": ..., "passed": ...,
    "seed": ..., "skipped": [...]}. ``strict``: every skip is a failure.

    The backprop networks (the slow part) start first on worker processes; the other
    sections run meanwhile, and so do the plots when ``plots_to`` (the report directory)
    is given — they need no backprop data."""
    ctx = Context(quick, dtypes, only, seed, strict)
    t0 = time.perf_counter()
    items, timings = [], {}
    loaded = load_sections()
    funcs = [x for x in loaded if isinstance(x, tuple)]
    pending = {}
    for section, fn in funcs:
        if fn.__name__ == "run_backprop":
            t1 = time.perf_counter()
            try:
                from verify.backprop import start_backprop
                pending[fn.__name__] = (section, start_backprop(ctx), t1)
            except Exception as exc:
                pending[fn.__name__] = (section, exc, t1)
    for entry in loaded:
        if isinstance(entry, dict):           # a section that did not import
            items.append(entry)
            continue
        section, fn = entry
        if fn.__name__ in pending:
            items.append(fn.__name__)         # a placeholder: keeps the section order
            continue
        t1 = time.perf_counter()
        try:
            items.extend(fn(ctx))
        except Exception as exc:          # a crash in one check is a reported failure
            items.append(_crash(fn.__name__, section, exc))
        timings[fn.__name__] = round(time.perf_counter() - t1, 3)
    data = {"quick": quick, "dtypes": list(dtypes)}
    if plots_to is not None:
        from verify.report import draw_plots
        t1 = time.perf_counter()
        data["items"] = [it for it in items if isinstance(it, dict)]
        draw_plots(data, plots_to)
        timings["plots (while backprop runs)"] = round(time.perf_counter() - t1, 3)
    done = []
    for it in items:
        if not isinstance(it, str):
            done.append(it)
            continue
        section, job, t1 = pending[it]
        try:
            if isinstance(job, Exception):
                raise job
            done.extend(job.result())
        except Exception as exc:
            done.append(_crash(it, section, exc))
        timings[it] = round(time.perf_counter() - t1, 3)
    items, skipped = done, _skips(done)
    if strict:                            # --strict: a skip is a failure
        items = [_strict_fail(it) if it.get("skipped") else it for it in items]
        items += [{"name": s["part"], "section": "skipped", "passed": False,
                   "verdict": "FAIL (--strict): " + skip_verdict(s["needs"])}
                  for s in skipped if s["item"] is None]
    for it in items:                      # a failure names the seed that replays it
        if not it["passed"]:
            it["seed"] = seed
    data.update({"items": items, "seconds": round(time.perf_counter() - t0, 3),
                 "seed": seed, "seeds": [seed], "strict": strict, "skipped": skipped,
                 "section_seconds": timings, "only": list(only) if only else None,
                 "passed": all(it["passed"] for it in items),
                 "n_items": len(items), "n_failed": sum(not it["passed"] for it in items)})
    return data


def _skips(items):
    """The visible skips: items that carry ``"skipped": dependency`` and the optional parts
    of the run whose dependency is missing (``kernels.missing_optional``); "item" is the
    skipped item's name, or None for a part that is not an item (the plots)."""
    out = [{"part": it["name"], "needs": it["skipped"], "item": it["name"]}
           for it in items if it.get("skipped")]
    out += [{"part": part, "needs": dep, "item": None}
            for dep, part in sorted(K.missing_optional().items())]
    return out


def _strict_fail(it):
    return dict(it, passed=False, verdict="FAIL (--strict): " + skip_verdict(it["skipped"]))


def _crash(name, section, exc, verdict="FAIL (crashed)"):
    import traceback
    return {"name": name, "section": section, "passed": False, "verdict": verdict,
            "error": repr(exc), "traceback": "".join(traceback.format_exception(exc))}
