"""Derivation documents: golden strings, committed files up to date, pdflatex when present."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import sympy as sp

import stability as stb
from stability import symbols as S
from stability.cli import main
from stability.latex import NAMED, derive, latex

DERIVATIONS = Path(__file__).resolve().parents[1] / "derivations"


def test_printer_symbol_names():
    assert latex(S.lam_max) == r"\lambda_{\max}"
    assert latex(S.eta_kick) == r"\eta'"
    assert latex(S.q0 + S.xi) == r"q_{0} + \xi"
    assert (
        latex(stb.gd(S.alpha).update_matrix())
        == r"\left(\begin{matrix}- \alpha \lambda + 1\end{matrix}\right)"
    )


def test_golden_gd_steps():
    tex = derive("gd").to_latex(standalone=False)
    assert r"\alpha_{\mathrm{eff}} = - \frac{Q(1)}{P'(1)} = \alpha" in tex
    assert r"- \alpha \lambda_{\max} + 2 > 0" in tex
    assert r"\bar U_{\lambda} = - \frac{\alpha \lambda}{\alpha \lambda - 2}" in tex
    assert r"{w}_{t + 1} = - \alpha {g}_{t} + {w}_{t}" in tex


def test_golden_heavy_ball_region_and_circle():
    tex = derive("heavy_ball").to_latex(standalone=False)
    assert r"- \alpha \lambda_{\max} + 2 \beta + 2 > 0" in tex
    assert r"\text{True}" not in tex and r"\begin{gather*}\end{gather*}" not in tex
    d = derive("nesterov")
    titles = [s.title for s in d.steps]
    assert "Eigenvalue circle (Theorem 6.2)" in titles
    circle = d.steps[titles.index("Eigenvalue circle (Theorem 6.2)")].obj
    # Nesterov: centre = radius = beta/(1+beta)
    assert sp.simplify(circle[0].rhs - S.beta / (1 + S.beta)) == 0
    assert sp.simplify(circle[1].rhs ** 2 - (S.beta / (1 + S.beta)) ** 2) == 0


def test_derivation_objects_are_the_core_results():
    d = derive(stb.heavy_ball(S.alpha, S.beta))
    by_title = {s.title: s.obj for s in d.steps if s.title}
    assert (
        by_title["Effective learning rate"].rhs.rhs
        == stb.heavy_ball(S.alpha, S.beta).effective_lr()
    )
    assert d._repr_latex_().startswith("$$")


@pytest.mark.parametrize("name", NAMED)
def test_committed_derivations_are_up_to_date(name):
    committed = (DERIVATIONS / f"{name}.tex").read_text()
    assert committed == derive(name).to_latex(standalone=True), (
        f"regenerate with: python -m stability.latex derivations  ({name})"
    )


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
@pytest.mark.parametrize("name", NAMED)
def test_derivations_compile(name, tmp_path):
    src = tmp_path / f"{name}.tex"
    src.write_text((DERIVATIONS / f"{name}.tex").read_text())
    res = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", src.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout[-2000:]
    assert (tmp_path / f"{name}.pdf").stat().st_size > 1000


def test_cli_derive(tmp_path, capsys):
    assert main(["derive", "gd"]) == 0
    assert capsys.readouterr().out.startswith(r"\documentclass")
    out = tmp_path / "hb.tex"
    assert main(["derive", "heavy_ball", "--latex", str(out)]) == 0
    assert out.read_text() == (DERIVATIONS / "heavy_ball.tex").read_text()
    assert main(["derive", "gd", "--latex", str(tmp_path / "x.txt")]) == 2
    assert main(["derive", "adamw"]) == 2
    assert "error:" in capsys.readouterr().err
