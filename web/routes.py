"""Where the pages' forms post, and the names of their fields: one spelling for the handlers and
the templates. Every POST form also carries ``csrf_token`` (`FIELD_CSRF`)."""

SETTINGS_PATH = "/api/settings"  # GET the page; POST saves calendar + two-way
UNLINK_PATH = "/api/settings/unlink"
FEED_PATH = "/api/settings/feed"  # issue (or replace) the private ICS URL
SYNC_NOW_PATH = "/api/settings/sync"  # sync this tech now
SYNCRO_TOKEN_PATH = "/api/settings/syncro-token"  # the tech's own Syncro API token
SIGN_OUT_PATH = "/api/settings/signout"
SETTINGS_STATUS_PATH = "/api/settings/status"  # the status section's moving parts, as JSON
ADMIN_PATH = "/api/admin"
ADMIN_OVERRIDES_PATH = "/api/admin/overrides"
ADMIN_REMOVE_PATH = "/api/admin/remove"  # release a tech's link: unlink, feed off, sessions ended
ADMIN_TECH_PATH = "/api/admin/tech"  # one admin action for one tech (the form's ``action``)
ADMIN_BIN_PATH = "/api/admin/bin"  # a tech's recycle bin, with Restore buttons
OAUTH_START_PATH = "/api/oauth/start"

FIELD_CSRF = "csrf_token"
FIELD_CALENDAR = "calendar_id"
# Checkboxes are posted as "on" when ticked and are absent otherwise.
FIELD_TWO_WAY = "two_way"
FIELD_REMOVE_EVENTS = "remove_events"
# The admin's override form: map a Microsoft email to a Syncro user, or (with "remove") unmap it.
FIELD_OVERRIDE_EMAIL = "ms_email"
FIELD_OVERRIDE_USER = "syncro_user_id"
FIELD_OVERRIDE_REMOVE = "remove"
