"""Interleaved timing: warm-up, then repeats in round-robin order over the peers.

Why interleaved: on a shared machine the load drifts over seconds; timing peer A's ten
repeats and then peer B's would charge that drift to one of them. Rotating the order each
round (A B C, B C A, C A B, ...) spreads it evenly, and the median with its interquartile
range shows what is left.

Short calls are batched: during warm-up each peer is calibrated to run ``number`` times
per sample so that one sample lasts at least ``min_sample`` seconds (timer resolution and
loop overhead then stay below 1 %); every sample is reported per call.

Threads used: around every sample (outside the timed region) each thread of the process
has its CPU clock read, so a peer's result says how many threads did its work. A run with
``--threads 1`` claims one thread per library; a library whose pool ignores the limit
shows up here instead of passing as a faster single thread.

Page faults: the process's minor and major fault counters are read right around every
sample too, so a peer whose allocator hands its freed outputs back to the OS between
calls, and faults them back in on the next one, says so; that cost is where the memory
comes from, not the peer's kernel.
"""
import gc
import math
import os
import time

try:
    import resource
except ImportError:         # not POSIX: no fault counters
    resource = None

__all__ = ["interleaved", "summarize", "Unavailable", "thread_cpu", "threads_report",
           "machine_busy", "clean_rounds", "page_faults"]


class Unavailable(Exception):
    """A peer cannot run here; ``status`` says why ("not installed", "not available yet",
    "no equivalent")."""

    def __init__(self, status, detail=""):
        super().__init__(f"{status}: {detail}" if detail else status)
        self.status = status
        self.detail = detail


def _time_calls(fn, number):
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        if gc_was_enabled:
            gc.enable()


def page_faults():
    """(minor, major) page faults of the whole process so far (every thread), or None
    where ``getrusage`` is missing."""
    if resource is None:
        return None
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_minflt, r.ru_majflt


def _faults_per_call(total, calls):
    if total is None or calls <= 0:
        return None
    return {"minor": total[0] / calls, "major": total[1] / calls}


def _thread_clock(tid):
    # Linux's CPU-time clock of one thread of this process (MAKE_THREAD_CPUCLOCK(tid,
    # CPUCLOCK_SCHED) in the kernel's posix-cpu-timers): nanosecond resolution, where
    # /proc's utime/stime count 10 ms ticks.
    return ((~tid) << 3) | 6


def thread_cpu():
    """CPU seconds of every thread of this process so far, {tid: seconds}; {} where the
    per-thread clocks cannot be read (not Linux)."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return {}
    out = {}
    for t in tids:
        try:
            out[int(t)] = time.clock_gettime(_thread_clock(int(t)))
        except (OSError, ValueError, AttributeError):
            pass            # the thread exited between the listing and the read
    return out


def machine_busy():
    """CPU seconds all processes of the machine have run so far (every core; the
    aggregate line of /proc/stat, in clock ticks: 10 ms resolution), or None where it
    cannot be read (not Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        # user nice system idle iowait irq softirq steal ...: all but idle and iowait
        ticks = [int(x) for x in fields[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def clean_rounds(others, limit):
    """The rounds in which no peer's sample shared the machine with more than
    ``limit`` cores' worth of other processes.

    Parameters
    ----------
    others : dict of str -> list of float or None
        Per peer, the CPU of other processes during each of its samples, in cores
        (``interleaved``'s "others"); None where it was not read.
    limit : float
        Cores of other work a clean sample tolerates.

    Returns
    -------
    list of int
        Indices of the rounds where every peer's sample was read and within ``limit``.

    Examples
    --------
    >>> clean_rounds({"a": [0.0, 0.9, 0.05], "b": [0.02, 0.0, 0.3]}, 0.1)
    [0]
    """
    lists = list(others.values())
    if not lists or any(o is None for o in lists):
        return []
    n = min(len(o) for o in lists)
    return [r for r in range(n)
            if all(o[r] is not None and o[r] <= limit for o in lists)]


def _add_cpu(acc, before, after):
    for tid, sec in after.items():
        d = sec - before.get(tid, 0.0)
        if d > 0:
            acc[tid] = acc.get(tid, 0.0) + d


def threads_report(cpu_by_thread, cpu, wall):
    """Summary of one peer's CPU use over ``wall`` timed seconds: ``cpu_per_wall`` (the
    process's CPU seconds, ``cpu``, per wall second: threads that exited count too, and
    so does a pool another peer left spinning, which then competed with this one) and
    ``threads_used`` (threads alive at the end of a sample that ran at least 10 % of the
    wall time). None when nothing was read."""
    if not cpu_by_thread or wall <= 0:
        return None
    busy = sum(1 for sec in cpu_by_thread.values() if sec >= 0.1 * wall)
    return {"cpu_per_wall": cpu / wall, "threads_used": max(busy, 1)}


def interleaved(fns, repeats, warmup=1, min_sample=0.0, max_number=10_000, warm_time=0.0,
                prime=0):
    """Time each callable of ``fns`` (name -> zero-argument callable).

    Parameters
    ----------
    fns : dict of str -> callable
        The peers, all doing the same work.
    repeats : int
        Samples per peer, taken round-robin with the order rotated every round.
    warmup : int
        Untimed calls per peer first (caches, lazy initialization, allocator).
        0: no warm-up and one call per sample.
    min_sample : float
        Seconds one sample should last at least; short calls are repeated ``number``
        times inside one sample.
    max_number : int
        Cap on ``number`` (and on the warm-up calls).
    warm_time : float
        Seconds of warm-up at least (more calls than ``warmup`` when they are short);
        the median warm-up call calibrates ``number``.
    prime : int
        Untimed calls of a peer right before each of its samples. The rotation keeps
        each peer's neighbours (A always follows C), so whatever a peer leaves in the
        caches always lands on the same next peer; a priming call gives every sample the
        caches of its own previous call, as in a loop of epochs.

    Returns
    -------
    dict of str -> dict with "samples" (seconds per call, list of length ``repeats``),
    "number" (calls per sample), "threads" (``threads_report`` of the timed samples, or
    None), "faults" ({"minor": ..., "major": ...} page faults per timed call, over all
    samples; None where they cannot be read) and "others" (per sample, the CPU the
    machine's other processes used during it, in cores: ``machine_busy`` less this
    process's own CPU, per wall second; None entries where /proc/stat cannot be read). A
    peer on several threads slows down far more when a neighbour takes a core than one
    on a single thread, so ``clean_rounds`` picks the rounds that ran on a quiet
    machine.
    """
    names = list(fns)
    number = {}
    for name in names:
        if warmup <= 0:          # no warm-up asked: no calibration either
            number[name] = 1
            continue
        # Warm up for at least `warmup` calls and `warm_time` seconds: first calls pay
        # lazy initialization (PyTorch's first softmax takes milliseconds).
        calls, start = [], time.perf_counter()
        while len(calls) < warmup or (time.perf_counter() - start < warm_time
                                      and len(calls) < max_number):
            calls.append(_time_calls(fns[name], 1))
        t = sorted(calls)[len(calls) // 2]
        number[name] = 1 if t >= min_sample else int(
            min(max_number, math.ceil(min_sample / max(t, 1e-9))))
    samples = {name: [] for name in names}
    cpu = {name: {} for name in names}
    others = {name: [] for name in names}
    process_cpu = dict.fromkeys(names, 0.0)
    faults = {name: [0, 0] for name in names} if resource is not None else None
    for r in range(repeats):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            for _ in range(prime):
                fns[name]()
            before, p0, m0 = thread_cpu(), time.process_time(), machine_busy()
            f0 = page_faults()
            samples[name].append(_time_calls(fns[name], number[name]))
            f1 = page_faults()
            own, m1 = time.process_time() - p0, machine_busy()
            if faults is not None:
                faults[name][0] += f1[0] - f0[0]
                faults[name][1] += f1[1] - f0[1]
            wall = samples[name][-1] * number[name]
            others[name].append(None if m0 is None or m1 is None or wall <= 0
                                else max(0.0, (m1 - m0 - own) / wall))
            process_cpu[name] += own
            _add_cpu(cpu[name], before, thread_cpu())
    return {name: {"samples": samples[name], "number": number[name],
                   "threads": threads_report(cpu[name], process_cpu[name],
                                             sum(samples[name]) * number[name]),
                   "faults": _faults_per_call(faults and faults[name],
                                              repeats * number[name]),
                   "others": others[name]}
            for name in names}


def _quantile(sorted_xs, q):
    # Linear interpolation between order statistics (NumPy's default method), so the
    # numbers here match np.percentile on the saved samples.
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def summarize(samples):
    """Median, quartiles and IQR of a list of numbers (empty list -> Nones)."""
    xs = sorted(samples)
    if not xs:
        return {"median": None, "q1": None, "q3": None, "iqr": None, "n": 0}
    q1, med, q3 = (_quantile(xs, q) for q in (0.25, 0.5, 0.75))
    return {"median": med, "q1": q1, "q3": q3, "iqr": q3 - q1, "n": len(xs),
            "min": xs[0], "max": xs[-1]}
