"""The process-wide objects the triggers share, built once from settings on first use.

Nothing here is imported eagerly by function_app.py's dependencies beyond this module, so a
cold start pays only for what the first invocation needs.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage import StorageAccount


@functools.cache
def storage_account() -> StorageAccount:
    """Raises SettingsError if the app's settings are invalid."""
    from settings import get_settings
    from storage import StorageAccount

    settings = get_settings()
    return StorageAccount(settings.storage, sync_queue_name=settings.sync_queue)


def app_version() -> str:
    from settings import VERSION, SettingsError, get_settings

    try:
        return get_settings().app_version
    except SettingsError:
        return VERSION
