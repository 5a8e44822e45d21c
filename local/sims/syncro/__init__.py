"""A simulator of Syncro's REST API (``/api/v1``) and its Notification Center webhooks.

Faithful to ``shared/reference/syncro-openapi-subset.json``: /me, /users, /users/{id}, /settings,
/appointment_types, appointments CRUD with the three wrapper shapes, 25 a page with ``meta``,
date_from/date_to in the account's zone, ``mine``, token auth (Bearer, bare or ``api_key``),
Syncro's 422 body, 180 requests a minute per IP, and a Notification Center POST on every
creation. Behaviours the spec leaves open are settings (``settings.py``).

Seed format (``POST /_sim/seed`` or ``SyncroSim.seed``), each key optional, records upserted by id::

    {"account": {"subdomain": "acme", "time_zone": "America/Los_Angeles"},
     "users": [{"id": 1, "email": "joe@acme.test", "full_name": "Joe Doe", "admin": true,
                "group": "Admins", "color": "55b932", "view_all_appointments": true}],
     "tokens": [{"token": "T123", "user_id": 1}],
     "customers": [{"id": 5, "business_name": "Acme", "firstname": "Ann", "lastname": "Lee",
                    "email": "ann@acme.test", "phone": "555"}],
     "appointment_types": [{"id": 1, "name": "Onsite", "location_type": "customer"}],
     "appointments": [{"id": 10, "summary": "...", "start_at": "...", "end_at": "...", "user_id": 1,
                       "user_ids": [1], "customer_id": 5, "created_at": "...", "updated_at": "..."}]}
"""

from local.sims.syncro.settings import SyncroSettings
from local.sims.syncro.sim import SyncroSim

__all__ = ["SyncroSettings", "SyncroSim"]
