"""The ``dask`` benchmark section runs as users run it (``python -m bench --only dask``,
minimal sizes) and reports the cost model the README quotes. Never timings."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask.array")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_dask_section_measures_steps_and_the_cost_model(tmp_path):
    env = dict(os.environ, NNLIB_BENCH_TINY="1",
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH"))
                                          if p))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "bench", "--quick", "--threads", "1",
                        "--only", "dask", "--out", str(out)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    section = results["workloads"]["dask"]
    tables = {t["name"]: t for t in section["tables"]}
    assert set(tables) == {"dask_communication", "dask_one_vs_two", "dask_model_averaging"}
    for row in tables["dask_one_vs_two"]["rows"]:
        for col in ("one process", "dask 1 worker", "dask 2 workers"):
            cell = row["cells"][col]
            assert cell["status"] == "ok" and all(s > 0 for s in cell["samples"])
    accs = [c["accuracy"] for c in tables["dask_model_averaging"]["rows"][0]["cells"]
            .values()]
    assert len(accs) == 3 and all(0.0 <= a <= 1.0 for a in accs)
    model = section["cost_model"]
    assert model["seconds_per_row"] > 0 and model["param_bytes"] > 0
    assert all(b > 0 for b in model["break_even_batch"].values())
    md = (out / "results.md").read_text()
    assert "N workers win from a batch of about" in md
