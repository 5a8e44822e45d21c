"""A simulator of Syncro's REST API (``/api/v1``) and its Notification Center webhooks.

Faithful to ``shared/reference/syncro-openapi-subset.json``: /me, /users, /users/{id}, /settings,
/appointment_types, appointments CRUD with the three wrapper shapes, 25 a page with ``meta``,
date_from/date_to in the account's zone, ``mine``, token auth (Bearer, bare or ``api_key``),
Syncro's 422 body, 180 requests a minute per IP, and a Notification Center POST on every
creation. Behaviours the spec leaves open are settings (``settings.py``); by default the
simulator answers as a live account does: ids above 2^32 for appointments (``id_start``), no
``user_id``/``user_ids``/``appointment_type_id`` in responses (``GET /_sim/appointments[/{id}]``
shows them), times in the account's offset, permission failures as 401, ``{"message": "Not
found"}``, and PUT as a whole-form save (start_at required, omitted booleans false). Syncro's
rewrites of description and location (``rewrite.py``) are settings, off by default.

Seed format (``POST /_sim/seed`` or ``SyncroSim.seed``), each key optional, records upserted by id.
An entry without ``id`` gets the next one from the ``id_start`` setting; explicit ids are kept::

    {"account": {"subdomain": "acme", "time_zone": "America/Los_Angeles"},
     "users": [{"id": 1, "email": "joe@acme.test", "full_name": "Joe Doe", "admin": true,
                "group": "Admins", "color": "55b932", "view_all_appointments": true}],
     "tokens": [{"token": "T123", "user_id": 1}],
     "customers": [{"id": 5, "business_name": "Acme", "firstname": "Ann", "lastname": "Lee",
                    "email": "ann@acme.test", "phone": "555", "mobile": null, "address": "1 Main St",
                    "address_2": "Suite 4", "city": "Springfield", "state": "OR", "zip": "97477",
                    "notes": null}],
     "tickets": [{"id": 104000555, "number": 2042, "subject": "Printer jams", "status": "New",
                  "customer_id": 5, "user_id": 1, "problem_type": null}],
     "appointment_types": [{"id": 1, "name": "Onsite", "location_type": "customer",
                            "location_hard_code": null, "email_instructions": null}],
     "appointments": [{"id": 10, "summary": "...", "start_at": "...", "end_at": "...", "user_id": 1,
                       "user_ids": [1], "customer_id": 5, "ticket_id": 104000555,
                       "created_at": "...", "updated_at": "..."}]}

A ticket's ``number`` defaults to the next after the highest held (from 1001); its customer
and user must exist.
"""

from local.sims.syncro.settings import SyncroSettings
from local.sims.syncro.sim import SyncroSim

__all__ = ["SyncroSettings", "SyncroSim"]
