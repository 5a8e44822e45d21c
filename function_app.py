"""The Azure Functions app: a table of contents. Each area's triggers live in one blueprint;
each trigger hands its input to one plain function in a package (see README "Where things are")."""

import azure.functions as func

from blueprints.background import bp as background
from blueprints.ics import bp as ics
from blueprints.linking import bp as linking
from blueprints.ops import bp as ops
from blueprints.sync import bp as sync
from blueprints.webhooks import bp as webhooks

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(ops)  # GET /api/health
app.register_functions(linking)  # /api/oauth/*, /api/settings*, /api/admin*
app.register_functions(ics)  # /api/ics/{token}.ics, /api/admin/feeds/{syncro_user_id}
app.register_functions(sync)  # /api/admin/sync/{syncro_user_id}, /api/admin/recycle-bin/*, /api/admin/syncro-tokens/*
app.register_functions(background)  # the sync-job queue trigger and the timers (docs/realtime-jobs.md)
app.register_functions(webhooks)  # /api/graph/notifications|lifecycle, /api/syncro/notifications/{secret}
