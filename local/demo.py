"""The demo Syncro account and Microsoft tenant that `make run` seeds: techs whose emails match
across both, one personal Microsoft account, a few appointments and events.

As in real tenants, a Microsoft sign-in name (UPN) is not always the mailbox's address: Blake
signs in as ``b.tech@…`` while his mail and his Syncro email are ``Blake.Tech@…`` in other case,
and Casey's personal account has no ``mail`` at all."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from settings import ADMIN_APP_ROLE

TENANT_ID = "5c1a3a6e-0d5e-4c2b-9f0a-2b7f1d9e8c11"
CLIENT_ID = "9f6b2d4e-7a1c-4e8b-b3d2-6c5a4f3e2d10"
TIME_ZONE = "America/Los_Angeles"


@dataclass(frozen=True)
class DemoUser:
    email: str  # in Syncro
    name: str
    syncro_user_id: int
    personal: bool = False
    upn: str | None = None  # the Microsoft sign-in name, when it is not ``email``
    mail: str | None = ""  # the Microsoft mailbox address: "" for ``email``, None for none

    @property
    def sign_in(self) -> str:
        return self.upn or self.email

    @property
    def microsoft_mail(self) -> str | None:
        return self.email if self.mail == "" else self.mail


# Syncro ids as a live account has them: users in the millions, customers in the tens of millions,
# tickets in the hundreds of millions, appointments above 2^32 (a live create returned 5560138523).
DISPATCHER = DemoUser("dana.dispatch@contoso.example", "Dana Dispatch", 1_342_100)
TECHS = (
    DemoUser("alex.tech@contoso.example", "Alex Tech", 1_342_117),
    DemoUser(
        "blake.tech@contoso.example",
        "Blake Tech",
        1_342_118,
        upn="b.tech@contoso.example",
        mail="Blake.Tech@contoso.example",
    ),
    DemoUser("casey.home@outlook.example", "Casey Home", 1_342_131, personal=True, mail=None),
)
CUSTOMER_ID = 28_417_993
FIRST_TICKET_ID = 104_552_301
FIRST_APPOINTMENT_ID = 5_560_138_523


@dataclass(frozen=True)
class DemoSecrets:
    client_secret: str
    syncro_token: str  # the dispatcher's: the app's account-wide token
    password: str
    # Each tech's own Syncro API token (Syncro hides appointment owners, so linking asks for it).
    tech_tokens: dict[int, str] = field(default_factory=dict)

    @classmethod
    def fresh(cls) -> DemoSecrets:
        tokens = {tech.syncro_user_id: secrets.token_hex(20) for tech in TECHS}
        return cls(secrets.token_urlsafe(24), secrets.token_hex(20), "Demo-" + secrets.token_urlsafe(9), tokens)

    def tech_token(self, sign_in: str) -> str | None:
        """The Syncro API token of the demo tech who signs in to Microsoft as ``sign_in``."""
        tech = next((t for t in TECHS if t.sign_in.lower() == sign_in.lower()), None)
        return self.tech_tokens.get(tech.syncro_user_id) if tech else None


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
            {
                "upn": u.sign_in,
                "mail": u.microsoft_mail,
                "password": demo.password,
                "name": u.name,
                "personal": u.personal,
                "admin": u is DISPATCHER,  # so the demo tenant has someone who can grant admin consent
                # The dispatcher runs the app: its SyncAdmin role opens the admin overview.
                "app_roles": {CLIENT_ID: [ADMIN_APP_ROLE]} if u is DISPATCHER else {},
            }
            for u in (*TECHS, DISPATCHER)
        ],
        "apps": [
            {
                "client_id": CLIENT_ID,
                "client_secret": demo.client_secret,
                "name": "Syncro Outlook Sync (demo)",
                "redirect_uris": [redirect_uri],
                "sign_in_audience": "AzureADandPersonalMicrosoftAccount",
                "app_roles": [ADMIN_APP_ROLE],
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
                "upn": user["upn"],
                "mail": user["mail"],
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
    # (summary, day offset, hour, hours, tech, ticket index or None)
    appointments = [
        ("Server swap at Fabrikam", 1, 9, 2, alex, 0),
        ("Firewall review", 1, 13, 1, blake, 1),
        ("Onboarding workstation setup", 3, 10, 3, alex, None),
        ("Backup restore test", -2, 15, 1, alex, None),
        ("Printer fleet check", 4, 8, 2, casey, 2),
    ]
    tickets = [
        ("Replace failing file server", "In Progress", alex),
        ("Quarterly firewall review", "New", blake),
        ("Printers jam on tray 2", "Scheduled", casey),
    ]
    return {
        "account": {"subdomain": "contoso", "time_zone": TIME_ZONE},
        "users": users,
        "tokens": [
            {"token": demo.syncro_token, "user_id": DISPATCHER.syncro_user_id},
            *({"token": token, "user_id": tech} for tech, token in demo.tech_tokens.items()),
        ],
        "customers": [
            {
                "id": CUSTOMER_ID,
                "business_name": "Fabrikam Ltd",
                "firstname": "Fay",
                "lastname": "Brook",
                "address": "400 Harbor Way",
                "address_2": "Floor 3",
                "city": "Seattle",
                "state": "WA",
                "zip": "98104",
            }
        ],
        "tickets": [
            {
                "id": FIRST_TICKET_ID + index,
                "number": 20410 + index,
                "subject": subject,
                "status": status,
                "customer_id": CUSTOMER_ID,
                "user_id": tech,
            }
            for index, (subject, status, tech) in enumerate(tickets)
        ],
        "appointment_types": [{"id": 1, "name": "Onsite", "location_type": "customer"}],
        "appointments": [
            {
                "id": FIRST_APPOINTMENT_ID + index,
                "summary": summary,
                "start_at": _at(day, hour, now=now),
                "end_at": _at(day, hour + hours, now=now),
                "user_id": tech,
                "user_ids": [tech],
                "customer_id": CUSTOMER_ID,
                "appointment_type_id": 1,
                **({"ticket_id": FIRST_TICKET_ID + ticket} if ticket is not None else {}),
            }
            for index, (summary, day, hour, hours, tech, ticket) in enumerate(appointments)
        ],
    }
