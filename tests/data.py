"""Where tests find the shared trace data, which is not in the repository — the one place that knows.

The Online Boutique traces with injected faults (``README.md`` in that folder) are looked up as:

1. ``$CHAINOTEL_TEST_DATA``, the ``onlineboutique`` folder itself, when set (and only there);
2. else ``<repo>/../shared/data/onlineboutique``: CI places ``shared/`` beside its fresh clone, and a
   dev machine's ``/work/main`` has it at ``/work/shared``.

Tests that need the data are marked :data:`needs_onlineboutique` and skip, saying where they looked,
when it is absent::

    from tests.data import needs_onlineboutique, onlineboutique_dir

    @needs_onlineboutique
    def test_import(): data = onlineboutique_dir() / "baseline"
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "CHAINOTEL_TEST_DATA"
REPO = Path(__file__).resolve().parents[1]


def _onlineboutique_candidate() -> Path:
    explicit = os.environ.get(ENV)
    return Path(explicit).expanduser() if explicit else REPO.parent / "shared" / "data" / "onlineboutique"


def onlineboutique_dir() -> Path | None:
    """The Online Boutique data folder (holding ``baseline/`` and one folder per day), or None when
    it is not where the lookup above says."""
    path = _onlineboutique_candidate()
    return path if path.is_dir() else None


needs_onlineboutique = pytest.mark.skipif(
    onlineboutique_dir() is None,
    reason=f"Online Boutique traces not found at {_onlineboutique_candidate()}: set {ENV} to the "
    "onlineboutique folder, or place shared/ beside the repository (<repo>/../shared/data/onlineboutique)",
)
"""Skip the marked test (or module: ``pytestmark = needs_onlineboutique``) without the data."""
