"""Apply one fault at a time to a scratch copy of a tree, rebuild, and run verify there.

Design note
-----------
The tree (sources and its built ``.so`` files, ``build/`` with Cython's generated C) is
copied once to a *pristine* scratch copy, built there (a no-op when the tree's build is
current) and measured: every witness's digest and one ``python -m verify --quick`` that
must pass, or nothing a mutant does could be told from what the tree already does. Each
worker then copies the pristine tree once and, per fault:

1. records the size and mtime of every file under ``nnlib/`` and ``build/``;
2. applies the edit (the anchor must occur exactly once, else "orphaned");
3. rebuilds with ``setup.py build_ext --inplace``: copies keep their mtimes, so cythonize
   and setuptools recompile only the modules that depend on the edited file (a
   ``scalar.pxd.tp`` fault recompiles every module that cimports it, a ``vmath.h`` one all
   of them). A failed build is "invalid", never "killed"; a build that changed no
   extension is "invalid" too. When ``ccache`` is found (``ccache=`` / PATH) the compiler
   is ``ccache <CC>``: the same compiler and flags, so the same objects, and a fault run
   again (after verify changed) or a module whose generated C the fault leaves identical
   compiles from the cache;
4. evaluates the fault's witness: bit-identical to the pristine digest means the mutant
   is "equivalent" (no reachable input was shown to change), reported and not counted;
5. runs ``python -m verify --quick``: exit 1 is "killed" (by the failing items of its
   report.json), a crash is "killed" too (the run did not pass), exit 0 is "SURVIVED".
   A run that hits the time limit is "timed out": on a loaded machine a slow verify is
   no evidence that it saw the fault, so a time-out is listed apart, never counted as a
   kill;
6. restores every file that changed from the pristine copy, mtimes included, so the next
   fault rebuilds only its own modules.

The kill rate is killed / (killed + survived); invalid, equivalent and orphaned faults
are catalogue problems and listed apart, and so are time-outs (re-run them).
"""
import glob
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

__all__ = ["apply_fault", "FaultNotApplicable", "Runner", "kill_rate", "STATUSES",
           "dependents"]

STATUSES = ("killed", "SURVIVED", "timed out", "invalid", "equivalent", "orphaned", "error",
            "not run")

_IGNORE = shutil.ignore_patterns(".git", "out", "verify-report", ".hypothesis",
                                 ".pytest_cache", "__pycache__", "*.egg-info", ".venv*")
# where a build writes: snapshotted before a fault, restored after it
_BUILD_DIRS = ("nnlib", "build")
_WITNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "witness.py")


class FaultNotApplicable(ValueError):
    """The fault's anchor does not occur exactly once in its file."""


def _edit(text, anchor, replacement, where):
    n = text.count(anchor)
    if n != 1:
        raise FaultNotApplicable(f"anchor occurs {n} times in {where}: {anchor!r}")
    return text.replace(anchor, replacement)


def apply_fault(text, fault):
    """``text`` (the contents of ``fault.file``) with the fault applied.

    The main anchor is tried first, then each ``alt`` pair; ``also`` edits follow. Raises
    FaultNotApplicable when no anchor occurs exactly once or an edit changes nothing."""
    pairs = [(fault.anchor, fault.replacement)] + list(fault.alt)
    errors = []
    for anchor, replacement in pairs:
        if anchor == replacement:
            raise FaultNotApplicable(f"{fault.id}: a replacement equals its anchor")
        try:
            out = _edit(text, anchor, replacement, fault.file)
            break
        except FaultNotApplicable as exc:
            errors.append(str(exc))
    else:
        raise FaultNotApplicable(f"{fault.id}: " + "; ".join(errors))
    for anchor, replacement in fault.also:
        out = _edit(out, anchor, replacement, fault.file)
    if out == text:
        raise FaultNotApplicable(f"{fault.id}: the edit leaves the file unchanged")
    return out


_CIMPORT = re.compile(r"^\s*(?:from\s+nnlib\._kernels\.(\w+)\s+cimport|cimport\s+nnlib\."
                      r"_kernels\.(\w+))", re.M)
_EXTERN = re.compile(r'^\s*cdef\s+extern\s+from\s+"(\w+\.h)"', re.M)


def dependents(root, rel):
    """The extension modules (``.pyx`` stems) a change of ``rel`` must recompile, read
    from the sources: a template is its rendered file; a ``.pyx`` is itself; a ``.pxd``
    every module whose transitive ``cimport`` / ``cdef extern from`` closure (its own
    ``.pxd`` included) reaches it; a header every module, as setup.py lists the ``*.h``
    as every extension's ``depends``. The harness compares this with what a fault's
    build did recompile, so a rebuild that did too little (a stale module: the fault
    absent from code verify runs) or too much shows in the result."""
    kernels = os.path.join(root, "nnlib", "_kernels")
    name = os.path.basename(rel[:-3] if rel.endswith(".tp") else rel)
    pyx = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(kernels, "*.pyx")))
    if name.endswith(".pyx"):
        return [name[:-4]] if name[:-4] in pyx else []
    if name.endswith(".h"):
        return pyx
    deps = {}
    for p in glob.glob(os.path.join(kernels, "*.pyx")) + glob.glob(os.path.join(kernels,
                                                                                 "*.pxd")):
        with open(p, encoding="utf-8") as f:
            text = f.read()
        mods = {a or b for a, b in _CIMPORT.findall(text)}
        deps[os.path.basename(p)] = ({m + ".pxd" for m in mods}
                                     | set(_EXTERN.findall(text)))
    out = []
    for stem in pyx:
        seen, todo = set(), [stem + ".pyx"]
        if os.path.exists(os.path.join(kernels, stem + ".pxd")):
            todo.append(stem + ".pxd")
        while todo:
            f = todo.pop()
            if f not in seen:
                seen.add(f)
                todo.extend(deps.get(f, ()))
        if name in seen:
            out.append(stem)
    return out


def kill_rate(results):
    """(killed, counted) over the results whose status counts (killed or SURVIVED)."""
    killed = sum(r["status"] == "killed" for r in results)
    counted = killed + sum(r["status"] == "SURVIVED" for r in results)
    return killed, counted


def _snapshot(root):
    out = {}
    for d in _BUILD_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for name in files:
                p = os.path.join(dirpath, name)
                st = os.stat(p)
                out[os.path.relpath(p, root)] = (st.st_mtime_ns, st.st_size)
    return out


def _restore(work, pristine, before):
    """Make every file under the build dirs of ``work`` what it was in ``before`` (copied
    from ``pristine``, which ``work`` was copied from); returns the changed paths."""
    changed = []
    now = _snapshot(work)
    for rel, stat in now.items():
        if before.get(rel) == stat:
            continue
        changed.append(rel)
        src = os.path.join(pristine, rel)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(work, rel))
        else:
            os.remove(os.path.join(work, rel))
    for rel in before.keys() - now.keys():       # deleted by the build: put back
        changed.append(rel)
        shutil.copy2(os.path.join(pristine, rel), os.path.join(work, rel))
    return changed


def _tail(text, n=1500):
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


def _setup_build(python, jobs):
    """``setup.py -q build_ext --inplace -j jobs`` with cythonize also run on ``jobs``
    processes (setup.py cythonizes serially; a scalar.pxd fault re-cythonizes six modules,
    which on a loaded machine took longer than compiling them)."""
    jobs = max(1, int(jobs))
    code = ("import sys, Cython.Build as B\n"
            "_c = B.cythonize\n"
            f"B.cythonize = lambda *a, **k: _c(*a, **dict(k, nthreads={jobs}))\n"
            f"sys.argv = ['setup.py', '-q', 'build_ext', '--inplace', '-j', '{jobs}']\n"
            "exec(compile(open('setup.py').read(), 'setup.py', 'exec'), "
            "{'__name__': '__main__', '__file__': 'setup.py'})\n")
    return [python, "-c", code]


class Runner:
    """Runs faults against a tree. ``build_cmd`` / ``verify_cmd`` / ``python`` are the
    commands used and ``witness(root, faults) -> {id: {"digest", "summary"}}`` evaluates
    witnesses (tests substitute cheap ones); ``log`` receives progress lines."""

    def __init__(self, tree, workdir=None, jobs=1, build_jobs=2, keep=False,
                 build_cmd=None, verify_cmd=None, python=sys.executable,
                 verify_timeout=None, build_timeout=1800, witness=None, log=print,
                 ccache="auto"):
        self.tree = os.path.abspath(tree)
        self.jobs = max(1, int(jobs))
        self.keep = keep
        self.python = python
        self.build_cmd = build_cmd or _setup_build(python, build_jobs)
        self.verify_cmd = verify_cmd or [python, "-m", "verify", "--quick"]
        self.build_timeout = build_timeout
        self.verify_timeout = verify_timeout
        self.log = log
        self.ccache = shutil.which("ccache") if ccache == "auto" else ccache
        self.witness = witness or self._witness
        self.workdir = workdir or tempfile.mkdtemp(prefix="nnlib-mutants-")
        os.makedirs(self.workdir, exist_ok=True)
        self.pristine = os.path.join(self.workdir, "pristine")
        self.baseline = None
        self._log_lock = threading.Lock()

    # -- commands -------------------------------------------------------------------------
    def _run(self, cmd, cwd, timeout, env_extra=None):
        t0 = time.perf_counter()
        env = dict(os.environ, **(env_extra or {}))
        env.pop("PYTHONPATH", None)           # the tree under test comes first: cwd
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing new in the tree but the build's files
        try:
            r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=timeout)
            return r.returncode, r.stdout, r.stderr, time.perf_counter() - t0
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return None, out, f"timed out after {timeout} s", time.perf_counter() - t0

    def _build(self, root):
        return self._run(self.build_cmd, root, self.build_timeout, self._compiler_env())

    def _compiler_env(self):
        """``CC`` for the build: ``ccache`` in front of the interpreter's own compiler
        command (setuptools keeps CFLAGS and LDSHARED's flags; only the command changes)."""
        if not self.ccache or "CC" in os.environ:
            return {}
        cc = sysconfig.get_config_var("CC") or "cc"
        # the scratch copies differ only in their directory: -g records it, and ccache
        # would otherwise miss between them (the code is the same; only the debug
        # info's compilation directory differs)
        return {"CC": f"{self.ccache} {cc}", "CCACHE_NOHASHDIR": "1"}

    def _witness(self, root, faults):
        path = os.path.join(self.workdir, f"witness-{threading.get_ident()}.json")
        with open(path, "w") as f:
            json.dump([[x.id, x.witness] for x in faults], f)
        rc, out, err, _ = self._run([self.python, _WITNESS, path], root, 600)
        if rc != 0:
            raise RuntimeError(f"witness run failed (rc {rc}): {_tail(err)}")
        return json.loads(out.strip().splitlines()[-1])

    def _verify(self, root, report_dir):
        timeout = self.verify_timeout
        if timeout is None:
            base = (self.baseline or {}).get("verify_seconds") or 120.0
            timeout = max(900.0, 6 * base)
        rc, out, err, secs = self._run(self.verify_cmd + ["--out", report_dir], root,
                                       timeout)
        failed = []
        try:
            with open(os.path.join(report_dir, "report.json")) as f:
                data = json.load(f)
            failed = [f"{it['name']} ({it.get('verdict', 'FAIL')})"
                      for it in data.get("items", []) if not it.get("passed")]
        except (OSError, ValueError):
            pass
        return rc, failed, out, err, secs

    # -- the pristine copy ------------------------------------------------------------------
    def prepare(self, faults):
        """Copy, build and measure the pristine tree; raises if its verify fails."""
        t0 = time.perf_counter()
        saved = os.path.join(self.workdir, "baseline.json")
        if os.path.exists(saved):             # a resumed run in the same workdir
            with open(saved) as f:
                self.baseline = json.load(f)
            if all(x.id in self.baseline["digests"] for x in faults):
                self.log("pristine tree measured before (workdir reused)")
                return self.baseline
        if not os.path.isdir(self.pristine):
            tc = time.perf_counter()
            shutil.copytree(self.tree, self.pristine, symlinks=True, ignore=_IGNORE)
            self.log(f"copied {self.tree} -> {self.pristine} in "
                     f"{time.perf_counter() - tc:.1f} s"
                     + (f"; compiler: {self._compiler_env()['CC']}"
                        if self._compiler_env() else ""))
        before = _snapshot(self.pristine)
        rc, _, err, bsecs = self._build(self.pristine)
        if rc != 0:
            raise RuntimeError(f"the unmutated tree does not build: {_tail(err)}")
        rebuilt = sorted(p for p, s in _snapshot(self.pristine).items()
                         if p.endswith((".so", ".pyd")) and before.get(p) != s)
        self.log(f"pristine build {bsecs:.0f} s"
                 + (f" (brought up to date: {', '.join(rebuilt)})" if rebuilt else " (current)"))
        digests = self.witness(self.pristine, faults)
        self.log("pristine verify --quick ...")
        rc, failed, out, err, vsecs = self._verify(self.pristine,
                                                  os.path.join(self.workdir, "report-pristine"))
        if rc != 0:
            raise RuntimeError(f"verify --quick fails on the unmutated tree (rc {rc}): "
                               f"{failed[:5] or _tail(err)}")
        self.log(f"pristine verify passed in {vsecs:.0f} s")
        self.baseline = {"digests": digests, "verify_seconds": round(vsecs, 1),
                         "build_seconds": round(bsecs, 1), "rebuilt": rebuilt,
                         "seconds": round(time.perf_counter() - t0, 1)}
        with open(saved, "w") as f:
            json.dump(self.baseline, f)
        return self.baseline

    # -- one fault ----------------------------------------------------------------------------
    def run_fault(self, fault, work):
        """Result dict of one fault on the worker copy ``work`` (left as it was found)."""
        t0 = time.perf_counter()
        res = {"id": fault.id, "file": fault.file, "kind": fault.kind, "family": fault.family,
               "path": fault.path, "description": fault.description, "killed_by": [],
               "build_seconds": None, "verify_seconds": None, "detail": ""}
        target = os.path.join(work, fault.file)
        before = _snapshot(work)
        try:
            with open(target, encoding="utf-8") as f:
                text = f.read()
            try:
                mutated = apply_fault(text, fault)
            except FaultNotApplicable as exc:
                return dict(res, status="orphaned", detail=str(exc),
                            seconds=round(time.perf_counter() - t0, 1))
            with open(target, "w", encoding="utf-8") as f:
                f.write(mutated)
            rc, _, err, bsecs = self._build(work)
            res["build_seconds"] = round(bsecs, 1)
            if rc != 0:
                return dict(res, status="invalid", detail="does not build: " + _tail(err, 600),
                            seconds=round(time.perf_counter() - t0, 1))
            rebuilt = sorted(p for p, s in _snapshot(work).items()
                             if p.endswith((".so", ".pyd")) and before.get(p) != s)
            res["rebuilt"] = sorted({os.path.basename(p).split(".")[0] for p in rebuilt})
            expected = dependents(work, fault.file)
            if res["rebuilt"] != expected:
                res["rebuild_mismatch"] = {"expected": expected}
            if not rebuilt:
                return dict(res, status="invalid", detail="the build changed no extension",
                            seconds=round(time.perf_counter() - t0, 1))
            tw = time.perf_counter()
            got = self.witness(work, [fault])[fault.id]
            res["witness_seconds"] = round(time.perf_counter() - tw, 1)
            want = self.baseline["digests"][fault.id]
            res["witness"] = {"pristine": want["summary"], "mutant": got["summary"]}
            if got["digest"] == want["digest"]:
                return dict(res, status="equivalent",
                            detail="the witness is bit-identical to the unmutated tree's",
                            seconds=round(time.perf_counter() - t0, 1))
            report = os.path.join(self.workdir, f"report-{fault.id}")
            rc, failed, out, err, vsecs = self._verify(work, report)
            res["verify_seconds"] = round(vsecs, 1)
            if rc == 0:
                status = "SURVIVED"
            elif rc == 1 and failed:
                status, res["killed_by"] = "killed", failed
            elif rc is None:
                status, res["detail"] = "timed out", err
            else:
                status, res["killed_by"] = "killed", [f"verify crashed (rc {rc})"]
                res["detail"] = _tail(err, 600)
            if not self.keep:
                shutil.rmtree(report, ignore_errors=True)
            return dict(res, status=status, seconds=round(time.perf_counter() - t0, 1))
        except Exception as exc:                   # the harness itself: report, go on
            return dict(res, status="error", detail=repr(exc),
                        seconds=round(time.perf_counter() - t0, 1))
        finally:
            _restore(work, self.pristine, before)

    # -- the whole catalogue ------------------------------------------------------------------
    def run(self, faults, on_result=None):
        """Results of every fault, in catalogue order (``jobs`` workers in parallel)."""
        if self.baseline is None:
            self.prepare(faults)
        todo = queue.Queue()
        for i, f in enumerate(faults):
            todo.put((i, f))
        results = [None] * len(faults)

        def worker(k):
            work = os.path.join(self.workdir, f"work{k}")
            if not os.path.isdir(work):
                tc = time.perf_counter()
                shutil.copytree(self.pristine, work, symlinks=True)
                self.log(f"worker {k}: scratch copy {time.perf_counter() - tc:.1f} s")
            while True:
                try:
                    i, f = todo.get_nowait()
                except queue.Empty:
                    return
                r = self.run_fault(f, work)
                results[i] = r
                with self._log_lock:
                    if on_result:
                        on_result(r)
                    self.log(_line(r, i + 1, len(faults)))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(self.jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def cleanup(self):
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _line(r, i, n):
    by = f" by {r['killed_by'][0]}" if r["killed_by"] else ""
    return f"[{i}/{n}] {r['id']}: {r['status']}{by} ({r['seconds']:.0f} s)"
