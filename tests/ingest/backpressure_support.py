"""An analyzer served in the test process (runtime + app under uvicorn), so a test can hold or break
its writer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from chainotel.cli.demo import free_port


@contextmanager
def served(settings) -> Iterator[object]:
    """The analyzer's runtime and app served by uvicorn in this process (as ``serve`` does), so a
    test can hold its writer; yields the Runtime with ``http`` set to the base URL."""
    import uvicorn

    from chainotel_analyzer.api.app import create_app
    from chainotel_analyzer.runtime import start_runtime

    runtime = start_runtime(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime=runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-uvicorn")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        runtime.http = f"http://127.0.0.1:{port}"
        yield runtime
    finally:
        server.should_exit = True
        thread.join(30)
        runtime.close()  # idempotent: the app's lifespan closed it already


def hold_inserts(runtime) -> tuple[threading.Event, threading.Event]:
    """Make the writer of ``runtime`` (from :func:`served`) wait in each INSERT until released:
    returns ``(inserting, release)`` — set when an INSERT has started; set it to let them through."""
    client = runtime.writer._client
    real_insert, inserting, release = client.insert_arrow, threading.Event(), threading.Event()

    def held_insert(*args, **kwargs):
        inserting.set()
        assert release.wait(60)
        return real_insert(*args, **kwargs)

    client.insert_arrow = held_insert
    return inserting, release
