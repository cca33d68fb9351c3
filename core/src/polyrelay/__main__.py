"""``polyrelay`` and ``python -m polyrelay``: the command, under the start-up collector thresholds.

This module imports nothing heavy, so that :func:`polyrelay.collector.start_up`
runs before the gateway's modules do (:mod:`polyrelay.collector` says why).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from polyrelay import collector


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``polyrelay`` command."""
    collector.start_up()
    from polyrelay import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
