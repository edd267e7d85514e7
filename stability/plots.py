"""Matplotlib figures (imported lazily: the symbolic core never imports matplotlib).

Every function takes ``ax=`` (a new figure is made when omitted) and returns the artists it
drew; library code never calls ``plt.show()``. Numbers come from :mod:`stability.checkers`,
:mod:`stability.geometry` and :mod:`stability.regions`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .algorithms import MemoryAlgorithm
from .checkers.families import lr_momentum_grid
from .ltv.verdicts import ltv_verdict
from .noise.curves import SumCurve
from .regions.geometry import eigenvalue_locus, eigenvalues_over, stability_triangle
from .regions.verdicts import is_strictly_stable

__all__ = [
    "plot_eigenvalue_locus",
    "plot_filter_response",
    "plot_find_lr",
    "plot_heavy_ball_vs_memory1",
    "plot_loss_curves",
    "plot_lr_momentum_region",
    "plot_monitor",
    "plot_schedule_verdict",
    "plot_stability_sum",
    "plot_stability_curve",
    "plot_stability_sum_vs_lr",
    "plot_stability_triangle",
]


def _axes(ax: Any):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 4.5))
    return ax


def plot_stability_triangle(
    beta: float,
    lambda_max: float = 1.0,
    configs: list[MemoryAlgorithm] | None = None,
    ax: Any = None,
):
    """The stable ``(q0, q1)`` triangle at fixed ``beta`` (Theorem 6.1), configs marked.

    Stable configs (exact verdict on ``(0, lambda_max]``) are filled dots, unstable ones crosses.
    """
    ax = _axes(ax)
    tri = stability_triangle(beta, lambda_max)
    pts = np.array([[float(a), float(b)] for a, b in tri.vertices])
    artists = [
        ax.fill(
            pts[:, 0],
            pts[:, 1],
            alpha=0.25,
            color="tab:green",
            label=f"stable, beta={float(beta):g}",
        )[0]
    ]
    closed = np.vstack([pts, pts[:1]])
    artists += ax.plot(closed[:, 0], closed[:, 1], color="tab:green")
    markers = ["o", "s", "D", "^", "v", "P"]
    for i, alg in enumerate(configs or []):
        t = alg.triplet()
        ok = bool(is_strictly_stable(alg, lambda_max))
        name = alg.name.replace("_", " ")
        q0, q1 = (0.0 if abs(float(x)) < 1e-12 else float(x) for x in (t.q0, t.q1))
        artists += ax.plot(
            q0,
            q1,
            markers[i % len(markers)] if ok else "X",
            color=f"C{i % 10}" if ok else "tab:red",
            ms=8,
            ls="none",
            label=f"{name}: q0={q0:.3g}, q1={q1:.3g} ({'stable' if ok else 'UNSTABLE'})",
        )
    ax.set_xlabel(r"$q_0$ (gradient weight on the state: 0 for heavy ball)")
    ax.set_ylabel(r"$q_1$ (gradient weight on the step)")
    ax.set_title(
        rf"memory-1 triangle (Theorem 6.1): stable iff inside, $\lambda_{{\max}}={lambda_max:g}$",
        fontsize=10,
    )
    ax.axhline(0, color="0.7", lw=0.5)
    ax.axvline(0, color="0.7", lw=0.5)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    return artists


def plot_lr_momentum_region(
    family: str = "heavy_ball",
    lambda_max: float = 1.0,
    lr: Any = None,
    momentum: Any = None,
    ax: Any = None,
    configs: list[tuple[float, float]] | None = None,
    **fixed: float,
):
    """Certified stable region in the ``(lr, momentum)`` plane at a given ``lambda_max``."""
    ax = _axes(ax)
    lr = np.linspace(1e-3, 5.0 / lambda_max, 400) if lr is None else np.asarray(lr)
    momentum = np.linspace(0.0, 0.999, 300) if momentum is None else np.asarray(momentum)
    LR, MOM, m = lr_momentum_grid(family, lambda_max=lambda_max, lr=lr, momentum=momentum, **fixed)
    artists = [
        ax.contourf(
            LR, MOM, m.stable.astype(float), levels=[0.5, 1.5], colors=["tab:green"], alpha=0.35
        )
    ]
    artists.append(ax.contour(LR, MOM, m.margin, levels=[0.0], colors="k", linewidths=1))
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(color="tab:green", alpha=0.35, label="strictly stable (certified)"),
        Line2D([], [], color="k", lw=1, label="boundary (smallest margin = 0)"),
    ]
    for lr_i, mom_i in configs or []:
        artists += ax.plot(lr_i, mom_i, "k*", ms=11)
        handles.append(
            Line2D([], [], marker="*", color="k", ls="none", ms=11,
                   label=f"the configuration (lr {lr_i:g}, momentum {mom_i:g})")
        )  # fmt: skip
    ax.set_xlabel("learning rate")
    ax.set_ylabel("momentum")
    ax.set_title(
        f"{family.replace('_', ' ')}: stable for every curvature in (0, {lambda_max:g}]",
        fontsize=10,
    )
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    return artists


def plot_eigenvalue_locus(alg: MemoryAlgorithm, lambda_max: float, n: int = 600, ax: Any = None):
    """Eigenvalues of ``S_lambda`` for ``lambda`` in ``(0, lambda_max]`` with the unit circle
    and, for memory 1, the Theorem 6.2 circle (or line)."""
    ax = _axes(ax)
    lams = np.linspace(lambda_max / n, lambda_max, n)
    ev = eigenvalues_over(alg, lams)
    artists = []
    for j in range(ev.shape[-1]):
        artists.append(
            ax.scatter(
                ev[:, j].real, ev[:, j].imag, c=lams, s=4, cmap="viridis",
                label="eigenvalues of S_lambda" if j == 0 else None,
            )
        )  # fmt: skip
    ax.figure.colorbar(artists[0], ax=ax, label=r"curvature $\lambda$", fraction=0.046, pad=0.04)
    t = np.linspace(0, 2 * np.pi, 400)
    artists += ax.plot(np.cos(t), np.sin(t), color="0.5", lw=0.8, label="unit circle")
    if alg.M == 1:
        try:
            locus = eigenvalue_locus(alg)
        except ValueError:
            locus = None
        if locus is not None and locus.kind == "circle":
            c, r = float(locus.center), float(locus.radius)
            artists += ax.plot(
                c + r * np.cos(t), r * np.sin(t), "r--", lw=1, label="Theorem 6.2 circle"
            )
        elif locus is not None and locus.kind == "line":
            artists.append(
                ax.axvline(float(locus.line_re), color="r", ls="--", label="Theorem 6.2 line")
            )
    ax.set_aspect("equal")
    ax.set_xlabel(r"Re $\xi$")
    ax.set_ylabel(r"Im $\xi$")
    ax.set_title(
        rf"eigenvalues of $S_\lambda$ ({alg.name.replace('_', ' ')}), "
        rf"$0<\lambda\leq{lambda_max:g}$",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper left")
    return artists


def plot_stability_sum(curve: SumCurve, ax: Any = None):
    """Stability sum ``U`` against batch size (:func:`stability.curves.stability_sum_vs_batch`),
    with the ``U = 1`` threshold."""
    ax = _axes(ax)
    f = curve.finite
    artists = ax.loglog(curve.x[f], curve.U[f], "o-", label=curve.label)
    artists.append(ax.axhline(1.0, color="r", ls="--", label="U = 1 (divergence)"))
    ax.set_xlabel(curve.xlabel)
    ax.set_ylabel("stability sum U")
    ax.set_title("mini-batch noise: bounded iff U < 1")
    ax.legend(fontsize=8)
    return artists


def plot_loss_curves(
    curves: dict[str, np.ndarray], predicted_slopes: dict[str, float] | None = None, ax: Any = None
):
    """Loss trajectories on log-log axes with dashed lines of the predicted exponents."""
    ax = _axes(ax)
    artists = []
    for name, L in curves.items():
        t = np.arange(len(L))
        line = ax.loglog(t[1:], L[1:], label=name)[0]
        artists.append(line)
        if predicted_slopes and name in predicted_slopes:
            s = predicted_slopes[name]
            t_ref = t[len(t) // 10]
            ref = L[t_ref] * (t[1:] / t_ref) ** s
            artists += ax.loglog(
                t[1:], ref, "--", color=line.get_color(), lw=0.8, label=f"predicted slope {s:.2f}"
            )
    ax.set_xlabel("step t")
    ax.set_ylabel("mean loss L_t")
    ax.set_title("loss trajectories (exact SE second-moment recursion)")
    ax.legend(fontsize=8)
    return artists


def plot_stability_sum_vs_lr(curve: SumCurve, batch_size: float, ax: Any = None):
    """Stability sum ``U`` against the learning rate (:func:`stability.curves.stability_sum_vs_lr`),
    with the first rate whose second-moment map is unstable."""
    ax = _axes(ax)
    f = curve.finite
    artists = ax.semilogy(curve.x[f], curve.U[f], "o-", ms=3, label=curve.label)
    if (~f).any():
        artists.append(
            ax.axvline(curve.x[~f].min(), color="k", ls=":", label="second-moment map unstable")
        )
    artists.append(ax.axhline(1.0, color="r", ls="--", label="U = 1"))
    ax.set_xlabel(curve.xlabel)
    ax.set_ylabel("stability sum U")
    ax.set_title(f"noise stability at batch size {batch_size:g}")
    ax.legend(fontsize=8)
    return artists


def plot_heavy_ball_vs_memory1(curves: tuple[SumCurve, ...], ax: Any = None):
    """Theorem 7 (:func:`stability.curves.heavy_ball_vs_memory1`): ``U`` of heavy ball and of
    memory-1 methods with ``q0 > 0`` at equal effective learning rate (each curve's label says
    its ``q0`` and ``kappa``, the rate ``1 - beta = alpha_eff^-kappa``)."""
    ax = _axes(ax)
    artists = []
    styles = ("o-", "s-", "^--", "D:")
    for i, curve in enumerate(curves):
        artists += ax.loglog(curve.x, curve.U, styles[i % len(styles)], label=curve.label)
    artists.append(ax.axhline(1.0, color="r", ls="--", label="U = 1 (above: the noise diverges)"))
    ax.set_xlabel(curves[0].xlabel)
    ax.set_ylabel("stability sum U")
    ax.set_title("Theorem 7: a large alpha_eff needs q0 > 0 and kappa >= nu/(nu - 1)", fontsize=10)
    ax.legend(fontsize=8)
    return artists


def _yes(x: Any) -> str:
    return "yes" if x else ("no" if x is False else "undecided (finite horizon)")


def plot_schedule_verdict(filt: Any, lr: float, sched: Any, ax: Any = None, legend: bool = True):
    """``alpha[t]`` and the frozen pole ``beta r[t]`` along a schedule (``r[t] = F[t]/F[t-1]``,
    log scale), titled with the LTV verdict in words: BIBO (bounded gradients give bounded
    steps) and UES (the momentum filter forgets its past exponentially,
    ``|Phi(t, s)| <= C rho^(t-s)``); the frozen-pole test ``beta r[t] < 1`` is sufficient for
    UES, never necessary."""

    ax = _axes(ax)
    v = ltv_verdict(filt, lr, sched)
    t = np.arange(sched.values.size)
    artists = ax.plot(t, lr * sched.values, color="C0", label="learning rate alpha[t] = lr F[t]")
    ax2 = ax.twinx()
    artists += ax2.semilogy(
        t[1:], float(filt.beta) * np.maximum(sched.ratio, 1e-300), "C1", lw=0.8,
        label="frozen pole beta r[t] (right axis, log)",
    )  # fmt: skip
    artists.append(ax2.axhline(1.0, color="r", ls="--", lw=0.8, label="beta r[t] = 1"))
    ax.set_xlabel("step t")
    ax.set_ylabel("learning rate alpha[t]")
    ax2.set_ylabel("frozen pole beta r[t]")
    ax.set_title(
        f"{sched.name.replace('_', ' ')}: BIBO {_yes(v.bibo)}, UES {_yes(v.ues)} "
        f"(C = {v.ues_constant:.3g}, rho = {v.ues_rate:.3g})",
        fontsize=9,
    )
    if legend:
        lines = [a for a in artists if hasattr(a, "get_label")]
        ax.legend(lines, [a.get_label() for a in lines], loc="best", fontsize=7)
    return artists


def plot_filter_response(filt: Any, n: int = 40, axes: Any = None):
    """Impulse response and magnitude of the frequency response of an AutoSGM filter."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    t = np.arange(n)
    h = np.array([float(filt.impulse_response(int(k))) for k in t])
    artists = [axes[0].stem(t, h)]
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("h[t]")
    axes[0].set_title("impulse response")
    om = np.linspace(0, np.pi, 400)
    artists += axes[1].plot(om, np.abs(filt.frequency_response(om)))
    axes[1].set_xlabel("frequency omega")
    axes[1].set_ylabel("|H(e^{i omega})|")
    axes[1].set_title(f"DC gain {float(filt.dc_gain):.3g}")
    return artists


def plot_monitor(history: Any, ax: Any = None):
    """A :class:`~stability.training.StabilityMonitor`'s history: sharpness and threshold
    against the optimizer step (log scale), the edge of stability where they meet; checks above
    the threshold and a collapsed run are marked. A mini-batch history (a batch size given)
    shows its two ratios instead: the learning rate over the mean-square limit and the
    sharpness over the full-batch threshold, the edge at 1."""
    ax = _axes(ax)
    if any(np.isfinite(getattr(r, "noise_ratio", np.nan)) for r in history):
        return _plot_monitor_ratios(history, ax)
    steps = np.array([r.step for r in history])
    sharp = np.array([r.sharpness for r in history])
    artists = ax.semilogy(steps, sharp, "o-", ms=3, label="sharpness (top Hessian eigenvalue)")
    artists += ax.semilogy(
        steps, [r.threshold for r in history], "--", label="stability threshold at the current lr"
    )
    above = np.array([r.ratio > 1 and not r.collapsed for r in history], dtype=bool)
    if above.any():
        artists += ax.semilogy(steps[above], sharp[above], "o", color="tab:red", ms=6,
                               label="above the threshold")  # fmt: skip
    artists += _mark_monitor_events(
        ax,
        history,
        "the schedule crosses the limit (predicted: step {})",
        "run collapsed (loss rose)",
    )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("curvature (Hessian eigenvalue)")
    ax.set_title("stability monitor: sharpness vs threshold")
    ax.legend(fontsize=8, loc="best")
    return artists


def _mark_monitor_events(ax: Any, history: Any, crossing: str, collapse: str) -> list:
    """Vertical lines at a history's first predicted crossing (``crossing`` formatted with the
    step) and its first collapsed check."""
    artists = []
    ahead = [r.crossing_step for r in history if r.crossing_step is not None]
    if ahead:
        artists.append(
            ax.axvline(ahead[0], color="tab:red", ls="--", lw=0.8, label=crossing.format(ahead[0]))
        )
    collapsed = [r.step for r in history if r.collapsed]
    if collapsed:
        artists.append(ax.axvline(collapsed[0], color="k", ls=":", label=collapse))
    return artists


def _plot_monitor_ratios(history: Any, ax: Any) -> list:
    """A mini-batch monitor's history: its two ratios against the optimizer step (log scale),
    the edge at 1, warnings and a collapse marked."""
    steps = np.array([r.step for r in history])
    noise = np.array([r.noise_ratio for r in history])
    sharp = np.array([r.sharpness_ratio for r in history])
    B = next(r.batch_size for r in history if r.batch_size is not None)
    artists = ax.semilogy(steps, noise, "o-", ms=3, label=f"lr / mean-square limit at B = {B}")
    artists += ax.semilogy(steps, sharp, "s--", ms=3, label="sharpness / full-batch threshold")
    artists.append(ax.axhline(1.0, color="k", lw=0.8, label="the edge (ratio 1)"))
    above = np.array([r.ratio > 1 and not r.collapsed for r in history], dtype=bool)
    if above.any():
        worst = np.array([r.ratio for r in history])
        artists += ax.semilogy(steps[above], worst[above], "o", color="tab:red", ms=6,
                               label="above the edge")  # fmt: skip
    artists += _mark_monitor_events(
        ax, history, "predicted crossing (step {})", "run collapsed (loss 10x its first)"
    )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("stability ratio (1 = the edge)")
    ax.set_title("stability monitor: the run's ratios")
    ax.legend(fontsize=8, loc="best")
    return artists


def plot_stability_curve(curve: Any, ax: Any = None):
    """A :class:`~stability.curve.StabilityCurve`: the largest stable learning rate against the
    batch size (log-log), the noiseless limit and the knee."""
    ax = _axes(ax)
    b, lr = curve.batch_sizes, curve.max_lr
    artists = ax.loglog(b, lr, "o-", label="largest stable lr (data model, certified)")
    artists.append(
        ax.axhline(curve.noiseless_lr, color="k", ls="--", lw=1,
                   label=f"noiseless limit {curve.noiseless_lr:.3g}")
    )  # fmt: skip
    if np.isfinite(curve.knee):
        artists.append(
            ax.axvline(curve.knee, color="tab:red", ls=":", lw=1.2,
                       label=f"knee B = {curve.knee:.0f} ({curve.knee_fraction:.0%} of the limit)")
        )  # fmt: skip
    ax.set_xlabel("batch size B")
    ax.set_ylabel("largest stable learning rate")
    ax.set_title("stability curve: lr_max(B)")
    ax.legend(fontsize=8, loc="lower right")
    return artists


_VERDICT_STYLE = {
    "stable": ("o", "tab:green", "made progress"),
    "catapult": ("^", "tab:olive", "catapult (spiked, recovered)"),
    "saturated": ("s", "tab:purple", "saturated (no progress, no divergence)"),
    "stalled": ("s", "tab:purple", "stalled (no progress, no divergence)"),
    "rising": ("v", "tab:orange", "rising (confirmation failed)"),
    "divergent": ("x", "tab:red", "diverged"),
}


def plot_find_lr(result: Any, ax: Any = None, truth: float | None = None):
    """A :func:`~stability.training.find_lr` result on a learning-rate axis: each probe's
    peak loss over its start, marked by what it did (filled marks: the search, outlined: the
    confirmation runs), with the quadratic edge, the largest stable and the recommended
    learning rates, and ``truth`` (a limit measured by full training runs) when given."""
    if ax is None:  # room on the right for the legend
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 4.5))
        fig.subplots_adjust(left=0.08, right=0.62, bottom=0.12, top=0.92)
    artists = []
    seen: set[str] = set()
    for p in sorted(result.probes, key=lambda p: p.lr):
        marker, color, label = _VERDICT_STYLE[p.verdict]
        peak = min(p.peak, 1e4)
        confirm = p.role == "confirm"
        text = label + (" - confirmation run" if confirm else "")
        if p.peak > 1e4:
            text += " (peak capped at 1e4)"
        artists += ax.loglog(
            [p.lr], [peak], marker, color=color, ms=9 if confirm else 7,
            mfc="none" if confirm else color, mew=2 if confirm else 1.5,
            label=None if text in seen else text, ls="none",
        )  # fmt: skip
        seen.add(text)
    lines = [
        (result.edge, "tab:blue", ":", "quadratic edge (data model at the start)"),
        (result.largest_stable_lr, "black", "-", "largest stable lr (find_lr)"),
        (result.recommended_lr, "tab:green", "--", "recommended lr"),
        (truth, "tab:red", "-.", "measured limit (full training runs)"),
    ]
    for x, color, style, label in lines:
        if x is not None and x > 0 and np.isfinite(x):
            artists.append(ax.axvline(x, color=color, ls=style, lw=1.5, label=f"{label}: {x:.3g}"))
    ax.axhline(1000, color="0.5", lw=0.8)
    ax.text(ax.get_xlim()[0], 1000, " divergence (1000x start)", va="bottom", fontsize=8,
            color="0.4")  # fmt: skip
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(
        FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    )
    ax.set_xlabel("learning rate (group 0)")
    ax.set_ylabel("peak batch loss / starting loss")
    ax.set_title(f"find_lr: B = {result.batch_size}, probes of {result.probe_steps} steps")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return artists
