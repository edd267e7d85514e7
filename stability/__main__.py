"""``python -m stability ...``: the same command line as the ``stability`` script."""

from .cli.main import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
