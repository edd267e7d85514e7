"""examples/first_look.ipynb runs top to bottom in a real Jupyter kernel (nbclient), and its
outputs are the rich displays a notebook user sees: the report's HTML badge and tables, the
derivation's Markdown/LaTeX, the configuration's table, the monitor history's table and its
figure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "first_look.ipynb"


@pytest.mark.timeout(600)
def test_the_notebook_runs_and_shows_rich_outputs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
            data = {}
            for o in cell.outputs:
                data.update(o.get("data", {}))
            outputs[cell.source.splitlines()[-1]] = data
    report = outputs["report"]
    assert "STABLE</span>" in report["text/html"] and "<table>" in report["text/html"]
    assert "caveats</summary>" in report["text/html"]
    assert report["text/plain"].startswith("Report(stable: torch.optim.SGD(")
    derivation = next(v for k, v in outputs.items() if k.startswith("derive("))
    assert "**3. Characteristic polynomial.**" in derivation["text/markdown"]
    assert "\\text{True}" not in derivation["text/latex"]
    assert "heavy\\_ball" in outputs["stb.heavy_ball(S.alpha, S.beta)"]["text/latex"]
    opt = next(v for k, v in outputs.items() if k.startswith("opt = ") or k == "opt")
    assert "effective learning rate" in opt["text/markdown"]
    data = next(v for k, v in outputs.items() if "data=(X, y)" in k)
    assert "UNSTABLE</span>" in data["text/html"] and "rho" in data["text/html"]
    shown = outputs["monitor.history"]["text/html"]
    checks = int(re.search(r"MonitorHistory\((\d+) checks", shown).group(1))
    assert checks >= 11 and shown.count("<tr") == 1 + checks  # header, checks
    assert re.search(r"predicted|COLLAPSED", outputs["monitor.history"]["text/plain"])
    assert any("image/png" in v for v in outputs.values())
