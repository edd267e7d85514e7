"""The optional compiled backend of the checkers (numba): whether it runs, and how its loops
are compiled and kept.

The backend is chosen by :func:`backend`: numba when it imports, unless the environment
variable ``STABILITY_BACKEND`` is ``numpy``; :func:`use_backend` switches it for a block of
code. Inputs smaller than :data:`MIN_CONFIGS` configurations use numpy either way (the first
call of each compiled loop costs about half a second of compilation, once per machine: the
loops are cached on disk), and so, under the automatic choice, do margins whose inputs are all
full-size arrays (no broadcasting): both paths are then bound by memory traffic, and numpy's
cache-sized blocks measured as fast. The loops themselves are generated in
:mod:`stability.checkers._compiled`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "MIN_CONFIGS",
    "THREADS",
    "available",
    "backend",
    "cache_dir",
    "check_environment",
    "use_backend",
]


_UNLOADED: Any = object()


numba: Any = _UNLOADED
"""The numba module, imported on first use (it costs ~0.15 s, which ``import stability`` and
small checks should not pay), or ``None`` when it is not installed."""


def _numba() -> Any:
    global numba
    if numba is _UNLOADED:
        try:  # optional: the [fast] extra
            import numba as module
        except ImportError:  # pragma: no cover - exercised where numba is absent
            module = None
        numba = module
    return numba


THREADS = max(1, min(os.cpu_count() or 1, 4))
"""Default number of worker threads (the compiled loops release the GIL)."""


MIN_CONFIGS = 1 << 16
"""Smallest input (configs, or config-eigenvalue pairs for the noise sum) sent to the compiled
backend; below it numpy is as fast and nothing is compiled."""


_choice = threading.local()


def available() -> bool:
    """Whether the compiled backend (numba) is installed."""
    return _numba() is not None


def _requested() -> str:
    """The backend asked for: this thread's :func:`use_backend`, else ``STABILITY_BACKEND``."""
    name = getattr(_choice, "name", None) or os.environ.get("STABILITY_BACKEND", "auto")
    if name not in ("auto", "numba", "numpy"):
        raise ConfigError(f"STABILITY_BACKEND must be 'auto', 'numba' or 'numpy', got {name!r}")
    return name


def backend() -> str:
    """``"numba"`` or ``"numpy"``: the backend the checkers use now."""
    name = _requested()
    if name == "numpy":
        return "numpy"
    if not available():
        if name == "numba":
            raise ConfigError(
                "the numba backend was asked for but numba is not installed "
                "(pip install 'sgd-stability[fast]')"
            )
        return "numpy"
    return "numba"


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run a block with the checkers on ``"numba"``, ``"numpy"`` or ``"auto"`` (this thread).

    >>> from stability.checkers import torch_sgd_margins
    >>> with use_backend("numpy"):
    ...     torch_sgd_margins(lr=0.1, momentum=0.9, lambda_max=37.9).stable.item()
    True
    """
    if name not in ("auto", "numba", "numpy"):
        raise ConfigError(f"backend must be 'auto', 'numba' or 'numpy', got {name!r}")
    old = getattr(_choice, "name", None)
    _choice.name = name
    try:
        backend()  # refuses numba when it is not installed
        yield
    finally:
        _choice.name = old


def wanted(size: int, broadcast: bool = True) -> bool:
    """Whether work of ``size`` goes to the compiled backend. With the automatic choice,
    margins of inputs that are all full-size arrays (``broadcast=False``) stay on numpy:
    both paths are then bound by memory traffic, and numpy's cache-sized blocks measured
    as fast or faster (``benchmarks/bench_performance.py``); ``use_backend("numba")``
    sends them to the compiled loop all the same."""
    if size < MIN_CONFIGS or backend() != "numba":  # small work never imports numba
        return False
    return broadcast or _requested() == "numba"


def _workers(threads: int | None, tasks: int) -> int:
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    return max(1, min(THREADS if threads is None else threads, tasks))


def _in_threads(fn: Callable[[int, int], Any], tasks: int, workers: int) -> None:
    """``fn(t0, t1)`` over ``workers`` contiguous parts of ``range(tasks)`` (the compiled
    loops release the GIL)."""
    edges = [tasks * w // workers for w in range(workers + 1)]
    if workers == 1:
        fn(0, tasks)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda w: fn(edges[w], edges[w + 1]), range(workers)))


def check_environment() -> None:
    """Refuse invalid values of ``STABILITY_BACKEND`` and ``STABILITY_CACHE_DIR`` now (the
    command line calls this first, so a typo is an error even when no loop would run)."""
    _requested()
    _cache_root()


def _cache_root() -> str:
    root = os.environ.get("STABILITY_CACHE_DIR")
    if root is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "stability")
    if not root or not os.path.isabs(root):
        raise ConfigError(f"STABILITY_CACHE_DIR must be an absolute path to a folder, got {root!r}")
    return root


_warned: set[str] = set()


def _trusted(path: Path) -> bool:
    """A folder numba may load compiled code from: ours, and writable by nobody else."""
    try:
        info = path.stat()
    except OSError:
        return False
    ours = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return ours and not info.st_mode & 0o022


def cache_dir() -> Path | None:
    """Where compiled loops are kept between processes (``STABILITY_CACHE_DIR``, an absolute
    path, else ``$XDG_CACHE_HOME/stability`` or ``~/.cache/stability``); ``None`` if it is not
    writable, or if it (or its parent) is not ours or is writable by others: numba loads
    pickled code from it, so only a folder nobody else can write to is used (the loops are
    then compiled in memory, about half a second each, with one warning)."""
    root = Path(_cache_root())
    path = root / f"numba-{_numba().__version__}"
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    if not (_trusted(root) and _trusted(path)):
        if str(path) not in _warned:
            _warned.add(str(path))
            warnings.warn(
                f"not caching compiled loops in {path}: the folder is not yours or others can "
                "write to it (numba loads code from it); compiling in memory",
                RuntimeWarning,
                stacklevel=3,
            )
        return None
    return path if os.access(path, os.W_OK) else None


_HEADER = (
    "import numpy as np\nfrom numba import njit\n\n\n"
    "@njit(nogil=True, cache={cache}, error_model='numpy', fastmath={fastmath})"
)


def _jit(source: str, name: str, fastmath: Any = False) -> Callable[..., Any]:
    """Compile a generated loop; kept on disk (numba's cache) when a cache folder is
    writable, so later processes load it instead of compiling (about half a second each).
    ``fastmath`` is numba's flag set (the margin loops keep IEEE semantics: ``False``)."""
    text = _HEADER.format(cache=True, fastmath=repr(fastmath)) + source
    folder = cache_dir()
    if folder is not None:
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        path = folder / f"loop_{digest}.py"
        try:
            if not path.exists() or path.read_text() != text:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(text)
                os.replace(tmp, path)
            name_ = f"_stability_loop_{digest}"
            module = sys.modules.get(name_)
            if module is None:
                spec = importlib.util.spec_from_file_location(name_, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name_] = module  # numba's cache finds the module by name
                spec.loader.exec_module(module)  # the file holds exactly our generated text
            return getattr(module, name)
        except OSError:
            pass
    namespace: dict[str, Any] = {}
    text = _HEADER.format(cache=False, fastmath=repr(fastmath)) + source
    exec(compile(text, f"<stability._compiled.{name}>", "exec"), namespace)  # our code only
    return namespace[name]


_lock = threading.Lock()
