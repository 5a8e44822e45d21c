"""What Syncro writes over what it is sent (seen on a live account; off unless a setting asks).

- description: an appointment linked to a ticket (or, in "customer" mode, to a customer) gets a
  description built from the sent notes, the contact, the ticket and its URL, and the customer's
  details. The layout follows the spec's example description ("Notes:\\n ...\\n\\n Contact: ...").
- location: from the appointment type's ``location_type``: the customer's address ("customer"),
  "In Shop" ("shop"), the type's ``location_hard_code`` ("pre_defined"); "manual_entry" keeps
  what was sent.
"""

from __future__ import annotations

from local.sims.syncro.model import Account, AppointmentType, Customer, Ticket
from local.sims.syncro.render import ticket_url

IN_SHOP = "In Shop"


def description(
    notes: str | None, *, mode: str, account: Account, customer: Customer | None, ticket: Ticket | None
) -> str | None:
    """The description Syncro stores, or None when ``mode`` leaves ``notes`` as sent."""
    if mode == "off" or (ticket is None and (mode == "ticket" or customer is None)):
        return None
    lines = ["Notes:", f" {notes or ''}", ""]
    if customer is not None:
        lines += [" Contact: ", f"{customer.fullname or customer.business_name or ''} ", ""]
    lines.append(" Details: ")
    if ticket is not None:
        lines += [
            f"Ticket #{ticket.number}: {ticket.subject}",
            f" Status: {ticket.status}",
            f" {ticket_url(account, ticket.id)}",
            "",
        ]
    if customer is not None:
        lines += ["Customer Information: ", f" {customer.business_name or customer.fullname}"]
        lines.append(f"  Phone: {customer.phone or ''} - {customer.email or ''}")
        address = customer_address(customer)
        if address:
            lines.append(f"  Address: {address}")
    return "\n".join(lines)


def location(appointment_type: AppointmentType | None, customer: Customer | None) -> str | None:
    """The location Syncro stores, or None when what was sent is kept."""
    if appointment_type is None:
        return None
    kind = appointment_type.location_type
    if kind == "shop":
        return IN_SHOP
    if kind == "pre_defined":
        return appointment_type.location_hard_code
    if kind == "customer" and customer is not None:
        return customer_address(customer) or None
    return None


def customer_address(customer: Customer) -> str:
    """One line: street, second line, city, "state zip"; empty when the customer has none."""
    region = " ".join(part for part in (customer.state, customer.zip) if part)
    return ", ".join(part for part in (customer.address, customer.address_2, customer.city, region) if part)
