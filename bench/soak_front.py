"""The soak's web front: function_app.py's HTTP side alone (no queue trigger, no timers), in a
process of its own so the soak can kill it (`bench/soak.py`), as ``start_product`` serves it in
process. App settings come from the environment; keys from LOCAL_FUNCTION_KEY/LOCAL_MASTER_KEY.

    python bench/soak_front.py --port 7071
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    import function_app
    from local.host import FunctionHost, HostConfig
    from local.host.http import HostKeys
    from local.host.logs import configure_logging

    configure_logging()
    keys = HostKeys(os.environ["LOCAL_FUNCTION_KEY"], os.environ["LOCAL_MASTER_KEY"])
    host = FunctionHost(
        function_app.app, config=HostConfig(), keys=keys, port=args.port, timers_enabled=False, queues_enabled=False
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    host.start()
    print(f"front: {host.url}", flush=True)
    stopping.wait()
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
