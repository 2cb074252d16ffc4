"""Run every benchmark in this folder, one after the other: ``python -m bench [NAME ...]``.

Each benchmark is a module ``bench/<name>.py`` runnable on its own (``python -m bench.<name>``) that
measures its figure against a baseline taken in the same run and prints a Markdown table. Goals are
reported, never asserted: these machines are shared and noisy.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the named benchmarks (default: all), each in a fresh interpreter; return 1 if any failed."""
    here = Path(__file__).parent
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    failed = []
    for name in names:
        print(f"\n## bench.{name}\n", flush=True)
        if subprocess.call([sys.executable, "-m", f"bench.{name}"]) != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
