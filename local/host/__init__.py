"""A local Azure Functions host: runs ``function_app.app`` without Core Tools.

It reads the app's indexed functions (``app.get_functions()``) and serves them the way the real
host does: HTTP triggers under the route prefix with auth levels, timers on NCRONTAB schedules,
queue triggers pumped from Storage Queues with retries and a poison queue. ``func start`` runs
the same ``function_app.py``.
"""

from local.host.runtime import FunctionHost, HostConfig

__all__ = ["FunctionHost", "HostConfig"]
