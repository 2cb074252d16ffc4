"""Reads a page starts at once: the chain page's sections read the store independently (series,
baseline window, anomalies, instances), so they run on a small thread pool while the request's own
thread analyses the window's traces. With a reader that holds several store sessions
(:class:`chainotel_analyzer.store.queries.SessionPool`) the queries run side by side and overlap
with the Python analysis, which holds the GIL.

Tasks are leaves (a reader call, or an API function over the reader): none waits for another
task, so the bounded pool cannot deadlock; a task's exception is raised where its result is taken.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WORKERS = 8
"""Threads shared by every page request (a chain page starts four tasks)."""

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def start(fn: Callable[..., T], *args, **kwargs) -> Future[T]:
    """Run ``fn(*args, **kwargs)`` on the pool (created on first use); ``.result()`` gives its value
    or raises its exception."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="console-read")
    return _pool.submit(fn, *args, **kwargs)
