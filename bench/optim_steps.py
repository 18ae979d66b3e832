"""Standalone optimizer steps, every rule: nnlib's ``Optimizer.step`` against PyTorch's
single-tensor ``opt.step()`` (``foreach=False``), one thread, float32 and float64.

    python -m bench.optim_steps [--sizes 100,1000,10000,100000,1000000] [--rules sgd,adam]
                                [--samples 21] [--out steps.json]

The kernel table of ``python -m bench --only kernels`` times three rules in one dtype;
this script covers every rule nnlib ships (the notes' and scikit-learn's rules have no
PyTorch peer and are timed alone), at sizes from Python-overhead-bound (1e2) to
L3-resident (1e6 elements). Both sides step one parameter with a fixed gradient,
as the kernel table does; nnlib's step includes its overflow check.

Timing: each sample is the CPU time of this thread (``time.thread_time``) over enough
calls to last ``--min-sample`` seconds, the peers interleaved, and a cell reports the
best sample. On a shared, loaded machine wall-clock medians mostly measure the other
processes; the thread's CPU time with the best sample does not (cache sharing still
leaks through), so before/after comparisons of nnlib itself use this script.
"""
import argparse
import json
import os
import time

if __name__ == "__main__":
    # run as a script: one thread for OpenBLAS and OpenMP before they load; imported (by
    # the tests) it leaves the process's environment alone
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread count is fixed)


def _rules(O, torch):
    """name -> (nnlib factory, torch factory or None), each taking a list of params."""
    t = torch.optim if torch is not None else None

    def peer(make):
        return None if t is None else make
    return {
        "sgd": (lambda p: O.SGD(p, lr=0.1),
                peer(lambda p: t.SGD(p, lr=0.1, foreach=False))),
        "momentum": (lambda p: O.SGD(p, lr=0.01, momentum=0.9),
                     peer(lambda p: t.SGD(p, lr=0.01, momentum=0.9, foreach=False))),
        "nesterov": (lambda p: O.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
                     peer(lambda p: t.SGD(p, lr=0.01, momentum=0.9, nesterov=True,
                                          foreach=False))),
        "sgd_wd": (lambda p: O.SGD(p, lr=0.01, momentum=0.9, weight_decay=1e-4),
                   peer(lambda p: t.SGD(p, lr=0.01, momentum=0.9, weight_decay=1e-4,
                                        foreach=False))),
        "adagrad": (lambda p: O.Adagrad(p, lr=0.01),
                    peer(lambda p: t.Adagrad(p, lr=0.01, foreach=False))),
        "rmsprop": (lambda p: O.RMSprop(p, lr=0.01),
                    peer(lambda p: t.RMSprop(p, lr=0.01, foreach=False))),
        "rmsprop_cm": (lambda p: O.RMSprop(p, lr=0.01, momentum=0.9, centered=True),
                       peer(lambda p: t.RMSprop(p, lr=0.01, momentum=0.9, centered=True,
                                                foreach=False))),
        "adam": (lambda p: O.Adam(p, lr=1e-3),
                 peer(lambda p: t.Adam(p, lr=1e-3, foreach=False))),
        "adam_ams": (lambda p: O.Adam(p, lr=1e-3, amsgrad=True),
                     peer(lambda p: t.Adam(p, lr=1e-3, amsgrad=True, foreach=False))),
        "adamw": (lambda p: O.AdamW(p, lr=1e-3, weight_decay=0.01),
                  peer(lambda p: t.AdamW(p, lr=1e-3, weight_decay=0.01, foreach=False))),
        "notes_momentum": (lambda p: O.NotesMomentum(p, lr=0.01), None),
        "notes_adagrad": (lambda p: O.NotesAdaGrad(p, lr=0.01), None),
        "sklearn_sgd": (lambda p: O.SklearnSGD(p, lr=0.01, momentum=0.9), None),
        "sklearn_adam": (lambda p: O.SklearnAdam(p, lr=1e-3), None),
    }


def _build(rules, torch, rule, dtype, n, rng):
    make, make_torch = rules[rule]
    w = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(n) * 1e-3).astype(dtype)]
    opt = make([w])
    fns = {"nnlib": lambda: opt.step(grads)}
    if make_torch is not None:
        p = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(n).astype(dtype)))
        p.grad = torch.from_numpy((rng.standard_normal(n) * 1e-3).astype(dtype))
        fns["torch"] = make_torch([p]).step
    return fns


def _sample(fn, k):
    t0 = time.thread_time()
    for _ in range(k):
        fn()
    return (time.thread_time() - t0) / k


def _measure(fns, samples, min_sample):
    """Best per-call CPU time of each callable, samples interleaved."""
    reps = {}
    for name, fn in fns.items():
        fn()
        k = 1
        while _sample(fn, k) * k < min_sample:
            k *= 2
        reps[name] = k
    times = {name: [] for name in fns}
    for _ in range(samples):
        for name, fn in fns.items():
            times[name].append(_sample(fn, reps[name]))
    return {name: float(np.min(t)) for name, t in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000,100000,1000000")
    ap.add_argument("--rules", default=None, help="comma-separated (default: all)")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--samples", type=int, default=21)
    ap.add_argument("--min-sample", type=float, default=0.001)
    ap.add_argument("--out", help="write the rows as JSON here")
    a = ap.parse_args(argv)
    import nnlib.optim as O
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rules = _rules(O, torch)
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'rule':15s} {'dtype':8s} {'n':>8s} {'nnlib us':>10s} {'torch us':>10s} "
          f"{'nnlib/torch':>11s}")
    for rule in a.rules.split(",") if a.rules else rules:
        for dt in a.dtypes.split(","):
            for n in map(int, a.sizes.split(",")):
                r = _measure(_build(rules, torch, rule, np.dtype(dt), n, rng), a.samples,
                             a.min_sample)
                ratio = r["nnlib"] / r["torch"] if "torch" in r else None
                rows.append(dict(rule=rule, dtype=dt, n=n, nnlib_s=r["nnlib"],
                                 torch_s=r.get("torch"), ratio=ratio))
                torch_us = f"{r['torch'] * 1e6:10.2f}" if "torch" in r else f"{'-':>10s}"
                print(f"{rule:15s} {dt:8s} {n:8d} {r['nnlib'] * 1e6:10.2f} {torch_us} "
                      f"{'' if ratio is None else f'{ratio:11.2f}'}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
