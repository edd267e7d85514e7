"""The :class:`Report` that :func:`stability.check` returns, and how it presents itself: plain
text, a JSON-safe dictionary, and rich notebook reprs."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Report", "ReportSet"]


@dataclass
class Report:
    """Verdict (``stable``/``unstable``/``marginal``), margins, numbers and caveats."""

    verdict: str
    source: str
    config: dict[str, Any]
    algorithm: str
    spectrum: str
    effective_lr: float
    strict: dict[str, Any]
    spectral_radius: float | None = None
    noise: dict[str, Any] | None = None
    max_stable_lr: float | None = None
    schedule: dict[str, Any] | None = None
    caveats: list[str] = field(default_factory=list)
    groups: list[Report] = field(default_factory=list)
    max_lr_binding: str | None = None
    adam: dict[str, Any] | None = None
    limiting_group: int | None = None

    def __repr__(self) -> str:
        if self.groups:
            return f"Report({self.verdict}: {self._groups_head()})"
        cfg = ", ".join(f"{k}={v}" for k, v in self.config.items())
        return f"Report({self.verdict}: {self.source}({cfg}) on {self.spectrum})"

    @property
    def stable(self) -> bool:
        return self.verdict == "stable"

    def __bool__(self) -> bool:
        """``if check(...):`` passes only a ``stable`` verdict (not ``marginal`` or
        ``unstable``), like :class:`~stability.regions.StabilityResult`."""
        return self.stable

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary: infinities as strings, floats to 15 significant digits (the
        float noise of derived values dropped; margins keep their relative precision)."""

        def clean(x: Any) -> Any:
            if isinstance(x, dict):
                return {str(k): clean(v) for k, v in x.items()}
            if isinstance(x, list | tuple):
                return [clean(v) for v in x]
            if isinstance(x, bool) or x is None or isinstance(x, str):
                return x
            if isinstance(x, int | np.integer):
                return int(x)
            try:
                f = float(x)
            except (TypeError, ValueError):
                return str(x)
            if not math.isfinite(f):
                return "inf" if f > 0 else ("-inf" if f < 0 else "nan")
            return float(f"{f:.15g}")  # 0.1 / (1 - 0.9) is 1, not 1.0000000000000002

        out = {
            k: getattr(self, k)
            for k in (
                "verdict",
                "source",
                "config",
                "algorithm",
                "spectrum",
                "effective_lr",
                "strict",
                "spectral_radius",
                "noise",
                "max_stable_lr",
                "max_lr_binding",
                "schedule",
                "adam",
                "caveats",
            )
        }
        if self.groups:
            out["groups"] = [g.to_dict() for g in self.groups]
            out["limiting_group"] = self.limiting_group
        return clean(out)

    def _groups_head(self) -> str:
        """``worst of N parameter groups; group g sets the limit (lr ..., ...)``."""
        head = f"worst of {len(self.groups)} parameter groups"
        if self.limiting_group is None:
            return head
        g = self.groups[self.limiting_group]
        lr = g.config.get("lr", g.config.get("learning_rate"))
        what = []
        if g.schedule and g.schedule.get("peak_lr") is not None:
            what.append(f"scheduled lr up to {g.schedule['peak_lr']:.6g}")
        elif lr is not None:
            what.append(f"lr {float(lr):.6g}")
        if g.max_stable_lr is not None:
            what.append(f"largest stable lr {g.max_stable_lr:.6g}")
        inner = f" ({', '.join(what)})" if what else ""
        return f"{head}; group {self.limiting_group} sets the limit{inner}"

    def __str__(self) -> str:
        if self.groups:
            head = f"{self.verdict.upper()}: {self._groups_head()}"
            return "\n\n".join([head, *(f"[group {i}]\n{g}" for i, g in enumerate(self.groups))])
        cfg = ", ".join(f"{k}={v}" for k, v in self.config.items())
        s = self.strict
        lines = [
            f"{self.verdict.upper()}: {self.source}({cfg}) on {self.spectrum}",
            f"  effective learning rate: {self.effective_lr:.6g}",
            f"  noiseless (exact): {'stable' if s['stable'] else 'UNSTABLE'} — {s['reason']}",
            f"    critical curvature {_fmt(s['lambda_crit'])} "
            f"(headroom {_fmt(s['headroom'])}x the largest curvature)",
        ]
        for c in s["conditions"]:
            lines.append(
                f"    [{'ok' if c['holds'] else 'FAIL'}] {c['name']}: "
                f"min margin {_fmt(c['min_value'])}"
            )
        if self.spectral_radius is not None:
            rho = self.spectral_radius
            rate = f", ~{-1 / math.log(rho):.3g} steps per e-fold" if 0 < rho < 1 else ""
            lines.append(f"  spectral radius (worst curvature): {_radius(rho)}{rate}")
        if self.noise is not None and self.noise.get("kind") == "data":
            lines += _data_lines(self.noise)
        elif self.noise is not None:
            n = self.noise
            lines.append(
                f"  mini-batch noise ({n['model']}, B={n['batch_size']:g}): "
                f"U = {_fmt(n['U'])} -> {'bounded' if n['bounded'] else 'DIVERGES'}"
                f" (margin 1 - U = {_fmt(n['margin'])})"
            )
            if math.isfinite(n["U"]):
                lines.append(
                    f"    certified: |U - {n['U']:.6g}| <= {n['tolerance']:.2g}"
                    + (" (within rounding of 1: reported as not bounded)" if n["undecided"] else "")
                )
            lines.append(f"    critical batch size: {_fmt(n['critical_batch_size'])}")
        if self.adam is not None:
            a = self.adam
            lines.append(
                f"  Adam (frozen preconditioner): preconditioned sharpness {_fmt(a['sharpness'])} "
                f"vs threshold {_fmt(a['threshold'])} (ratio {_fmt(a['ratio'])})"
            )
            lines.append(f"    {a['meaning']}")
        if self.max_stable_lr is not None:
            bind = f" ({self.max_lr_binding})" if self.max_lr_binding else ""
            lines.append(f"  largest stable lr at these settings: {self.max_stable_lr:.6g}{bind}")
        if self.schedule is not None:
            lines += _schedule_lines(self.schedule)
        lines += [f"  caveat: {c}" for c in self.caveats]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Notebooks: a verdict badge, the key numbers, the conditions with their margins, and
        the caveats and the full text folded."""
        e = html.escape
        badge = (
            f'<span style="background:{_COLOURS[self.verdict]};color:white;padding:2px 8px;'
            f'border-radius:4px;font-weight:bold">{e(self.verdict.upper())}</span>'
        )
        if self.groups:
            inner = "".join(
                f"<details open><summary>group {i}</summary>{g._repr_html_()}</details>"
                for i, g in enumerate(self.groups)
            )
            return f"<div>{badge} {html.escape(self._groups_head())}{inner}</div>"
        cfg = ", ".join(f"{k}={v}" for k, v in self.config.items())
        head = f"<p>{badge} <code>{e(self.source)}({e(cfg)})</code> on {e(self.spectrum)}</p>"
        rows = "".join(
            f"<tr><td>{e(name)}</td><td>{e(value)}</td></tr>" for name, value in self._key_rows()
        )
        conds = "".join(
            f"<tr><td>{'&#10003;' if c['holds'] else '&#10007;'}</td><td>{e(c['name'])}</td>"
            f"<td>{e(_fmt(c['min_value']))}</td></tr>"
            for c in self.strict["conditions"]
        )
        caveats = "".join(f"<li>{e(c)}</li>" for c in self.caveats)
        return (
            f"<div>{head}<table>{rows}</table>"
            "<p><b>Conditions</b> (exact; the smallest margin over the curvatures)</p>"
            f"<table><tr><th></th><th>condition</th><th>min margin</th></tr>{conds}</table>"
            f"<details><summary>{len(self.caveats)} caveats</summary><ul>{caveats}</ul></details>"
            f"<details><summary>full report</summary><pre>{e(str(self))}</pre></details></div>"
        )

    def _key_rows(self) -> list[tuple[str, str]]:
        """The numbers a reader acts on, as (name, value) rows."""
        s = self.strict
        rows = [
            ("effective learning rate", _fmt(self.effective_lr)),
            (
                "noiseless verdict (exact)",
                f"{'stable' if s['stable'] else 'UNSTABLE'}: {s['reason']}",
            ),
            ("critical curvature", f"{_fmt(s['lambda_crit'])} (headroom {_fmt(s['headroom'])}x)"),
        ]
        if self.spectral_radius is not None:
            rows.append(("spectral radius (worst curvature)", _radius(self.spectral_radius)))
        n = self.noise
        if n is not None and n.get("kind") == "data":
            rows.append(("mini-batch noise (data)", f"rho = {_fmt(n['rho'])} in "
                         f"[{_fmt(n['lower'])}, {_fmt(n['upper'])}]"))  # fmt: skip
            rows.append(("Gaussian model, same H", f"U = {_fmt(n['gaussian']['U'])}"))
        elif n is not None:
            rows.append((f"mini-batch noise ({n['model']})", f"U = {_fmt(n['U'])}"))
        if n is not None:
            rows.append(("critical batch size", _fmt(n["critical_batch_size"])))
        if self.max_stable_lr is not None:
            rows.append(("largest stable lr here", _fmt(self.max_stable_lr)))
        return rows

    def _repr_latex_(self) -> str:
        s = self.strict
        return (
            rf"$\text{{{self.verdict}}}:\ \alpha_{{\mathrm{{eff}}}} = {self.effective_lr:.4g},"
            rf"\ \lambda_{{\mathrm{{crit}}}} = {_fmt(s['lambda_crit'])}$"
        )


_COLOURS = {"stable": "#2e7d32", "marginal": "#ef6c00", "unstable": "#c62828"}


def _radius(rho: float) -> str:
    """A spectral radius: within 1e-4 of 1 it is shown as ``1 - gap`` (``%.6g`` would print
    a slowly decaying mode as 1)."""
    if 0 < 1 - rho < 1e-4:
        return f"1 - {1 - rho:.3g}"
    return f"{rho:.6g}"


def _fmt(x: Any) -> str:
    if isinstance(x, str):
        return x
    if x is None:
        return "n/a"
    return f"{x:.6g}" if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _data_lines(n: dict[str, Any]) -> list[str]:
    """The data model's verdict: rho with its certified bounds, the critical batch size, the
    per-sample curvature and the Gaussian model's figures beside it."""
    state = "bounded" if n["bounded"] else ("UNDECIDED" if n["undecided"] else "DIVERGES")
    lines = [
        f"  mini-batch noise (model: data, exact mean-square; B={n['batch_size']:g} drawn "
        f"{n['sampling'].replace('_', ' ')}): rho = {_fmt(n['rho'])} -> {state}",
        f"    certified: {_fmt(n['lower'])} <= rho <= {_fmt(n['upper'])} (bounded iff rho < 1)",
        f"    critical batch size: {_fmt(n['critical_batch_size'])}",
    ]
    p = n["per_sample"]
    c = p["sample_lambda_max"]
    lines.append(
        f"    per-sample curvature lambda_max(H_i) over {p['samples']} samples: median "
        f"{_fmt(c['median'])}, 99th percentile {_fmt(c['p99'])}, max {_fmt(c['max'])} "
        f"(lambda_max(H) = {_fmt(p['lambda_max_H'])}); noise level "
        f"{p['noise_level_vs_gaussian']:.3g}x that of Gaussian data with this H"
    )
    if "implied_lr_bound" in n:
        lines.append(
            f"    one sample alone: lr <= 2B(1 - momentum)/max lambda_max(H_i) = "
            f"{_fmt(n['implied_lr_bound'])} (a rough guide; rho is the condition)"
        )
    g = n["gaussian"]
    g_lr = g.get("max_stable_lr")
    lines.append(
        f"    Gaussian model on the same H, for comparison: U = {_fmt(g['U'])} -> "
        f"{'bounded' if g['bounded'] else 'DIVERGES'}"
        + (f", largest stable lr {_fmt(g_lr)}" if g_lr is not None else "")
    )
    if "subspace" in n:
        sub = n["subspace"]
        lines.append(
            f"    subspace: rho {_fmt(sub['rho_half'])} with {sub['dimension'] // 2} "
            f"directions, {_fmt(n['rho'])} with {sub['dimension']}"
        )
    return lines


def _schedule_lines(sc: dict[str, Any]) -> list[str]:
    """The schedule: its range, whether every step is stable, and the LTV words explained."""
    moms = sc.get("momentum_range")
    mom = f", momentum {moms[0]:.4g} to {moms[1]:.4g}" if moms else ""
    lines = [
        f"  schedule {sc['name']}: {sc['horizon']} steps, lr peaks at {_fmt(sc['peak_lr'])}{mom}"
    ]
    if sc.get("peak_stable") is not None:
        if sc["peak_stable"]:
            lines.append(
                "    every scheduled step is stable at this curvature (largest stable lr at "
                f"the current settings: {_fmt(sc['limit_lr'])})"
            )
        else:
            lines.append(
                f"    UNSTABLE from step {sc['first_unstable_step']}: its lr "
                f"{_fmt(sc['lr_at_first_unstable_step'])} is not stable at this curvature "
                f"(largest stable lr at the current settings: {_fmt(sc['limit_lr'])})"
            )

    def word(x: Any) -> str:
        return "yes" if x else ("no" if x is False else "finite horizon, every value finite")

    lines.append(
        f"    LTV view: BIBO {word(sc['bibo'])} (bounded gradients give bounded steps; gain "
        f"{_fmt(sc['bibo_gain'])}), UES {word(sc['ues'])} (the momentum filter forgets "
        f"its past exponentially); frozen-pole margin {_fmt(sc['frozen_pole_margin'])} "
        "(below 1 is sufficient, not necessary)"
    )
    return lines


_ORDER = {"unstable": 0, "marginal": 1, "stable": 2}


class ReportSet(list):
    """One :class:`Report` per setting of a :func:`stability.check` over several batch sizes,
    with a table of them; ``verdict`` is the worst, ``bool(...)`` true only if all are
    stable."""

    @property
    def verdict(self) -> str:
        return min((r.verdict for r in self), key=lambda v: _ORDER[v])

    @property
    def stable(self) -> bool:
        return all(r.stable for r in self)

    def __bool__(self) -> bool:
        return self.stable

    def rows(self) -> list[tuple[Any, str, Any, Any, Any]]:
        """``(batch size, verdict, rho or U, largest stable lr, critical batch size)``."""
        out = []
        for r in self:
            noise = r.noise or {}
            value = noise.get("rho", noise.get("U"))
            out.append(
                (noise.get("batch_size"), r.verdict, value, r.max_stable_lr,
                 noise.get("critical_batch_size"))
            )  # fmt: skip
        return out

    def table(self) -> str:
        lines = [
            f"{len(self)} settings: {self.verdict.upper()} at worst",
            f"  {'batch size':>10}  {'verdict':>9}  {'rho / U':>11}  {'largest lr':>11}  "
            f"{'critical B':>10}",
        ]
        for b, v, x, lr, crit in self.rows():
            lines.append(
                f"  {_fmt(b):>10}  {v:>9}  {_fmt(x):>11}  {_fmt(lr):>11}  {_fmt(crit):>10}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return "\n\n".join([self.table(), *(str(r) for r in self)])

    def __repr__(self) -> str:
        return f"ReportSet({len(self)} settings, {self.verdict} at worst)"

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "settings": [r.to_dict() for r in self]}

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th>{h}</th>"
            for h in ("batch size", "verdict", "rho / U", "largest lr", "critical B")
        )
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(c) if not isinstance(c, str) else c)}</td>"
                             for c in row) + "</tr>"
            for row in self.rows()
        )  # fmt: skip
        return f"<p>{html.escape(repr(self))}</p><table><tr>{head}</tr>{rows}</table>"
