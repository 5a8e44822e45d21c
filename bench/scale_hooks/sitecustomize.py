"""Counts a process's Azure Storage calls for `bench/scale.py`, which puts this folder on the
PYTHONPATH of the host process it measures (Python imports ``sitecustomize`` at start-up).

Only when ``SCALE_STORAGE_COUNTS`` names a file: every request azure-core's requests transport
sends (the product's tables and queues, `storage.account`) is counted by method and endpoint
(``"GET 127.0.0.1:10002"``), and the counts are written to that file as JSON every second. The
product's code is not changed; any other process is left alone."""

from __future__ import annotations

import os

_PATH = os.environ.get("SCALE_STORAGE_COUNTS")

if _PATH:
    import collections
    import json
    import threading
    import time
    from urllib.parse import urlsplit

    from azure.core.pipeline.transport import RequestsTransport

    _counts: collections.Counter[str] = collections.Counter()
    _lock = threading.Lock()
    _send = RequestsTransport.send

    def _counted_send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        with _lock:
            _counts[f"{request.method} {urlsplit(request.url).netloc}"] += 1
        return _send(self, request, **kwargs)

    def _write_every_second(path: str) -> None:
        while True:
            time.sleep(1.0)
            with _lock:
                text = json.dumps(dict(_counts))
            with open(path + ".tmp", "w") as file:
                file.write(text)
            os.replace(path + ".tmp", path)  # the reader never sees half a file

    RequestsTransport.send = _counted_send  # type: ignore[method-assign]
    threading.Thread(target=_write_every_second, args=(_PATH,), name="storage-counts", daemon=True).start()
