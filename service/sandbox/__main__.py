"""``python -m service.sandbox serve ...``: both simulators in a process of their own (``serve.py``)."""

from __future__ import annotations

import sys

from service.sandbox import serve

COMMANDS = {"serve": serve.main}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m service.sandbox {{{','.join(COMMANDS)}}} [options] (--help for each)")
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
