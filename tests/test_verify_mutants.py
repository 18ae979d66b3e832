"""verify.mutants: the fault catalogue stays in sync with the kernels, and the harness
classifies what a mutant does. No rebuild: the harness runs on a toy tree whose "build"
and "verify" are small scripts (``python -m verify.mutants`` itself is not run in CI)."""
import json
import os
import sys

import numpy as np
import pytest

from verify.mutants import witness
from verify.mutants.catalogue import FAMILIES, FAULTS, HELD_OUT, Fault, by_id
from verify.mutants.harness import (FaultNotApplicable, Runner, apply_fault, dependents,
                                    kill_rate)
from verify.mutants.report import markdown, summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = FAULTS + HELD_OUT
IDS = [f.id for f in ALL]


def _source(fault):
    with open(os.path.join(ROOT, fault.file), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("fault", ALL, ids=IDS)
def test_fault_applies_to_the_current_kernels(fault):
    """Exactly one anchor of the fault occurs exactly once and the edit changes the file:
    a kernel edit that orphans a fault fails here, so the catalogue is kept in sync."""
    assert fault.file.startswith("nnlib/_kernels/")
    text = _source(fault)
    assert fault.replacement != fault.anchor
    assert all(a != r for a, r in fault.alt + fault.also)
    mutated = apply_fault(text, fault)
    assert mutated != text
    present = [a for a, _ in ((fault.anchor, fault.replacement),) + fault.alt if a in text]
    assert present and all(text.count(a) == 1 for a in present)


@pytest.mark.parametrize("fault", ALL, ids=IDS)
def test_witness_runs_on_the_current_build(fault):
    """The witness (the input on which the fault changes the numbers) evaluates without
    an error on the unmutated build and yields numbers."""
    v = witness.value(fault.witness)
    leaves = v if isinstance(v, (list, tuple)) else [v]
    assert all(np.asarray(x).dtype.kind in "fiu" for x in leaves)


def test_catalogue_covers_every_family_kind_and_path():
    assert len(by_id()) == len(FAULTS) + len(HELD_OUT) and len(FAULTS) >= 40
    assert {f.family for f in FAULTS} == set(FAMILIES)
    kinds = {f.kind for f in FAULTS}
    assert {"kink", "tie", "cancellation", "float32", "off-by-one", "factor",
            "dropped-mean", "index"} <= kinds
    paths = " ".join(f.path for f in FAULTS)
    for needle in ("wide rows", "heapsort", "n_threads > 1", "VEC_BLOCK", "float32",
                   "batch 1", "l2_per_batch"):
        assert needle in paths, needle


def test_apply_fault_refuses_missing_repeated_and_identity_edits():
    f = Fault("t", "x.pyx", "a = 1", "a = 2", "factor", "d", "dense", "p", "0")
    assert apply_fault("a = 1\n", f) == "a = 2\n"
    for text in ("b = 1\n", "a = 1\na = 1\n"):
        with pytest.raises(FaultNotApplicable):
            apply_fault(text, f)
    with pytest.raises(FaultNotApplicable, match="equals"):
        apply_fault("a = 1\n", f._replace(replacement="a = 1"))
    moved = f._replace(alt=(("a = LIMIT", "a = 2"),))
    assert apply_fault("a = LIMIT\n", moved) == "a = 2\n"


# ---- the harness on a toy tree ----------------------------------------------------------
# "build": copies k.pyx to k.so unless it says SYNTAX (a compile error) or is unchanged;
# "verify": fails (exit 1, a report.json naming the check) when k.so says BAD.
BUILD = """
import os, sys
src, so = "nnlib/_kernels/k.pyx", "nnlib/_kernels/k.so"
text = open(src).read()
if "SYNTAX" in text:
    sys.exit("k.pyx:1: syntax error")
if not os.path.exists(so) or open(so).read() != text:
    open(so, "w").write(text)
"""
VERIFY = """
import json, os, sys
out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out, exist_ok=True)
bad = "BAD" in open("nnlib/_kernels/k.so").read()
json.dump({"items": [{"name": "k_check", "passed": not bad, "verdict": "FAIL"}]},
          open(os.path.join(out, "report.json"), "w"))
sys.exit(1 if bad else 0)
"""


def _toy_witness(root, faults):
    # the toy kernel's "value": its built text with comments dropped
    with open(os.path.join(root, "nnlib/_kernels/k.so")) as f:
        code = f.read().split("#")[0].strip()
    return {x.id: {"digest": code, "summary": code.strip()} for x in faults}


def _toy_fault(fid, replacement, anchor="x = 1"):
    return Fault(fid, "nnlib/_kernels/k.pyx", anchor, replacement, "factor", "toy",
                 "dense", "toy path", "0")


@pytest.fixture
def toy_runner(tmp_path):
    tree = tmp_path / "tree"
    (tree / "nnlib" / "_kernels").mkdir(parents=True)
    (tree / "build").mkdir()
    (tree / "nnlib" / "_kernels" / "k.pyx").write_text("x = 1\n")
    (tree / "build.py").write_text(BUILD)
    (tree / "verify_toy.py").write_text(VERIFY)
    return Runner(str(tree), workdir=str(tmp_path / "work"),
                  build_cmd=[sys.executable, "build.py"],
                  verify_cmd=[sys.executable, "verify_toy.py"], witness=_toy_witness,
                  log=lambda s: None)


def test_harness_classifies_each_outcome_and_restores_the_tree(toy_runner, tmp_path):
    faults = [_toy_fault("caught", "x = 2  # BAD"),
              _toy_fault("missed", "x = 3"),
              _toy_fault("does-not-build", "x = SYNTAX"),
              _toy_fault("same-numbers", "x = 1  # a comment only"),
              _toy_fault("orphaned", "y = 2", anchor="y = 1")]
    results = toy_runner.run(faults)
    status = {r["id"]: r["status"] for r in results}
    assert status == {"caught": "killed", "missed": "SURVIVED", "does-not-build": "invalid",
                      "same-numbers": "equivalent", "orphaned": "orphaned"}
    caught = results[0]
    assert caught["killed_by"] == ["k_check (FAIL)"] and caught["rebuilt"] == ["k"]
    assert "does not build" in results[2]["detail"]
    assert kill_rate(results) == (1, 2)
    assert summary(results).startswith("killed 1 of 2 (50 %)")
    work = tmp_path / "work" / "work0" / "nnlib" / "_kernels"
    assert (work / "k.pyx").read_text() == "x = 1\n" == (work / "k.so").read_text()
    data = {"meta": {"command": "c", "started": "s", "seconds": 1.0, "jobs": 1, "tree": "t",
                     "commit": "abc", "baseline": toy_runner.baseline},
            "results": results}
    md = markdown(data)
    assert "**SURVIVED**" in md and "killed by k_check (FAIL)" in md
    json.dumps(data)


def test_harness_refuses_a_tree_whose_verify_already_fails(toy_runner):
    so = os.path.join(toy_runner.tree, "nnlib", "_kernels", "k.pyx")
    with open(so, "w") as f:
        f.write("x = 1  # BAD\n")
    with pytest.raises(RuntimeError, match="unmutated tree"):
        toy_runner.prepare([_toy_fault("caught", "x = 2")])


def test_harness_counts_a_nothing_rebuilt_edit_as_invalid(toy_runner, tmp_path):
    # a build command that never writes an extension: the edit cannot have been compiled
    toy_runner.build_cmd = [sys.executable, "-c", "pass"]
    os.makedirs(os.path.join(toy_runner.tree, "nnlib", "_kernels"), exist_ok=True)
    with open(os.path.join(toy_runner.tree, "nnlib", "_kernels", "k.so"), "w") as f:
        f.write("x = 1\n")
    (r,) = toy_runner.run([_toy_fault("caught", "x = 2  # BAD")])
    assert r["status"] == "invalid" and "changed no extension" in r["detail"]


def test_harness_lists_a_verify_time_out_apart_never_as_a_kill(toy_runner, tmp_path):
    # on a loaded machine a slow verify says nothing about the fault: "timed out" is not
    # counted (neither killed nor survived) and the summary names it
    slow = ("import sys, time\nif 'SLOW' in open('nnlib/_kernels/k.so').read():\n"
            "    time.sleep(30)\n")
    (tmp_path / "tree" / "verify_toy.py").write_text(slow + VERIFY)
    toy_runner.verify_timeout = 3
    results = toy_runner.run([_toy_fault("slow", "x = 2  # SLOW BAD"),
                              _toy_fault("caught", "x = 2  # BAD")])
    assert [r["status"] for r in results] == ["timed out", "killed"]
    assert results[0]["killed_by"] == [] and "timed out" in results[0]["detail"]
    assert kill_rate(results) == (1, 1)
    assert "timed out: slow" in summary(results)


def test_dependents_follow_templates_cimports_and_headers():
    """What a fault's rebuild must recompile, read from the kernels' sources: the harness
    flags a build that recompiled anything else (or less)."""
    k = "nnlib/_kernels/"
    assert dependents(ROOT, k + "train.pyx") == ["train"]
    assert dependents(ROOT, k + "activations.pyx.tp") == ["activations"]
    # scalar.pxd (rendered from its template) reaches every module that cimports it,
    # directly or through dense.pxd / loss_rows.pxd, and no other
    scalar = dependents(ROOT, k + "scalar.pxd.tp")
    assert {"activations", "elementary", "dense", "losses", "output_maps", "train"} <= set(
        scalar)
    assert not {"blas", "parallel", "sparse", "paths"} & set(scalar)
    assert dependents(ROOT, k + "loss_rows.pxd") == ["losses", "output_maps", "train"]
    assert dependents(ROOT, k + "optim_rules.pxd.tp") == ["optim", "optim_wide", "train"]
    every = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "nnlib", "_kernels"))
                   if f.endswith(".pyx"))
    assert dependents(ROOT, k + "vmath.h") == every       # setup.py's depends: every *.h


def test_dependents_on_a_toy_chain(tmp_path):
    d = tmp_path / "nnlib" / "_kernels"
    d.mkdir(parents=True)
    (d / "low.pxd").write_text('cdef extern from "low.h":\n    double f(double)\n')
    (d / "mid.pxd").write_text("from nnlib._kernels.low cimport f\n")
    (d / "top.pyx").write_text("from nnlib._kernels.mid cimport f\n")
    (d / "own.pxd").write_text("cdef double g(double)\n")
    (d / "own.pyx").write_text("from cython cimport floating\n")
    (d / "other.pyx").write_text("x = 1\n")
    root = str(tmp_path)
    assert dependents(root, "nnlib/_kernels/low.pxd") == ["top"]
    assert dependents(root, "nnlib/_kernels/mid.pxd.tp") == ["top"]
    assert dependents(root, "nnlib/_kernels/own.pxd") == ["own"]   # its own .pxd
    assert dependents(root, "nnlib/_kernels/low.h") == ["other", "own", "top"]


def test_runner_compiles_through_ccache_with_the_interpreters_compiler(tmp_path,
                                                                      monkeypatch):
    import sysconfig
    monkeypatch.delenv("CC", raising=False)
    r = Runner(str(tmp_path), workdir=str(tmp_path / "w"), ccache="/opt/bin/ccache")
    cc = sysconfig.get_config_var("CC") or "cc"
    assert r._compiler_env() == {"CC": "/opt/bin/ccache " + cc, "CCACHE_NOHASHDIR": "1"}
    assert Runner(str(tmp_path), workdir=str(tmp_path / "w"), ccache=None)._compiler_env() \
        == {}
    monkeypatch.setenv("CC", "clang")        # a compiler the user chose is left alone
    assert r._compiler_env() == {}
