"""Every sympy Symbol of the package, defined once with its assumptions.

Names follow docs/mathematics.md: ``lam`` is a Hessian eigenvalue (curvature), ``xi`` the
variable of characteristic polynomials, ``alpha``/``beta`` learning rate and momentum,
``q0``/``q1`` the memory-1 triplet coefficients, ``eta``/``eta_kick`` the momentum+kick step sizes.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "alpha",
    "beta",
    "dampening",
    "delta",
    "eta",
    "eta_kick",
    "gamma",
    "h",
    "lam",
    "lam_hi",
    "lam_lo",
    "lam_max",
    "lr",
    "momentum",
    "q0",
    "q1",
    "sigma2",
    "t",
    "weight_decay",
    "xi",
    "z",
]

lam = sp.Symbol("lambda", positive=True)
lam_max = sp.Symbol("lambda_max", positive=True)
xi = sp.Symbol("xi")
alpha = sp.Symbol("alpha", positive=True)
beta = sp.Symbol("beta", real=True)
delta = sp.Symbol("delta", real=True)
q0 = sp.Symbol("q0", real=True)
q1 = sp.Symbol("q1", real=True)
eta = sp.Symbol("eta", positive=True)
eta_kick = sp.Symbol("eta'", nonnegative=True)
h = sp.Symbol("h", positive=True)
gamma = sp.Symbol("gamma", real=True)  # zero of the AutoSGM lowpass filter
z = sp.Symbol("z")  # z-transform variable
t = sp.Symbol("t")  # time step
lam_lo = sp.Symbol("lambda_lo", nonnegative=True)  # ends of a curvature interval
lam_hi = sp.Symbol("lambda_hi", nonnegative=True)
lr = sp.Symbol("lr", positive=True)  # framework hyperparameters (torch names)
momentum = sp.Symbol("momentum", nonnegative=True)
dampening = sp.Symbol("dampening", nonnegative=True)
weight_decay = sp.Symbol("weight_decay", nonnegative=True)
sigma2 = sp.Symbol("sigma^2", positive=True)  # variance of additive gradient noise
