"""Certified searches for the largest stable learning rate (the critical batch size is in
:mod:`stability.checkers.batches`).

Both search a monotone verdict (stable for learning rates in ``(0, lr*)``, bounded noise for
batch sizes ``B >= B*``) with candidates decided by certified checks, never by floats alone.
Where a whole bracket of candidates can be decided in one vectorised call, it is: the memory-1
triplet of every SGD family is proportional to the learning rate at fixed momentum (checked on
the configuration itself), so the strict conditions and the certified noise bounds of
:mod:`stability.checkers.bounds` take 66 candidate rates per round; a memory-1 algorithm on a
finite spectrum takes 66 candidate batch sizes per round. Everything else (larger memories,
infinite power laws, ``tau2 > 0``) asks the certified :func:`~stability.noise.stability_sum`
one candidate at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .. import progress
from .._values import to_exact, to_float, to_sympy
from ..algorithms import MemoryAlgorithm
from ..errors import ConfigError
from ..methods import _exact_value, get_method, torch_sgd
from ..noise.data import DataNoise, NumericAlgorithm
from ..noise.models import NoiseModel, get_noise_model
from ..noise.persample import batch_factor
from ..noise.spectra import PowerLawSpectrum, Spectrum, as_spectrum
from ..noise.sums import _check_shift, stability_sum
from ..optimizers import ConfiguredOptimizer, from_optimizer
from ..regions.verdicts import is_strictly_stable
from .bounds import memory1_noise_bounds
from .triplets import memory1_interval_margins

__all__ = ["curvature_interval", "largest_stable_lr", "max_stable_lr"]

_ROUND = 66  # candidates per vectorised round (64 inside the bracket)
_SPAN = 2.0**120  # how far from the start a search looks, either way


@dataclass(frozen=True)
class _Family:
    """The configurations along the learning rate, the other settings fixed: ``build(lr)``
    and, for memory <= 1, ``triplets(lr) -> (beta, q0, q1)`` vectorised over an array of
    learning rates (the triplet as an exact expression in ``lr``, lambdified)."""

    build: Callable[[float], MemoryAlgorithm]
    lr0: float
    triplets: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]] | None
    shift: Fraction
    builds_to: list[float] = field(default_factory=lambda: [0.0], compare=False, repr=False)
    """The largest learning rate the family is known to build at (its domain is an interval
    from 0), so that a search does not build a sympy algorithm per round to find out."""


_LR = sp.Symbol("lr", positive=True)


_TRIPLETS: dict[Any, Any] = {}  # the lambdified triplets per family (``_family``'s ``key``)


def _family(
    build: Callable[[Any], MemoryAlgorithm],
    lr0: float,
    shift: Fraction,
    exact: Callable[[Any], Any],
    key: Any = None,
) -> _Family:
    """The family; ``exact(lr)`` builds it from the exact values of the fixed settings, so
    that at ``lr`` a sympy symbol it gives the triplet as an exact expression in ``lr``. A
    hashable ``key`` naming the settings remembers that (sympy) construction."""
    if key is not None and key in _TRIPLETS:
        return _Family(build, lr0, _TRIPLETS[key], shift)
    fam = _symbolic_family(build, lr0, shift, exact)
    if key is not None:
        if len(_TRIPLETS) > 256:
            _TRIPLETS.clear()
        _TRIPLETS[key] = fam.triplets
    return fam


def _symbolic_family(
    build: Callable[[Any], MemoryAlgorithm],
    lr0: float,
    shift: Fraction,
    exact: Callable[[Any], Any],
) -> _Family:
    triplets = None
    try:
        symbolic = exact(_LR)
    except ConfigError:
        symbolic = None
    if symbolic is not None and symbolic.M <= 1:
        t = symbolic.triplet() if symbolic.M == 1 else (0, 0, -symbolic.alpha)
        beta = sp.sympify(t[0])
        # a momentum within rounding of 1 (momentum = 1 - 1e-26 typed exactly) is 1.0 as a
        # float: the vectorised checks would decide another algorithm; the exact path decides
        near_one = beta.is_number and 1 - abs(beta) < sp.Rational(1, 10**12)
        if not near_one and all(sp.sympify(x).free_symbols <= {_LR} for x in t):
            f = sp.lambdify(_LR, list(t), modules="numpy")

            def triplets(lr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                b, x0, x1 = (np.broadcast_to(np.asarray(v, dtype=float), lr.shape) for v in f(lr))
                return b, x0, x1

    return _Family(build, lr0, triplets, shift)


def _in_domain(fam: _Family, lr: np.ndarray) -> np.ndarray:
    """Where the family is defined: the learning rates at which it builds (AdamW refuses
    ``lr * weight_decay >= 2``), checked at the largest candidate first (usually the only
    check needed, the domain being an interval from 0)."""
    top = float(lr.max()) if lr.size else 0.0
    if lr.size == 0 or top <= fam.builds_to[0]:
        return np.ones(lr.shape, dtype=bool)
    if fam.builds_to[0] == 0.0:  # first call: most families build at any learning rate
        far = max(top, fam.lr0) * 2.0**60
        if _build(fam, far) is not None:
            fam.builds_to[0] = far
            return np.ones(lr.shape, dtype=bool)
    if _build(fam, top) is not None:
        fam.builds_to[0] = top
        return np.ones(lr.shape, dtype=bool)
    return np.array([_build(fam, float(x)) is not None for x in lr.ravel()]).reshape(lr.shape)


def _build(fam: _Family, lr: float) -> MemoryAlgorithm | None:
    """The family's algorithm at ``lr``, or ``None`` outside the family's domain (AdamW
    refuses ``lr * weight_decay >= 2``: the decay alone would flip the weights)."""
    try:
        return fam.build(float(lr))
    except ConfigError:
        return None


_BUILT: dict[tuple[Any, ...], MemoryAlgorithm] = {}  # algorithms per (settings, lr)


def _config_family(opt: ConfiguredOptimizer) -> _Family | None:
    if opt.kind is None:
        return None
    kind, key = opt.kind.name, opt.kind.lr_key
    exact_config = {k: _exact_value(v)[0] for k, v in opt.config.items()}

    settings = (kind, repr(sorted((k, repr(v)) for k, v in opt.config.items() if k != key)))

    def build(lr: float) -> MemoryAlgorithm:  # searches build the same lr more than once
        where = (*settings, float(lr))
        if where not in _BUILT:
            if len(_BUILT) > 1024:
                _BUILT.clear()
            cfg = {"optimizer": kind, **opt.config, key: float(lr)}
            _BUILT[where] = from_optimizer(cfg)[0].algorithm
        return _BUILT[where]

    def exact(lr: Any) -> MemoryAlgorithm:
        return from_optimizer({"optimizer": kind, **exact_config, key: lr})[0].algorithm

    shift = _check_shift(opt.curvature_shift)[1]
    exact_key = (kind, repr(sorted((k, repr(v)) for k, v in exact_config.items() if k != key)))
    return _family(build, float(opt.config[key]), shift, exact, key=exact_key)


def _method_family(family: str, fixed: dict[str, Any], lam_top: float) -> _Family:
    """A registry family or ``torch_sgd`` (momentum, dampening, weight_decay, nesterov)."""
    if family == "torch_sgd":
        allowed = {"momentum", "dampening", "weight_decay", "nesterov"}
        unknown = sorted(set(fixed) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {unknown} for family 'torch_sgd'; allowed: "
                "momentum, dampening, weight_decay, nesterov"
            )
        fixed = dict(fixed)
        shift = _check_shift(fixed.pop("weight_decay", 0))[1]
        torch_sgd(1.0, **fixed)  # validates the fixed settings once
        exact = {k: _exact_value(v)[0] for k, v in fixed.items()}
        return _family(
            lambda lr: torch_sgd(lr, **fixed), 1 / lam_top, shift, lambda lr: torch_sgd(lr, **exact)
        )
    method = get_method(family)
    if "lr" not in method.parameters:
        raise ConfigError(f"family {family!r} has no lr parameter")
    missing = set(method.parameters) - {"lr"} - set(fixed)
    if missing:
        raise ConfigError(f"family {family!r} needs {sorted(missing)} fixed by keyword")
    exact = {k: _exact_value(v)[0] for k, v in fixed.items()}
    return _family(
        lambda lr: method.numeric(lr=lr, **fixed),
        1 / lam_top,
        Fraction(0),
        lambda lr: method.numeric(lr=lr, **exact),
    )


def _strict_predicate(fam: _Family, lambda_max: Any, spec: Any) -> Callable[[np.ndarray], Any]:
    """Certified strict stability of each candidate learning rate."""
    shift = fam.shift
    if fam.triplets is not None:
        lo, hi = curvature_interval(lambda_max, spec, shift)
        triplets = fam.triplets

        def vectorised(lr: np.ndarray) -> np.ndarray:
            beta, q0, q1 = triplets(lr)
            ok = np.array(
                memory1_interval_margins(beta=beta, q0=q0, q1=q1, lambda_lo=lo, lambda_hi=hi)
                .stable, dtype=bool
            )  # fmt: skip
            if ok.any():  # the domain, only where it can matter
                ok[ok] = _in_domain(fam, lr[ok])
            return ok

        return vectorised
    target = lambda_max if lambda_max is not None else _strict_target(spec)

    def one_by_one(lr: np.ndarray) -> np.ndarray:
        algs = [_build(fam, x) for x in lr]
        return np.array(
            [a is not None and is_strictly_stable(a, target, shift=shift).stable for a in algs]
        )

    return one_by_one


def curvature_interval(lambda_max: Any, spec: Any, shift: Fraction) -> tuple[float, float]:
    """``[lo, hi]`` of the curvatures the dynamics see, rounded outwards (``lo = 0`` means
    ``(0, hi]``, Theorem 6.1): ``(0, lambda_max]``, ``(0, Lambda]`` of a power law, the range
    of a finite spectrum; each shifted by the weight decay."""
    if lambda_max is not None:
        lo, hi = 0.0, float(to_exact(to_sympy(lambda_max, "lambda_max")))
    elif isinstance(spec, PowerLawSpectrum):
        lo, hi = 0.0, spec.Lambda
    else:
        lo, hi = float(spec.lam.min()), float(spec.lam.max())
    if shift:  # rounded outwards: the interval only grows
        lo = float(np.nextafter(lo + float(shift), 0))
        hi = float(np.nextafter(hi + float(shift), np.inf))
    return lo, hi


def _strict_target(spec: Any) -> Any:
    """What the exact strict verdict is asked about: the eigenvalues, or ``(0, Lambda]``."""
    return spec.top if isinstance(spec, PowerLawSpectrum) else spec.lam


def _noise_predicate(
    fam: _Family, spec: Any, B: float, model: NoiseModel | DataNoise
) -> tuple[Callable[[np.ndarray], Any], int]:
    """Certified ``U < 1`` (or, with the data noise model, ``rho < 1``) of each candidate
    (strictly stable ones), and the candidates worth testing per round."""
    if isinstance(model, DataNoise):

        def from_data(lr: np.ndarray) -> np.ndarray:
            return np.array(
                [model.radius(fam.build(x), B, shift=fam.shift, decide=True).stable for x in lr]
            )

        return from_data, 3

    finite = isinstance(spec, Spectrum) or (isinstance(spec, PowerLawSpectrum) and spec.N)
    if fam.triplets is not None and finite and model.tau2 <= 0:
        triplets = fam.triplets

        def vectorised(lr: np.ndarray) -> np.ndarray:
            beta, q0, q1 = triplets(lr)
            return memory1_noise_bounds(
                beta=beta,
                q0=q0,
                q1=q1,
                spectrum=spec,
                shift=float(fam.shift),
                batch_size=B,
                tau1=model.tau1,
                tau2=model.tau2,
                points=False,  # undecided within ~1e-7 of U = 1: not ok (conservative)
            ).bounded

        return vectorised, _ROUND

    def one_by_one(lr: np.ndarray) -> np.ndarray:
        return np.array(
            [stability_sum(fam.build(x), spec, B, model, shift=fam.shift).bounded for x in lr]
        )

    return one_by_one, 3  # each candidate is a full certified sum: bisect


def _search_lr(
    fam: _Family, lambda_max: Any, spec: Any, batch_size: Any, model: NoiseModel, rtol: float
) -> tuple[float, str]:
    """The largest stable lr of the family and the condition that binds there."""
    strict_ok = _strict_predicate(fam, lambda_max, spec)
    lr_hi = _noiseless_limit(fam, strict_ok, model, lambda_max, spec, rtol)
    if batch_size is None or spec is None or lr_hi == 0.0:
        return lr_hi, "strict stability"
    noise_ok, points = _noise_predicate(fam, spec, to_float(batch_size, "batch_size"), model)

    def ok(lr: np.ndarray) -> np.ndarray:
        good = strict_ok(lr)
        if np.any(good):
            good[good] = noise_ok(lr[good])
        return good

    if isinstance(model, DataNoise) and math.isfinite(lr_hi):
        top = _data_edge(fam, to_float(batch_size, "batch_size"), model, lr_hi, rtol)
    elif not math.isfinite(lr_hi):
        top = _largest(ok, fam.lr0, rtol, points)
    else:
        top = lr_hi if ok(np.array([lr_hi]))[0] else _largest(ok, lr_hi, rtol, points, below=True)
    if top >= lr_hi * (1 - 1e-6):
        return top, "strict stability"
    what = "rho < 1, from the data" if isinstance(model, DataNoise) else "U < 1"
    return top, f"mini-batch noise ({what}); noiseless limit {lr_hi:.6g}"


def _noiseless_limit(
    fam: _Family, strict_ok: Any, model: Any, lambda_max: Any, spec: Any, rtol: float
) -> float:
    """The largest strictly stable lr, remembered by a data model for its own spectrum (the
    searches at several batch sizes share it)."""
    points = _ROUND if fam.triplets is not None else 3
    if not isinstance(model, DataNoise) or lambda_max is not None:
        return _largest(strict_ok, fam.lr0, rtol, points)
    key = ("noiseless", fam.build(1.0), float(fam.shift), _spectrum_key(spec), rtol)
    if key not in model._memo:
        model._memo[key] = (_largest(strict_ok, fam.lr0, min(rtol, 1e-6), points), None)
    return model._memo[key][0]


def _spectrum_key(spec: Any) -> tuple[Any, ...]:
    lam = getattr(spec, "lam", None)
    if lam is None:
        return (repr(spec),)
    return (lam.size, float(lam.min()), float(lam.max()), float(lam.sum()))


def _data_edge(fam: _Family, B: float, model: DataNoise, lr_hi: float, rtol: float) -> float:
    """The largest learning rate below the noiseless limit ``lr_hi`` with a certified
    ``rho < 1`` (the data model), to ``rtol`` relative. ``log rho`` is smooth and increasing in
    ``log lr``: a bracket shrunk by regula falsi with the Illinois modification (bisection
    where ``rho`` is infinite or the bracket shrinks slowly) needs about ten evaluations where
    bisection needs thirty. Each side of the bracket is a certified verdict."""

    kappa = batch_factor(B, model.data.n, model.sampling)
    seen = model._memo.setdefault(("edges", fam.build(1.0), float(fam.shift)), {})
    system = _numeric_family(fam, model)

    def read(res: Any, factor: float) -> tuple[bool, float]:
        ok = res.strict and res.upper * factor < 1
        value = math.log(res.rho * factor) if res.strict and 0 < res.rho < math.inf else math.inf
        return ok, value

    def at(lr: float) -> tuple[bool, float]:
        # a certified verdict (stop once the bounds are on one side of 1) and rho to about
        # 1e-4 for the secant steps: the search's own accuracy is the bracket's width
        res = model.radius(system(lr), B, shift=fam.shift, rtol=1e-4, decide=True, value=True)
        if res.strict and not math.isfinite(res.upper):
            raise _Uncomputable  # the response overflows in floats: nothing is certified
        if res.kappa > 0:
            seen[lr] = (res, 1.0 / res.kappa)  # rho_1 = rho / kappa: any other batch size
        return read(res, 1.0)

    if kappa == 0:
        return lr_hi
    try:
        return _edge_search(at, seen, kappa, lr_hi, rtol, read)
    except _Uncomputable:
        return 0.0


def _numeric_family(fam: _Family, model: DataNoise) -> Callable[[float], Any]:
    """``lr -> NumericAlgorithm`` of the family: the float system ``(S_0, v, r)`` is affine in
    the learning rate for the optimizers here (checked on three builds, remembered by the data
    model), so no sympy construction per learning rate; a family that is not affine builds
    each one."""
    key = ("affine", fam.build(1.0), float(fam.shift))
    if key not in model._memo:
        s1, s2, s4 = (fam.build(x).numeric_system() for x in (1.0, 2.0, 4.0))
        slope = [b - a for a, b in zip(s1, s2, strict=True)]
        affine = all(
            np.allclose(c - a, 3 * d, rtol=1e-12, atol=1e-14)
            for a, c, d in zip(s1, s4, slope, strict=True)
        )
        model._memo[key] = (s1, slope) if affine else None
    found = model._memo[key]
    if found is None:
        return lambda lr: fam.build(lr)
    base, slope = found

    def system(lr: float) -> Any:
        arrays = [a + (lr - 1.0) * d for a, d in zip(base, slope, strict=True)]
        return NumericAlgorithm(*arrays, build=lambda: fam.build(lr))

    return system


class _Uncomputable(Exception):
    """The data model's response cannot be computed in floats at a learning rate."""


def _edge_search(
    at: Callable[[float], tuple[bool, float]],
    seen: dict[float, Any],
    kappa: float,
    lr_hi: float,
    rtol: float,
    read: Callable[..., tuple[bool, float]],
) -> float:
    """The search of :func:`_data_edge`: every verdict already found at this batch factor
    (``seen``, from other batch sizes) is a point of ``log rho`` against ``log lr``; from the
    bracket they give, or down from ``lr_hi`` when they give none, :func:`_refine` shrinks it."""
    pts: dict[float, tuple[bool, float]] = {}
    for lr, (res, to_unit) in seen.items():
        if lr <= lr_hi:
            pts[lr] = read(res, to_unit * kappa)

    def probe(lr: float) -> tuple[bool, float]:
        pts[lr] = at(lr)
        return pts[lr]

    if _bracket(pts) is None:
        ok_hi, g_hi = pts[lr_hi] if lr_hi in pts else probe(lr_hi)
        if ok_hi:
            return lr_hi
        lo, g_lo = lr_hi, g_hi
        while True:  # rho grows about linearly in lr from 0: jump to where it is ~0.8
            if lo < lr_hi / _SPAN:
                return 0.0
            known = [x for x, (ok, _) in pts.items() if ok and x < lo]
            if known:  # a stable point from another batch size: the bracket is closed
                break
            lo *= min(0.5, max(1 / 64, 0.8 * math.exp(-g_lo))) if math.isfinite(g_lo) else 0.5
            ok_lo, g_lo = probe(lo)
            if ok_lo:
                break
    return _refine_edge(probe, pts, lr_hi, rtol)


def _bracket(pts: dict[float, tuple[bool, float]]) -> tuple[float, float] | None:
    """The largest learning rate certified stable and the smallest one above it that is not."""
    good = [x for x, (ok, _) in pts.items() if ok]
    if not good:
        return None
    lo = max(good)
    above = [x for x, (ok, _) in pts.items() if not ok and x > lo]
    return (lo, min(above)) if above else None


def _guess(
    pts: dict[float, tuple[bool, float]], lo: float, hi: float, lr_hi: float, rtol: float
) -> tuple[float, float]:
    """Where ``log rho`` crosses 0 in ``(log lo, log hi)``, and its slope there, from a model
    through every known point. ``rho`` grows like ``lr`` from 0, so ``h = log rho - log lr``
    varies slowly (on digits with momentum 0.9, from 4.59 at ``lr_hi/1000`` to 5.6 at
    ``0.9 lr_hi``), up to a pole at the noiseless limit ``lr_hi`` (the response diverges):
    ``h`` is interpolated by a monotone cubic (PCHIP) in ``log lr`` through the known points
    below ``0.999 lr_hi``, held at its first value below them and continued linearly in
    ``lr`` above them (constant from a single point), and ``log rho = h + log lr`` is solved
    by bisection. Where the model does not cross 0 inside the bracket: ``rtol/3`` above ``lo``
    when it points below, the midpoint when it points above."""
    x_lo, x_hi = math.log(lo), math.log(hi)
    known = sorted(
        (math.log(z), g - math.log(z))
        for z, (_, g) in pts.items()
        if math.isfinite(g) and z < 0.999 * lr_hi
    )
    if not known:
        return (x_lo + x_hi) / 2, 0.0
    xs, hs = np.array([k[0] for k in known]), np.array([k[1] for k in known])
    curve = _pchip(xs, hs) if xs.size > 1 else None

    # beyond the last point, h grows about linearly in lr (its pole is weak): the line
    # through the last two points, never decreasing
    rise = max((hs[-1] - hs[-2]) / (math.exp(xs[-1]) - math.exp(xs[-2])), 0.0) if xs.size > 1 else 0

    def model(x: float) -> float:
        if x > xs[-1]:
            return float(hs[-1]) + rise * (math.exp(x) - math.exp(xs[-1])) + x
        if curve is None:
            return float(hs[0]) + x
        return float(curve(max(x, xs[0]))) + x

    a, b = x_lo, x_hi
    if model(a) >= 0:
        return x_lo + min(rtol / 3, (x_hi - x_lo) / 4), 0.0
    if model(b) <= 0:
        return (x_lo + x_hi) / 2, 0.0
    for _ in range(50):
        m = (a + b) / 2
        a, b = (m, b) if model(m) < 0 else (a, m)
    x = (a + b) / 2
    dx = 1e-4 * (x_hi - x_lo)
    return x, (model(min(x + dx, x_hi)) - model(max(x - dx, x_lo))) / (2 * dx)


def _pchip(xs: np.ndarray, ys: np.ndarray) -> Callable[[float], float]:
    """The monotone piecewise-cubic Hermite interpolant of ``(xs, ys)`` (``xs`` increasing;
    Fritsch-Carlson slopes: the harmonic mean of the neighbouring secants where they agree in
    sign, 0 where they do not, one-sided at the ends), evaluated inside ``[xs[0], xs[-1]]``.
    scipy's ``PchipInterpolator`` is the same curve; scipy is an optional dependency, and the
    core answers without it."""
    h = np.diff(xs)
    keep = np.concatenate([[True], h > 0])  # repeated abscissae (a point tried twice): once
    xs, ys = xs[keep], ys[keep]
    h, delta = np.diff(xs), np.diff(ys) / np.diff(xs)
    d = np.zeros_like(ys)
    if xs.size == 2:
        d[:] = delta[0]
    else:
        w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
        same = delta[:-1] * delta[1:] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            harm = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
        d[1:-1] = np.where(same, harm, 0.0)
        for end, hh, dd in ((0, h, delta), (-1, h[::-1], delta[::-1])):
            e = ((2 * hh[0] + hh[1]) * dd[0] - hh[0] * dd[1]) / (hh[0] + hh[1])
            if np.sign(e) != np.sign(dd[0]):
                e = 0.0
            elif np.sign(dd[0]) != np.sign(dd[1]) and abs(e) > abs(3 * dd[0]):
                e = 3 * dd[0]
            d[end] = e

    def value(x: float) -> float:
        i = int(np.clip(np.searchsorted(xs, x) - 1, 0, xs.size - 2))
        t = (x - xs[i]) / h[i]
        h00, h10 = (1 + 2 * t) * (1 - t) ** 2, t * (1 - t) ** 2
        h01, h11 = t * t * (3 - 2 * t), t * t * (t - 1)
        return float(h00 * ys[i] + h10 * h[i] * d[i] + h01 * ys[i + 1] + h11 * h[i] * d[i + 1])

    return value


def _refine_edge(
    probe: Callable[[float], tuple[bool, float]],
    pts: dict[float, tuple[bool, float]],
    lr_hi: float,
    rtol: float,
) -> float:
    """Shrink the bracket of ``pts`` (``lo`` stable, ``hi`` not) to ``rtol`` relative width.
    Each step tests :func:`_guess`'s crossing ``x``; once the model has proved accurate (the
    previous step landed within 2 % of the crossing, in ``log lr``), it tests ``x`` plus and
    minus a thirtieth of that error (at least ``rtol/3``), which closes the bracket in two
    evaluations instead of creeping up on one side. A step that does not halve the bracket
    twice in a row is followed by a bisection step."""
    err, slow = math.inf, 0
    while True:
        lo, hi = _bracket(pts)  # type: ignore[misc]
        if hi - lo <= rtol * hi:
            break
        progress.update("largest stable lr (data)", min(math.log2(lr_hi / (hi - lo)) / 40, 0.99), 1)
        x, slope = _guess(pts, lo, hi, lr_hi, rtol)
        span = math.log(hi) - math.log(lo)
        margin = min(0.01 * span, rtol / 4)
        inside = [math.log(lo) + margin, math.log(hi) - margin]
        if err < 0.02 and slope > 0:
            d = max(rtol / 3, err / 30)
            tries = [y for y in (x - d, x + d) if inside[0] <= y <= inside[1]] or [x]
        else:
            tries = [min(max(x, inside[0]), inside[1])]
        g_c, probed = math.inf, False
        for y in tries:
            lo1, hi1 = _bracket(pts)  # type: ignore[misc]
            if hi1 - lo1 <= rtol * hi1 or not lo1 < math.exp(y) < hi1:
                continue
            g_c, probed = probe(math.exp(y))[1], True
        if not probed:  # nothing new to test inside the bracket: bisect it
            probe(math.sqrt(lo * hi))
            continue
        err = abs(g_c / slope) if slope > 0 and math.isfinite(g_c) else math.inf
        lo2, hi2 = _bracket(pts)  # type: ignore[misc]
        slow = slow + 1 if hi2 - lo2 > 0.5 * (hi - lo) else 0
        if slow >= 2 and hi2 - lo2 > rtol * hi2:
            probe(math.sqrt(lo2 * hi2))
            slow = 0
    progress.done("largest stable lr (data)")
    return _bracket(pts)[0]  # type: ignore[index]


def largest_stable_lr(
    opt: ConfiguredOptimizer,
    *,
    lambda_max: Any = None,
    spectrum: Any = None,
    batch_size: Any = None,
    noise: Any = "gaussian",
    rtol: float = 1e-6,
) -> tuple[float | None, str | None]:
    """Largest learning rate that keeps a configured optimizer stable, the other settings
    fixed, and the condition that binds there (``(None, None)`` for a bare algorithm, which
    has no learning rate to vary). With a batch size the answer satisfies both strict
    stability and ``U < 1``.

    >>> from stability import from_torch_sgd
    >>> lr, why = largest_stable_lr(from_torch_sgd(0.1, 0.9), lambda_max=38.0)
    >>> round(lr, 6), why
    (0.1, 'strict stability')
    """
    fam = _config_family(opt)
    if fam is None:
        return None, None
    model = _noise_model(noise)
    if isinstance(model, DataNoise) and spectrum is None and lambda_max is None:
        spectrum = Spectrum.from_arrays(model.data.eigenvalues)
    spec = None if spectrum is None else as_spectrum(spectrum)
    return _search_lr(fam, lambda_max, spec, batch_size, model, rtol)


def _noise_model(noise: Any) -> NoiseModel | DataNoise:
    """A Gaussian/SE model by name or pair, or the data noise model as it is."""
    return noise if isinstance(noise, DataNoise) else get_noise_model(noise)


def max_stable_lr(
    family: str,
    spectrum: Any,
    batch_size: Any,
    noise: Any = "gaussian",
    *,
    rtol: float = 1e-9,
    **fixed: Any,
) -> float:
    """Largest learning rate of a named family (``gd``, ``heavy_ball``, ``nesterov``,
    ``momentum_kick``; other parameters fixed by keyword) that is strictly stable on the
    spectrum and has ``U < 1``, to relative precision ``rtol``.

    ``family="torch_sgd"`` is ``torch.optim.SGD`` with ``momentum``, ``dampening``,
    ``weight_decay`` and ``nesterov`` fixed by keyword (weight decay shifts the curvature the
    dynamics see). The admissible set is assumed to be an interval ``(0, lr*)`` (it is for
    these families: ``U`` grows with the learning rate).

    >>> round(max_stable_lr("gd", [1.0], batch_size=1e12), 6)   # noiseless limit: 2/lambda
    2.0
    """
    model = _noise_model(noise)
    if isinstance(model, DataNoise) and spectrum is None:
        spectrum = Spectrum.from_arrays(model.data.eigenvalues)
    spec = as_spectrum(spectrum)
    fam = _method_family(family, fixed, spec.lambda_max)
    if batch_size is None:
        raise ConfigError("batch_size is required (for the noiseless limit use check())")
    lr, _ = _search_lr(fam, None, spec, batch_size, model, rtol)
    return lr


def _largest(
    ok: Callable[[np.ndarray], Any], start: float, rtol: float, points: int, below: bool = False
) -> float:
    """Largest ``x`` with ``ok(x)`` (assumed an interval ``(0, x*)``), to ``rtol`` relative;
    ``inf`` if ``ok`` up to ``2^120 start``, 0 if not even at ``2^-120 start``. ``below``: the
    answer is known to be below ``start``."""
    x = float(start)
    if not below and ok(np.array([x]))[0]:
        while x < start * _SPAN and ok(np.array([2 * x]))[0]:
            x *= 2
        if x >= start * _SPAN:
            return math.inf
        return _refine(ok, x, 2 * x, rtol, points)
    while x > start / _SPAN and not ok(np.array([x / 2]))[0]:
        x /= 2
    if x <= start / _SPAN:
        return 0.0
    return _refine(ok, x / 2, x, rtol, points)


def _refine(
    ok: Callable[[np.ndarray], Any], lo: float, hi: float, rtol: float, points: int
) -> float:
    """Shrink ``[lo, hi]`` (``ok(lo)``, not ``ok(hi)``) to ``rtol`` relative width, testing
    ``points - 2`` candidates per round (one call of a vectorised check)."""
    start = hi - lo
    while hi - lo > rtol * hi:
        done = math.log(start / (hi - lo)) / max(math.log(start / (rtol * hi)), 1e-300)
        progress.update("largest stable lr", min(done, 0.99), 1.0)
        grid = np.linspace(lo, hi, points)[1:-1]
        good = grid[ok(grid)]
        lo_new = float(good.max()) if good.size else lo
        above = grid[grid > lo_new]
        hi = float(above.min()) if above.size else hi
        lo = lo_new
    progress.done("largest stable lr")
    return lo
