"""Run every check and collect the results into one JSON-able dict (the report's data).

Sections, as listed in ``SECTIONS``, come from one verify module per nnlib module:
``kernels`` (verify.activations, verify.output_maps, verify.losses, verify.dense:
definition, proof, evidence; verify.paths, verify.conventions; verify.fast_paths: the fit
path's compiled shortcuts against NumPy), ``optimizers`` (verify.optim), ``backprop``,
``train`` (verify.train: the compiled epoch), ``convexity``, ``notes``. A section that
fails to import, or raises, is a FAIL item. Each item is a dict with at least ``name``,
``section``, ``passed`` (True / False) and ``verdict`` (a short word for the summary).
``only`` keeps the items whose name is listed.

Nothing passes by absence: a kernel, class or section verify cannot reach is a failure. The
one exception is a part that needs an optional dependency (``kernels.OPTIONAL``; none at
present): it is listed in ``data["skipped"]`` as "skipped (needs X)" (an item
may also carry ``"skipped": X``) and ``strict`` turns each skip into a failing item.

The seed (``--seed``) is recorded in the data and in every failing item (``"seed"``, printed
after its verdict in the summary and report.md), so a failure can be replayed. The full run
draws the branch-plan evidence (``verify.paths``) for ``FULL_SEEDS`` seeds (``--seed`` and
the next ones), --quick for one; a failing case there names the seed and the smallest
failing input found.

``update_baseline`` (``--update-baseline``) records in verify/baseline.json every branch
path whose ULP figure improved or had no baseline yet (a BLAS product among the figures of
this machine's BLAS, by its ``blas_fingerprint``, beside other BLAS builds': ``verify.paths``).

Names: every check has a name known before anything runs (:func:`catalogue`, printed by
``--list``); ``--only`` takes check names or group names (a section, a verify module, an
optimizer class: :func:`aliases`) and runs exactly those checks -- an unknown name is an
error with the nearest known names. Each check runs on its own (one call of its section
per name) so that ``on_item`` sees it the moment it finishes.
"""
import time

from verify import kernels as K
from verify.workers import n_workers, start_workers
from verify.kernels import skip_verdict
from verify.registry import ACTIVATIONS

__all__ = ["run_all", "SECTIONS", "load_sections", "catalogue", "aliases",
           "resolve_only", "count_checks", "UnknownCheck"]


# Seeds of a full run: the given one and the next FULL_SEEDS - 1 (--quick uses one).
FULL_SEEDS = 3


class Context:
    def __init__(self, quick=False, dtypes=("float64", "float32"), only=None, seed=0,
                 strict=False, update_baseline=False):
        self.quick, self.dtypes, self.only, self.seed = quick, list(dtypes), only, seed
        self.strict, self.update_baseline = strict, update_baseline
        # the branch-plan evidence (verify.paths) draws its random inputs once per seed
        self.seeds = [seed] if quick else [seed + k for k in range(FULL_SEEDS)]

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
    ("kernels", "verify.paths", "run_paths"),
    ("kernels", "verify.conventions", "run_conventions"),
    ("kernels", "verify.fast_paths", "run_fast_paths"),
    ("optimizers", "verify.optim", "run_optimizers"),
    ("backprop", "verify.backprop", "run_backprop"),
    ("train", "verify.train", "run_train"),
    ("train", "verify.denormals", "run_denormals"),
    ("convexity", "verify.convexity", "run_convexity"),
    ("notes", "verify.notes_examples", "run_notes"),
    ("approximation", "verify.approximation", "run_approximation"),
]


def _names_of(fn_name):
    """The names of the checks one section function makes, without running it."""
    if fn_name == "run_activations":
        return [a.name for a in ACTIVATIONS]
    if fn_name == "coverage":
        return ["coverage"]
    if fn_name == "run_maps":
        from verify.output_maps import MAP_NAMES
        return list(MAP_NAMES)
    if fn_name == "run_losses":
        from verify.losses import LOSS_NAMES
        return list(LOSS_NAMES)
    if fn_name == "run_layer":
        return ["dense"]
    if fn_name == "run_dropout":
        from verify.dropout import ITEM_NAMES
        return list(ITEM_NAMES)
    if fn_name == "run_paths":
        from verify.paths import item_names
        return item_names()
    if fn_name == "run_conventions":
        from verify.conventions import CONVENTIONS, activation_conventions
        kernels = [k for k, *_ in activation_conventions()] + [c.kernel for c in CONVENTIONS]
        return [f"{k} (conventions)" for k in dict.fromkeys(kernels)]
    if fn_name == "run_fast_paths":
        from verify.fast_paths import ITEM_NAMES
        return list(ITEM_NAMES)
    if fn_name == "run_optimizers":
        from verify.optim import CONFIGS, QUOTIENT_CONFIGS, _label
        return ([_label(c, kw) for c, kw in CONFIGS]
                + ["float32 quotient: " + _label(c, kw) for c, kw in QUOTIENT_CONFIGS])
    if fn_name == "run_backprop":
        return ["backprop"]
    if fn_name == "run_train":
        from verify.optim import CONFIGS, _label
        return ["epoch proof"] + [f"epoch {_label(c, kw)}" for c, kw in CONFIGS]
    if fn_name == "run_denormals":
        from verify.denormals import ITEM_NAME
        return [ITEM_NAME]
    if fn_name == "run_convexity":
        from verify.convexity import _cases
        return [c["name"] for c in _cases()]
    if fn_name == "run_notes":
        from verify.notes_examples import check_names
        return check_names()
    if fn_name == "run_approximation":
        from verify.approximation import check_names
        return check_names()
    return []


# Sections whose function cannot pick one check by its name: they run whole and their items
# are filtered afterwards (notes), or take their own names (backprop: "relu+squared_error").
_RUN_WHOLE = {"run_notes"}
# Sections that pick their kernels themselves from ``ctx.only`` (a kernel's name selects
# its branch-path and convention items: "relu" -> "relu (branch paths)", ...); with
# --only they get the picked names and may well return nothing.
_SELF_SELECTING = {"run_paths", "run_conventions"}


def catalogue():
    """[(section, function name, [check names])] in report order; a section whose names
    cannot be listed (its module does not import) has an empty list."""
    out = []
    for section, mod, fn in SECTIONS:
        try:
            names = _names_of(fn)
        except Exception:             # reported by the run itself (a section that fails)
            names = []
        out.append((section, fn, names))
    return out


def aliases(cat=None):
    """Group names ``--only`` accepts -> the check names they stand for: each section
    ("kernels", "train"), each verify module ("activations", "losses", "optim"), each
    optimizer class ("Adam": its update check and its training epochs) and each
    activation+loss network of the backprop check ("tanh+squared_error")."""
    cat = catalogue() if cat is None else cat
    out = {}
    for section, fn, names in cat:
        out.setdefault(section, []).extend(names)
    module_of = {fn: mod.rsplit(".", 1)[-1] for _, mod, fn in SECTIONS}
    for section, fn, names in cat:
        m = module_of[fn]
        if m not in ("run", section) and m not in {n for _, _, ns in cat for n in ns}:
            out.setdefault(m, []).extend(names)
    try:
        from verify.backprop import LOSSES
        from verify.optim import CONFIGS, _label
    except Exception:
        return out
    for c, kw in CONFIGS:
        out.setdefault(c, []).extend([_label(c, kw), f"epoch {_label(c, kw)}"])
    from verify.optim import QUOTIENT_CONFIGS
    for c, kw in QUOTIENT_CONFIGS:
        out.setdefault(c, []).append("float32 quotient: " + _label(c, kw))
    for a in ACTIVATIONS:
        for ls in LOSSES:
            out[f"{a.name}+{ls}"] = ["backprop"]
    return out


def count_checks(cat, picked):
    """How many checks a run of ``picked`` (None: all) makes, for the console's header."""
    if picked is None:
        return sum(len(names) for _, _, names in cat)
    chosen = set(picked)
    n = sum(name in chosen for _, fn, names in cat for name in names
            if fn != "run_backprop" and fn not in _SELF_SELECTING)

    def kernel_of(name):                  # "relu_vjp (conventions)" -> relu_vjp, relu
        k = name.split(" (")[0]
        return {k, k.removesuffix("_vjp").removesuffix("_grad")}
    n += sum(bool(kernel_of(name) & chosen) or name in chosen for _, fn, names in cat
             if fn in _SELF_SELECTING for name in names)
    return n + any(t == "backprop" or "+" in t for t in picked)


class UnknownCheck(ValueError):
    """An ``--only`` name that is neither a check nor a group; the message suggests the
    nearest known names."""


def resolve_only(only, cat=None):
    """The check names ``only`` selects, plus the backprop networks it names
    ("relu+squared_error", passed to the backprop check as is); UnknownCheck for a name
    that is neither a check nor a group."""
    import difflib
    cat = catalogue() if cat is None else cat
    groups = aliases(cat)
    names = [n for _, _, ns in cat for n in ns]
    picked = []
    for want in only:
        if want in names:
            picked.append(want)
        elif want in groups:
            # a backprop network ("tanh+squared_error") is passed to the check as is
            picked.extend(groups[want] if groups[want] != ["backprop"] else [want])
        else:
            folded = {k.lower(): k for k in names + list(groups)}
            near = difflib.get_close_matches(want.lower(), list(folded), n=3, cutoff=0.5)
            near = [folded[n] for n in near] or [
                folded[k] for k in sorted(k for k in folded if want.lower() in k)[:3]]
            hint = ("; did you mean " + " or ".join(repr(n) for n in near) + "?") if near \
                else ""
            raise UnknownCheck(f"no check or group is named {want!r}{hint} "
                               "(python -m verify --list shows every name)")
    return list(dict.fromkeys(picked))


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


def _plan(cat, picked):
    """[(section, function name, [ctx.only per call], names kept or None)]: one call per
    check where the section can pick a check by name, else one call for the section."""
    plan = []
    for section, fn, names in cat:
        if fn == "run_backprop":
            nets = {g for g, names in aliases(cat).items() if names == ["backprop"]}
            tokens = None if picked is None else \
                [t for t in picked if t == "backprop" or t in nets]
            calls = [None] if tokens is None else ([tokens] if tokens else [])
            plan.append((section, fn, calls, None))
            continue
        if fn in _SELF_SELECTING:
            plan.append((section, fn, [None] if picked is None else [list(picked)], None))
            continue
        chosen = names if picked is None else [n for n in names if n in picked]
        if fn in _RUN_WHOLE or not names:
            keep = None if picked is None else set(chosen)
            plan.append((section, fn, [None] if (picked is None or chosen) else [], keep))
        else:
            plan.append((section, fn, [[n] for n in chosen], None))
    return plan


# Sections that a whole run sends to the worker processes, one job per check, beside the
# backprop networks (the rest, and every run of picked checks, stays in this process:
# tests replace kernels in it). Chosen to balance the two cores: with them, the workers'
# CPU and the main process's are about equal; what is left of the balance this process
# settles at the end, running the calls no worker has started (verify.workers). The
# branch plan (run_paths, one call) draws no plot, so it runs on a worker as it would
# here; the sections whose items the main process's plots combine (the ULP summary, the
# simplex) stay here.
WORKER_SECTIONS = ("run_dropout", "run_optimizers", "run_train", "run_layer", "run_convexity",
                   "run_paths")
# --quick has one worker, which carries the backprop networks besides; since their
# derivation got cheaper (verify.dag_eval.diff_once) it takes dropout too (no plots), and
# this process takes back at the end what the worker has not started
QUICK_WORKER_SECTIONS = WORKER_SECTIONS


def _run_calls(fn, fn_name, section, calls, keep, ctx_args, module):
    """The items of one section's ``calls`` (one per check, or [None] for the whole
    section); a crash is a failing item, and so is a check that made no item."""
    out = []
    for call in calls:
        t2 = time.perf_counter()
        try:
            got = list(fn(Context(only=call, **ctx_args)))
            if keep is not None:
                got = [it for it in got if it["name"] in keep]
            if call is not None and not got and fn_name not in _SELF_SELECTING:
                # nothing passes by absence
                got = [{"name": call[0], "section": section, "passed": False,
                        "verdict": f"FAIL ({fn_name} made no result for this check)"}]
        except Exception as exc:          # a crash in one check is a reported failure
            got = [_crash(fn_name if call is None else call[0], section, exc)]
        for it in got:
            it.setdefault("seconds", round((time.perf_counter() - t2) / len(got), 3))
            it.setdefault("module", module)          # the report's section
            out.append(it)
    return out


def _worker_calls(module, fn_name, section, calls, keep, ctx_args):
    """On a worker process: the items of ``calls`` and their CPU seconds (their figures
    are drawn by the main process: a few milliseconds each)."""
    import importlib
    c0 = time.process_time()
    try:
        fn = getattr(importlib.import_module(module), fn_name)
    except Exception as exc:
        return [_crash(f"{module}.{fn_name}", section, exc,
                       "FAIL (section did not import)")], time.process_time() - c0
    got = _run_calls(fn, fn_name, section, calls, keep, ctx_args, module)
    return got, time.process_time() - c0


class _WorkerSection:
    """One section's checks running on the worker processes: ``result()`` waits for them
    and returns their items in order (``cpu``: their CPU seconds there)."""
    def __init__(self, pool, futures):
        self.pool, self.futures, self.cpu = pool, futures, 0.0

    def result(self):
        out = []
        for f in self.futures:
            got, cpu = f.result()
            out.extend(got)
            self.cpu += cpu
        return out


def run_all(quick=False, dtypes=("float64", "float32"), only=None, seed=0, plots_to=None,
            strict=False, update_baseline=False, on_item=None, on_note=None, workers=None):
    """Run every section; returns {"items": [...], "seconds": ..., "passed": ...,
    "seed": ..., "skipped": [...]}. ``strict``: every skip is a failure. ``only``: check
    or group names (see :func:`resolve_only`; UnknownCheck before anything runs).
    ``on_item(item)`` is called with each finished item, as it finishes; ``on_note(text)``
    with what the run does between checks (drawing plots, waiting for workers).

    The backprop networks (the slow part) and, in a whole run, the checks of
    ``WORKER_SECTIONS`` (``QUICK_WORKER_SECTIONS`` with ``quick``) start first on worker
    processes; the other sections run meanwhile, and so do their plots when ``plots_to``
    (the report directory) is given; the workers' checks are drawn when they return.
    Then this process runs the workers' checks that none of them has started yet
    (verify.workers). ``workers``: the worker processes, started earlier by
    ``verify.workers.start_workers(n_workers(quick))`` (run_all shuts them down; a run
    that has no use for them too)."""
    cat = catalogue()
    picked = None if not only else resolve_only(only, cat)
    t0 = time.perf_counter()
    items, timings, cpu = [], {}, {}

    def finish(it):
        if strict and it.get("skipped"):
            it = _strict_fail(it)
        if not it["passed"]:              # a failure names the seed that replays it
            it["seed"] = seed
        if on_item is not None:
            on_item(it)
        return it

    loaded = {}
    for x in load_sections():
        if isinstance(x, dict):           # a section that did not import
            items.append(finish(x))
        else:
            loaded[x[1].__name__] = x[1]
    module_of = {fn: mod for _, mod, fn in SECTIONS}
    ctx_args = dict(quick=quick, dtypes=dtypes, seed=seed, strict=strict,
                    update_baseline=update_baseline)
    plan = _plan(cat, picked)
    pool = None
    if picked is None and "run_backprop" in loaded:
        # a whole run: the backprop networks and WORKER_SECTIONS' checks go to worker
        # processes (one job per check) while this process runs the rest
        pool = workers or start_workers(n_workers(quick))
        workers = None
    pending = {}
    try:
        for section, fn_name, calls, keep in plan:
            if fn_name == "run_backprop" and calls and fn_name in loaded:
                t1 = time.perf_counter()
                try:
                    from verify.backprop import start_backprop
                    pending[fn_name] = (section, start_backprop(
                        Context(only=calls[0], **ctx_args), pool), t1)
                except Exception as exc:
                    pending[fn_name] = (section, exc, t1)
            elif pool is not None and fn_name in (QUICK_WORKER_SECTIONS if quick else
                                                  WORKER_SECTIONS) and fn_name in loaded \
                    and calls:
                pending[fn_name] = (section, _WorkerSection(pool, [
                    pool.submit(_worker_calls, module_of[fn_name], fn_name, section, [call],
                                keep, ctx_args)
                    for call in calls]), time.perf_counter())
        for section, fn_name, calls, keep in plan:
            if fn_name not in loaded or not calls:
                continue
            if fn_name in pending:
                items.append(fn_name)             # a placeholder: keeps the section order
                continue
            t1, c1 = time.perf_counter(), time.process_time()
            for it in _run_calls(loaded[fn_name], fn_name, section, calls, keep, ctx_args,
                                 module_of.get(fn_name)):
                items.append(finish(it))
            timings[fn_name] = round(time.perf_counter() - t1, 3)
            cpu[fn_name] = round(time.process_time() - c1, 3)
        data = {"quick": quick, "dtypes": list(dtypes)}
        note = on_note or (lambda text: None)
        if plots_to is not None:
            from verify.report import draw_plots
            note("drawing the plots" + (" while the workers run" if pending else ""))
            t1, c1 = time.perf_counter(), time.process_time()
            data["items"] = [it for it in items if isinstance(it, dict)]
            draw_plots(data, plots_to)
            timings["plots (while backprop runs)"] = round(time.perf_counter() - t1, 3)
            cpu["plots"] = round(time.process_time() - c1, 3)
        if pool is not None:
            note("running here the workers' checks they have not started")
            t1, c1 = time.perf_counter(), time.process_time()
            if pool.help():
                timings["worker checks run here"] = round(time.perf_counter() - t1, 3)
                cpu["worker checks run here"] = round(time.process_time() - c1, 3)
        done, later = [], []
        for it in items:
            if not isinstance(it, str):
                done.append(it)
                continue
            section, job, t1 = pending[it]
            note(f"waiting for {it} (started first, on worker processes)")
            try:
                if isinstance(job, Exception):
                    raise job
                got = job.result()
            except Exception as exc:
                got = [_crash(it, section, exc)]
            done.extend(finish(x) for x in got)
            later.extend(got)
            timings[it] = round(time.perf_counter() - t1, 3)
            if isinstance(job, _WorkerSection):     # its CPU, on the worker processes
                cpu[it] = round(job.cpu, 3)
    finally:
        for p in (pool, workers):
            if p is not None:
                p.shutdown(cancel_futures=True)
    if plots_to is not None and later and data.get("plots") == "written to plots/":
        # the workers' items (with the data their plots draw): after the main process's
        # plots, which ran while the workers did
        from verify.plots import make_plots
        t1, c1 = time.perf_counter(), time.process_time()
        data["plot_errors"] += make_plots(dict(data, items=later), plots_to, summary=False)
        timings["plots of the workers' checks"] = round(time.perf_counter() - t1, 3)
        cpu["plots"] = round(cpu["plots"] + time.process_time() - c1, 3)
    items, skipped = done, _skips(done)
    if strict:                            # --strict: a skip is a failure
        items += [finish({"name": s["part"], "section": "skipped", "passed": False,
                          "verdict": "FAIL (--strict): " + skip_verdict(s["needs"])})
                  for s in skipped if s["item"] is None]
    data.update({"items": items, "seconds": round(time.perf_counter() - t0, 3),
                 "cpu_seconds": _cpu_seconds(),
                 "seed": seed, "seeds": Context(quick, seed=seed).seeds, "strict": strict,
                 "skipped": skipped,
                 "update_baseline": update_baseline,
                 "section_seconds": timings,
                 # CPU per section, of this process or, for WORKER_SECTIONS, of whichever
                 # process ran each check ("worker checks run here": the part of those and
                 # of backprop this process ran; backprop's is otherwise in
                 # cpu_seconds["workers"]): on a loaded machine the wall time measures the
                 # load
                 "section_cpu_seconds": cpu, "only": list(only) if only else None,
                 "passed": all(it["passed"] for it in items),
                 "n_items": len(items), "n_failed": sum(not it["passed"] for it in items)})
    return data


def _cpu_seconds():
    """CPU time (user + system) of this process and of its finished worker processes: on a
    loaded machine the wall time measures the load, these measure the run."""
    import resource
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"main": round(me.ru_utime + me.ru_stime, 2),
            "workers": round(kids.ru_utime + kids.ru_stime, 2)}


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
