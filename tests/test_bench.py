"""The benchmark runner: outputs, interleaving, statistics, missing peers. Never timings.

The runner is exercised as users run it (``python -m bench``) in a subprocess with
``NNLIB_BENCH_TINY=1`` (minimal sizes and repeats); a missing PyTorch / scikit-learn is
simulated by putting stub packages that raise ImportError first on ``PYTHONPATH``.
"""
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from bench import report
from bench.timing import (clean_rounds, interleaved, machine_busy, page_faults, summarize,
                          thread_cpu, threads_report)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_bench(tmp_path, args, extra_path=None):
    env = dict(os.environ, NNLIB_BENCH_TINY="1")
    env["PYTHONPATH"] = os.pathsep.join(
        [p for p in (extra_path, ROOT, os.environ.get("PYTHONPATH")) if p])
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)] + args,
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    return results, (out / "results.md").read_text(), r


def _cells(results, workload):
    for tbl in results["workloads"][workload]["tables"]:
        for row in tbl["rows"]:
            yield tbl, row, row["cells"]


def test_quick_kernels_writes_valid_outputs(tmp_path):
    results, md, _ = _run_bench(tmp_path, ["--only", "kernels"])
    meta = results["meta"]
    assert meta["machine"]["cpu"] and meta["machine"]["logical_cores"] >= 1
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["threads"]["requested"] >= 1
    assert meta["threads"]["env"]["OMP_NUM_THREADS"] == str(meta["threads"]["requested"])
    assert list(results["workloads"]) == ["kernels"]
    n_ok = 0
    for tbl, row, cells in _cells(results, "kernels"):
        assert set(cells) == set(tbl["columns"])
        for cell in cells.values():
            if cell["status"] == "ok":
                n_ok += 1
                assert len(cell["samples"]) >= 2 and all(s > 0 for s in cell["samples"])
                assert cell["median"] == pytest.approx(float(np.median(cell["samples"])))
                assert cell["faults_per_call"] >= 0 and cell["major_faults_per_call"] >= 0
            else:
                assert cell["status"] in ("not installed", "not available yet",
                                          "no equivalent", "skipped", "missing")
    assert n_ok > 0
    # every compiled activation is in the issue-2 twin table, measured against its twin
    twins = {row["params"]["function"]: cells for tbl, row, cells in
             _cells(results, "kernels") if tbl["name"] == "twins_1e6"}
    assert twins["sigmoid_vjp"]["nnlib"]["status"] == "ok"
    assert twins["sigmoid_vjp"]["twin"]["status"] == "ok"
    assert "## Kernels" in md and "| nnlib/NumPy twin (time)" in md
    assert "sigmoid fwd+vjp, n=1e2" in md
    # the note on page faults is there exactly when some row shows them
    from bench.results import row_shows_faults
    shows = any(row_shows_faults(row) for tbl, row, cells in _cells(results, "kernels"))
    assert ("Page faults per call" in md) == shows
    assert (tmp_path / "out" / "summary.md").read_text().startswith("### Latest run")


def test_estimators_workload_compares_fit_time_loss_and_memory(tmp_path):
    results, md, _ = _run_bench(tmp_path, ["--only", "estimators", "--repeats", "1"])
    w = results["workloads"]["estimators"]
    assert [t["name"] for t in w["tables"]] == ["estimators", "estimators_memory"]
    for tbl, row, cells in _cells(results, "estimators"):
        assert set(cells) == {"nnlib", "sklearn"}
        if tbl["name"] == "estimators":
            nn, sk = cells["nnlib"], cells["sklearn"]
            assert nn["status"] == "ok" and len(nn["samples"]) == 1
            # same parameters and random_state: the same training, so the same loss_
            if sk["status"] == "ok":
                assert nn["loss_"] == pytest.approx(sk["loss_"], rel=1e-6)
                assert nn["n_iter_"] == sk["n_iter_"] == row["params"]["max_iter"]
            assert nn["fit_peak_bytes"] > 0
        else:
            assert cells["nnlib"]["median"] > 0
    # three speed targets and the memory target, each met, missed or not measured
    assert len(w["targets"]) == 4
    assert all(tg["met"] in (True, False, None) for tg in w["targets"])
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert ("MLPClassifier.fit wall time, sgd, batch 32: nnlib >= 6x faster than "
            "scikit-learn") in summary
    assert "nnlib/scikit-learn (memory)" in summary and "| lbfgs |" in md


def test_render_rewrites_markdown_from_json(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    results = {"meta": {"command": "python -m bench", "mode": "quick", "duration_s": 1.0,
                        "started_utc": "2026-01-01 00:00", "versions": {"numpy": "2"},
                        "machine": {"cpu": "cpu", "usable_cores": 2, "logical_cores": 2,
                                    "memory_gib": 1.0, "os": "os"},
                        "threads": {"requested": 1}},
               "workloads": {"verify": {"title": "Verify", "description": "d", "targets": [],
                                        "tables": [{"name": "verify", "columns": ["nnlib"],
                                                    "value": "time", "baseline": "nnlib",
                                                    "unit": "s", "notes": [], "rows": []}]}}}
    (out / "results.json").write_text(json.dumps(results))
    r = subprocess.run([sys.executable, "-m", "bench", "--render", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "## Verify" in (out / "results.md").read_text()


@pytest.fixture
def no_peers_path(tmp_path):
    """A directory whose torch and sklearn packages raise ImportError on import."""
    stubs = tmp_path / "stubs"
    for name in ("torch", "sklearn"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(
            f"raise ImportError('{name} hidden by the test')\n")
    return str(stubs)


def test_missing_peers_are_reported_not_errors(tmp_path, no_peers_path):
    results, md, r = _run_bench(tmp_path, ["--only", "per_sample", "kernels", "estimators"],
                                extra_path=no_peers_path)
    row = results["workloads"]["per_sample"]["tables"][0]["rows"][0]
    assert row["cells"]["torch"]["status"] == "not installed"
    assert row["cells"]["sklearn"]["status"] == "not installed"
    assert row["cells"]["numpy"]["status"] == "ok"
    for _, _, cells in _cells(results, "kernels"):
        if "torch" in cells:
            assert cells["torch"]["status"] in ("not installed", "no equivalent")
    for _, _, cells in _cells(results, "estimators"):
        assert cells["sklearn"]["status"] == "not installed"
        assert cells["nnlib"]["status"] == "ok"
    assert [tg["met"] for tg in results["workloads"]["estimators"]["targets"]] == [None] * 4
    assert "not installed" in md
    assert "Traceback" not in r.stderr


def test_unknown_workload_is_a_usage_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "bench", "--only", "nope"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_summarize_matches_numpy_percentiles():
    xs = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0]
    s = summarize(xs)
    q1, med, q3 = np.percentile(xs, [25, 50, 75])
    assert (s["q1"], s["median"], s["q3"]) == pytest.approx((q1, med, q3))
    assert s["iqr"] == pytest.approx(q3 - q1) and s["n"] == 6
    assert summarize([])["median"] is None


def test_interleaved_rotates_the_order_and_warms_up():
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    out = interleaved(fns, repeats=3, warmup=1, min_sample=0.0)
    assert calls[:3] == ["a", "b", "c"]             # warm-up, one call each
    assert calls[3:] == list("abc" "bca" "cab")      # rotated every round
    assert all(len(out[k]["samples"]) == 3 and out[k]["number"] == 1 for k in "abc")


def test_interleaved_primes_each_sample_with_a_call_of_its_own():
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in "ab"}
    interleaved(fns, repeats=2, warmup=1, min_sample=0.0, prime=1)
    # warm-up a b; then each sample (a b, then b a) preceded by an untimed call of its own
    assert calls == list("ab" "aabb" "bbaa")


# 48 MiB: above glibc's largest mmap threshold (32 MiB), so every such array is mapped
# fresh on allocation and unmapped on free, whatever the process allocated before, and
# writing it faults its pages in on every call.
FRESH_BYTES = 48 * 2**20


@pytest.mark.skipif(page_faults() is None, reason="no getrusage to read page faults")
def test_interleaved_counts_the_page_faults_of_fresh_memory_per_call():
    reused = np.empty(FRESH_BYTES // 8)
    reused.fill(0.0)                                   # faulted in once, here
    peers = {"fresh": lambda: np.ones(FRESH_BYTES // 8), "reused": lambda: reused.fill(1.0)}
    one = interleaved(peers, repeats=3, warmup=1, min_sample=0.0)
    fresh, kept = one["fresh"]["faults"], one["reused"]["faults"]
    # 4 KiB pages, or 2 MiB ones where NumPy asks for them: between 24 and 12288 a call
    assert FRESH_BYTES / 2**21 / 2 <= fresh["minor"] <= FRESH_BYTES / 4096 * 1.1
    assert fresh["major"] >= 0 and kept["minor"] < fresh["minor"] / 4
    # samples of several calls count per call too: the same every call
    many = interleaved({"fresh": peers["fresh"]}, repeats=3, warmup=1, min_sample=0.2)
    assert many["fresh"]["number"] >= 2
    assert 0.5 <= many["fresh"]["faults"]["minor"] / fresh["minor"] <= 2.0


def _faulting_row(case, nnlib_faults, torch_faults, seconds=4.6e-3):
    def cell(f):
        return {"status": "ok", "median": seconds, "iqr": 0.0, "q1": seconds,
                "q3": seconds, "faults_per_call": f, "major_faults_per_call": 0.0}
    return {"case": case, "params": {},
            "cells": {"nnlib": cell(nnlib_faults), "torch": cell(torch_faults)}}


def test_markdown_shows_page_faults_only_where_a_peer_takes_enough_to_matter():
    from bench.kernels import _faults_note
    rows = [_faulting_row("identity fwd+vjp, n=1e6", 808.4, 0.0),
            _faulting_row("sign fwd+vjp, n=1e7", 4000.0, 3900.0),
            _faulting_row("few faults", 0.5, 0.0),                 # under one a call
            _faulting_row("long call", 30.0, 0.0, seconds=1.0)]    # a tiny share of it
    tbl = {"name": "t", "columns": ["nnlib", "torch"], "value": "time",
           "baseline": "nnlib", "unit": "s", "notes": [], "rows": rows}
    text = report._table_md(tbl)
    assert ("| identity fwd+vjp, n=1e6 | 4.6 ms (808 page faults/call) ±0% "
            "| 4.6 ms (0 page faults/call) ±0% | 1 |") in text
    assert "| few faults | 4.6 ms ±0% | 4.6 ms ±0% | 1 |" in text
    assert "| long call | 1 s ±0% | 1 s ±0% | 1 |" in text
    note = _faults_note(rows)
    assert ("Rows that show them (all tables of this workload): identity fwd+vjp, n=1e6 "
            "(nnlib 808, PyTorch 0); sign fwd+vjp, n=1e7 (nnlib 4,000, PyTorch 3,900).") in note
    assert "few faults" not in note and "long call" not in note
    assert _faults_note(rows[2:]) is None        # no row shows faults: no note


def test_interleaved_batches_short_calls():
    out = interleaved({"f": lambda: None}, repeats=2, warmup=1, min_sample=1e-3)
    assert out["f"]["number"] > 1


linux_clocks = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                  reason="per-thread CPU clocks are read through Linux's /proc")


def _spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@linux_clocks
def test_thread_cpu_reads_each_threads_own_clock():
    worker_done = threading.Event()
    worker_tid = []

    def work():
        worker_tid.append(threading.get_native_id())
        _spin(0.05)
        worker_done.set()
        time.sleep(0.5)             # alive, and idle, while the main thread reads

    t = threading.Thread(target=work)
    before = thread_cpu()
    t.start()
    worker_done.wait()
    after = thread_cpu()
    t.join()
    me = threading.get_native_id()
    assert after[worker_tid[0]] >= 0.05                  # the spin, on the worker's clock
    assert after[me] - before[me] < 0.05                 # not on the main thread's


@linux_clocks
def test_interleaved_counts_the_threads_that_did_the_work():
    def on_a_worker():                                   # the caller waits, a pool works
        t = threading.Thread(target=_spin, args=(0.02,))
        t.start()
        t.join()

    out = interleaved({"inline": lambda: _spin(0.02), "worker": on_a_worker},
                      repeats=3, warmup=1, min_sample=0.0)
    for name in ("inline", "worker"):
        th, wall = out[name]["threads"], sum(out[name]["samples"])
        # three spins of 0.02 CPU s, the exited workers' included, one CPU at a time
        assert 0.059 <= th["cpu_per_wall"] * wall < 0.09, (name, th)
        assert th["cpu_per_wall"] < 1.2
    assert out["inline"]["threads"]["threads_used"] == 1


def test_interleaved_reports_the_cpu_of_other_processes_per_sample(monkeypatch):
    # the machine's busy CPU as this process's own plus half a core of a neighbour:
    # each sample's "others" is that half core (own threads, a worker doing the
    # peer's work included, are subtracted)
    import bench.timing as timing

    def on_a_worker():
        t = threading.Thread(target=_spin, args=(0.05,))
        t.start()
        t.join()

    monkeypatch.setattr(timing, "machine_busy",
                        lambda: time.process_time() + 0.5 * time.perf_counter())
    out = interleaved({"worker": on_a_worker, "inline": lambda: _spin(0.05)}, repeats=3,
                      warmup=0)
    for name in ("worker", "inline"):
        assert len(out[name]["others"]) == 3
        assert all(0.4 < o < 0.6 for o in out[name]["others"]), out[name]["others"]
    monkeypatch.setattr(timing, "machine_busy", lambda: None)       # unreadable
    assert interleaved({"f": lambda: None}, repeats=2, warmup=0)["f"]["others"] == [None] * 2


@linux_clocks
def test_machine_busy_counts_this_process_cpu():
    before, p0 = machine_busy(), time.process_time()
    _spin(0.2)
    own = time.process_time() - p0
    assert machine_busy() - before >= own - 0.03         # clock ticks of 10 ms


def test_clean_rounds_keep_only_rounds_where_every_peer_ran_on_a_quiet_machine():
    others = {"a": [0.0, 0.9, 0.05, 0.1, None], "b": [0.02, 0.0, 0.3, 0.1, 0.0]}
    assert clean_rounds(others, 0.1) == [0, 3]
    assert clean_rounds(others, 1.0) == [0, 1, 2, 3]
    assert clean_rounds({"a": None, "b": [0.0]}, 0.1) == []     # not read: none clean
    assert clean_rounds({}, 0.1) == []


def _scaling_row(many, one, others_many, others_one):
    cell = lambda xs, o: {"status": "ok", "samples": xs, "median": summarize(xs)["median"],
                          "others": o}
    return {"cells": {"nnlib": cell(many, others_many), "nnlib_1t": cell(one, others_one)}}


def test_large_scaling_verdict_rests_on_the_clean_rounds_when_there_are_enough():
    from bench.large import _scaling_target
    # rounds 1 and 3 shared the machine: the 2-thread run slowed down, the 1-thread not
    many, one = [0.30, 0.60, 0.31, 0.62, 0.30], [0.57, 0.58, 0.57, 0.58, 0.57]
    noisy = [0.0, 0.9, 0.02, 0.8, 0.01]
    row = _scaling_row(many, one, noisy, [0.0] * 5)
    t = _scaling_target(2, row)
    assert t["met"] is True and row["clean_rounds"] == [0, 2, 4]
    assert "clean rounds (3 of 5" in t["detail"] and "-> 1.90x" in t["detail"]
    assert f"-> {0.57 / 0.31:.2f}x" in t["detail"]          # all rounds, beside it
    # too few clean rounds: judged on all of them, and said so
    row = _scaling_row(many, one, [0.0, 0.9, 0.5, 0.8, 0.01], [0.0] * 5)
    t = _scaling_target(2, row)
    assert t["met"] is (0.57 / 0.31 >= 1.7) and "all rounds judged (2 of 5" in t["detail"]


def test_threads_report_and_the_markdown_line_name_a_crowded_peer():
    wall = 2.0
    assert threads_report({1: 1.9, 2: 1.3, 3: 0.05}, 3.25, wall) == {
        "cpu_per_wall": 1.625, "threads_used": 2}
    assert threads_report({}, 1.0, wall) is None
    ok = {"status": "ok", "median": 1.0, "iqr": 0.0}
    row = {"case": "batch 32", "params": {},
           "cells": {"nnlib": dict(ok, cpu_per_wall=1.0, threads_used=1),
                     "jax": dict(ok, cpu_per_wall=1.62, threads_used=2)}}
    line = report._threads_line({"rows": [row]}, 1)
    assert "batch 32: JAX (jit epoch) 1.62 CPU s per s on 2 threads" in line
    assert "nnlib" not in line.split(":", 1)[1]
    assert report._threads_line({"rows": [row]}, 2) == ""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs a CPU mask of at least two CPUs")
def test_cpus_limited_narrows_the_block_and_frees_its_threads():
    from bench.peers import _cpus_limited
    full = os.sched_getaffinity(0)
    seen, started = [], []

    def record():
        started.append(threading.get_native_id())
        time.sleep(0.3)

    with _cpus_limited(1):
        seen.append(os.sched_getaffinity(0))
        t = threading.Thread(target=record)
        t.start()
        while not started:
            time.sleep(0.001)
        seen.append(os.sched_getaffinity(started[0]))    # inherited the narrow mask
    assert len(seen[0]) == 1 and len(seen[1]) == 1
    assert os.sched_getaffinity(0) == full
    assert os.sched_getaffinity(started[0]) == full      # given back the whole mask
    t.join()


def test_markdown_states_ratios_and_unavailable(tmp_path):
    cell = {"status": "ok", "samples": [1.0, 1.0], "median": 1.0, "iqr": 0.0, "q1": 1.0,
            "q3": 1.0}
    fast = dict(cell, samples=[0.01, 0.01], median=0.01, q1=0.01, q3=0.01)
    tbl = {"name": "t", "columns": ["nnlib", "torch", "sklearn"], "value": "time",
           "baseline": "nnlib", "unit": "s", "notes": [],
           "rows": [{"case": "c", "params": {},
                     "cells": {"nnlib": fast, "torch": cell,
                               "sklearn": {"status": "not installed"}}}]}
    text = report._table_md(tbl)
    assert "| c | 10 ms ±0% | 1 s ±0% | not installed | 0.01 | — |" in text


def test_one_thread_is_the_default():
    from bench.__main__ import _parser
    assert _parser().parse_args([]).threads == 1


def _meta(load):
    return {"command": "python -m bench", "mode": "quick", "duration_s": 1.0,
            "started_utc": "2026-01-01 00:00", "versions": {"numpy": "2"},
            "machine": {"cpu": "cpu", "usable_cores": 2, "logical_cores": 2,
                        "memory_gib": 1.0, "os": "os"},
            "threads": {"requested": 1}, "loadavg_start": [load, 0, 0],
            "loadavg_end": [1.0, 0, 0]}


@pytest.mark.parametrize("load, unreliable", [(1.5, False), (7.3, True)])
def test_targets_are_marked_unreliable_when_the_load_exceeds_the_cores(tmp_path, load,
                                                                       unreliable):
    from bench.report import load_warning_text, target_status, write_markdown
    tg = {"target": "time per epoch: nnlib >= 2x faster than PyTorch", "met": True,
          "detail": "d"}
    results = {"meta": _meta(load), "workloads": {"w": {
        "title": "W", "description": "d", "targets": [tg], "tables": []}}}
    write_markdown(results, str(tmp_path / "results.md"))
    md = (tmp_path / "results.md").read_text()
    row = [ln for ln in md.splitlines() if ln.startswith("| time per epoch")][0]
    assert ("**MET (unreliable)**" in row) == unreliable
    assert target_status(True, results["meta"]) == ("MET (unreliable)" if unreliable else "MET")
    assert target_status(None, results["meta"]) == "not measured"
    assert bool(load_warning_text(results["meta"])) == unreliable


def test_plot_titles_say_what_is_measured():
    from bench.report import _plot_title
    w = {"title": "Large network: 784-512-512-10, batch 256, float32",
         "tables": [{"name": "large", "value": "rate"}]}
    assert _plot_title(w, "large", w["tables"][0]) == w["title"]
    w2 = {"title": "Estimators", "tables": [{"name": "estimators", "value": "time"},
                                            {"name": "estimators_memory", "value": "bytes"}]}
    assert _plot_title(w2, "estimators", w2["tables"][1]) == "Estimators (memory)"


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("batch", [1, 7, 32])
def test_jax_peer_trains_the_same_epoch_as_the_numpy_peer(optimizer, batch):
    """The JAX peer (whole epoch one jit-compiled call) runs the same steps as the NumPy
    loop: same permutation (same seed), same rule, so the same weights to rounding."""
    pytest.importorskip("jax")
    from bench import data, peers
    X, y, _ = data.digits(np.float64)
    X, y = X[:100], y[:100]
    init = data.init_params((64, 20, 10), np.float64, seed=0)
    spec = peers.TrainSpec((64, 20, 10), batch, optimizer, dtype=np.float64, threads=1)
    jx, ref = peers.build_jax(spec, X, y, init), peers.build_numpy(spec, X, y, init)
    assert jx.compile_seconds > 0
    for _ in range(2):
        jx.run()
        ref.run()
    for (Wj, bj), (Wr, br) in zip(jx.params(), ref.params()):
        np.testing.assert_allclose(Wj, Wr, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(bj, br, rtol=1e-9, atol=1e-12)


def test_importing_optim_steps_leaves_the_thread_count_alone(monkeypatch):
    """Run as a script it pins OpenMP to one thread; imported (as the tests do) it must
    not, or every later test of the process would run its loops on one thread."""
    import importlib
    from bench import optim_steps
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    importlib.reload(optim_steps)
    assert "OMP_NUM_THREADS" not in os.environ


def test_optim_steps_covers_each_rule_asked_with_a_ratio_where_torch_has_it(tmp_path):
    """bench.optim_steps (every optimizer rule vs torch.optim single-tensor): one row per
    rule, dtype and size; a ratio only for the rules with a PyTorch peer."""
    from bench import optim_steps
    out = tmp_path / "steps.json"
    optim_steps.main(["--rules", "sgd,notes_adagrad", "--sizes", "10,20", "--samples", "1",
                      "--min-sample", "0", "--dtypes", "float32,float64", "--out", str(out)])
    rows = json.loads(out.read_text())
    assert [(r["rule"], r["dtype"], r["n"]) for r in rows] == [
        (rule, dt, n) for rule in ("sgd", "notes_adagrad")
        for dt in ("float32", "float64") for n in (10, 20)]
    assert all(r["nnlib_s"] > 0 and r["torch_s"] is None and r["ratio"] is None
               for r in rows if r["rule"] == "notes_adagrad")
    torch_rows = [r for r in rows if r["rule"] == "sgd"]
    has_torch = all(r["torch_s"] for r in torch_rows)
    assert has_torch or all(r["torch_s"] is None for r in torch_rows)
    if has_torch:
        assert all(r["ratio"] == r["nnlib_s"] / r["torch_s"] for r in torch_rows)


def test_large_on_two_threads_times_nnlib_on_one_in_the_same_rounds(tmp_path):
    results, md, _ = _run_bench(tmp_path, ["--only", "large", "--threads", "2",
                                           "--peers", "nnlib"])
    w = results["workloads"]["large"]
    tbl = w["tables"][0]
    assert tbl["columns"] == ["nnlib", "nnlib_1t"]
    cells = tbl["rows"][0]["cells"]
    many, one = cells["nnlib"], cells["nnlib_1t"]
    assert many["status"] == one["status"] == "ok"
    assert len(many["samples"]) == len(one["samples"])       # interleaved rounds
    scaling = [t for t in w["targets"] if "1 thread" in t["target"]]
    assert len(scaling) == 1
    ratio = summarize(one["samples"])["median"] / summarize(many["samples"])["median"]
    assert f"-> {ratio:.2f}x" in scaling[0]["detail"]
    assert "nnlib, 1 thread" in md


def test_large_on_one_thread_has_no_scaling_target(tmp_path):
    results, _, _ = _run_bench(tmp_path, ["--only", "large", "--peers", "nnlib"])
    w = results["workloads"]["large"]
    assert w["tables"][0]["columns"] == ["nnlib"]
    assert not [t for t in w["targets"] if "1 thread" in t["target"]]


def test_slope_note_gives_the_per_element_cost_between_the_two_cache_sizes():
    from bench.kernels import SLOPE_SIZES, _slope_note
    lo, hi = SLOPE_SIZES

    def row(op, n, nnlib, torch):
        return {"params": {"op": op, "elements": n},
                "cells": {"nnlib": {"status": "ok", "median": nnlib},
                          "torch": {"status": "ok", "median": torch}}}

    # 7 us of fixed overhead each; 2 ns and 1 ns per element beyond it
    rows = [row("optimizer step: sgd", n, 7e-6 + 2e-9 * n, 7e-6 + 1e-9 * n)
            for n in (100, lo, hi)]
    note = _slope_note(rows, np.float32)
    assert "optimizer step: sgd 2/1 ns (2.00)" in note
    assert "float32" in note
    # a sweep without both sizes (the quick run's 1e2, 1e4, 1e6) has nothing to say
    assert _slope_note([r for r in rows if r["params"]["elements"] != hi],
                       np.float32) is None
    # the float32 optimizer rules' conversions are named only where they run
    assert "optim_f32.h" in note
    assert "optim_f32.h" not in _slope_note(rows, np.float64)


@pytest.mark.parametrize("batch, expected", [(1, 4 * (4 * 9 + 2 * 3)),
                                             (2, 4 * (4 * 9 + 2 * 3) + 2 * 2 * 9)])
def test_epoch_limits_count_the_dense_epochs_flops(monkeypatch, batch, expected):
    # A 2-3-1 net (weights 6 and 3) on 4 rows: forward 2w, weight gradient 2w, the second
    # layer's input gradient 2w per row; the update 2w per step when a step has several
    # rows. The first layer's input gradient is never computed, so it is not in the bound.
    import bench.machine
    from bench.training import epoch_limits

    monkeypatch.setitem(bench.machine._PEAK, ("float32", bench.machine.PEAK_SIZES),
                        {"flops_per_s": 1e9, "n": 128, "dtype": "float32"})
    lim = epoch_limits((2, 3, 1), 4, batch, "float32")
    assert lim["flops"] == expected
    assert lim["fma"] == pytest.approx(expected / 1e9)


def test_a_missed_speedup_target_says_what_share_of_the_fma_bound_it_needs(monkeypatch):
    # 2-3-1 on 4 rows at batch 2: 204 flops; at 1e9 flop/s the bound is 0.204 us. A peer at
    # 1.5 us and nnlib at 1 us: 3x would take 0.5 us, 41 % of the bound.
    import bench.machine
    from bench.training import speedup_target

    monkeypatch.setitem(bench.machine._PEAK, ("float32", bench.machine.PEAK_SIZES),
                        {"flops_per_s": 1e9, "n": 128, "dtype": "float32"})

    def cell(seconds):
        return {"status": "ok", "median": seconds, "number": 1, "samples": [seconds] * 3}

    row = {"case": "c", "cells": {"nnlib": cell(1e-6), "jax": cell(1.5e-6)}}
    missed = speedup_target("t", row, "jax", 3, limit=((2, 3, 1), 4, 2, "float32"))
    assert missed["met"] is False
    assert missed["detail"].endswith("; 3x would take 0.00 ms, 41% of the FMA bound "
                                     "(0.00 ms)")
    met = speedup_target("t", row, "jax", 1.2, limit=((2, 3, 1), 4, 2, "float32"))
    assert met["met"] is True and "FMA bound" not in met["detail"]


@pytest.mark.parametrize("workload", ["minibatch", "per_sample"])
def test_short_epochs_are_timed_after_several_of_their_own(workload, monkeypatch):
    """The workloads of epochs of a few ms prime each timed epoch with
    SHORT_EPOCH_PRIME untimed ones of the same peer (one left nnlib's batch-32 epoch
    ~20 % slow after a PyTorch epoch); every peer gets the same count."""
    import importlib

    import numpy as np

    import bench.training as training
    from bench.__main__ import Context
    assert training.SHORT_EPOCH_PRIME >= 3
    seen = []

    class Stop(Exception):
        pass

    def measure(ctx, builders, **kw):
        seen.append(kw["prime"])
        raise Stop

    monkeypatch.setattr(training, "measure_peers", measure)
    module = importlib.import_module(f"bench.{workload}")
    ctx = Context(quick=True, tiny=True, threads=1, dtype=np.float64, peers=("nnlib",),
                  repeats_override=None, out=None)
    with pytest.raises(Stop):
        module.run(ctx)
    assert seen == [training.SHORT_EPOCH_PRIME]
