"""``python -m stability ...``: the same command line as the ``stability`` script."""

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
