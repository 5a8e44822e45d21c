"""The demo Syncro account and Microsoft tenant that `make run` seeds: techs whose emails match
across both, one personal Microsoft account, a few appointments and events."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TENANT_ID = "5c1a3a6e-0d5e-4c2b-9f0a-2b7f1d9e8c11"
CLIENT_ID = "9f6b2d4e-7a1c-4e8b-b3d2-6c5a4f3e2d10"
TIME_ZONE = "America/Los_Angeles"


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    syncro_user_id: int
    personal: bool = False


DISPATCHER = DemoUser("dana.dispatch@contoso.example", "Dana Dispatch", 100)
TECHS = (
    DemoUser("alex.tech@contoso.example", "Alex Tech", 101),
    DemoUser("blake.tech@contoso.example", "Blake Tech", 102),
    DemoUser("casey.home@outlook.example", "Casey Home", 103, personal=True),
)


@dataclass(frozen=True)
class DemoSecrets:
    client_secret: str
    syncro_token: str
    password: str

    @classmethod
    def fresh(cls) -> DemoSecrets:
        return cls(secrets.token_urlsafe(24), secrets.token_hex(20), "Demo-" + secrets.token_urlsafe(9))


def _at(day_offset: int, hour: int, minute: int = 0, *, now: datetime) -> str:
    """``hour:minute`` in the account's zone, ``day_offset`` days from today, as UTC ISO 8601."""
    zone = ZoneInfo(TIME_ZONE)
    day = (now.astimezone(zone) + timedelta(days=day_offset)).date()
    local = datetime.combine(day, time(hour, minute), tzinfo=zone)
    return local.astimezone(UTC).isoformat().replace("+00:00", "Z")


def identity_seed(demo: DemoSecrets, *, redirect_uri: str) -> dict[str, Any]:
    return {
        "tenants": [{"id": TENANT_ID, "name": "Contoso IT Services", "domain": "contoso.example"}],
        "users": [
            {"email": u.email, "password": demo.password, "name": u.name, "personal": u.personal}
            for u in (*TECHS, DISPATCHER)
        ],
        "apps": [
            {
                "client_id": CLIENT_ID,
                "client_secret": demo.client_secret,
                "name": "Syncro Outlook Sync (demo)",
                "redirect_uris": [redirect_uri],
                "sign_in_audience": "AzureADandPersonalMicrosoftAccount",
            }
        ],
    }


def graph_seed(users: list[dict[str, Any]], *, now: datetime) -> dict[str, Any]:
    """Mailboxes for the seeded identity users (``users`` as the identity simulator returned them)."""
    mailboxes = []
    for user in users:
        events = []
        if user["email"] == TECHS[0].email:
            events = [
                {
                    "calendar": "Calendar",
                    "subject": "Dentist",
                    "start": {"dateTime": _at(2, 16, now=now)[:-1], "timeZone": "UTC"},
                    "end": {"dateTime": _at(2, 17, now=now)[:-1], "timeZone": "UTC"},
                }
            ]
        mailboxes.append(
            {
                "oid": user["oid"],
                "email": user["email"],
                "name": user["name"],
                "tenant_id": user["tenant_id"],
                "personal": user["personal"],
                "calendars": [{"name": "Calendar", "is_default": True}, {"name": "Work Orders"}],
                "events": events,
            }
        )
    return {"mailboxes": mailboxes}


def syncro_seed(demo: DemoSecrets, *, now: datetime) -> dict[str, Any]:
    users = [
        {"id": u.syncro_user_id, "email": u.email, "full_name": u.name, "admin": u is DISPATCHER, "group": "Techs"}
        for u in (DISPATCHER, *TECHS)
    ]
    alex, blake, casey = (t.syncro_user_id for t in TECHS)
    appointments = [
        ("Server swap at Fabrikam", 1, 9, 2, alex),
        ("Firewall review", 1, 13, 1, blake),
        ("Onboarding workstation setup", 3, 10, 3, alex),
        ("Backup restore test", -2, 15, 1, alex),
        ("Printer fleet check", 4, 8, 2, casey),
    ]
    return {
        "account": {"subdomain": "contoso", "time_zone": TIME_ZONE},
        "users": users,
        "tokens": [{"token": demo.syncro_token, "user_id": DISPATCHER.syncro_user_id}],
        "customers": [{"id": 501, "business_name": "Fabrikam Ltd", "firstname": "Fay", "lastname": "Brook"}],
        "appointment_types": [{"id": 1, "name": "Onsite", "location_type": "customer"}],
        "appointments": [
            {
                "id": 9000 + index,
                "summary": summary,
                "start_at": _at(day, hour, now=now),
                "end_at": _at(day, hour + hours, now=now),
                "user_id": tech,
                "user_ids": [tech],
                "customer_id": 501,
                "appointment_type_id": 1,
            }
            for index, (summary, day, hour, hours, tech) in enumerate(appointments)
        ],
    }
