"""The private ICS feed: each technician's Syncro appointments as an iCalendar subscription.

- `ics.render`: the feed's bytes from mirror appointments (pure).
- `ics.feed_http`: ETag, Last-Modified, 304 and the response headers (pure).
- `ics.feed`: the imperative shell behind ``GET /api/ics/{token}.ics``: token lookup, the
  mirror, the account's zone, the render caches.
- `ics.feed_tokens`: issuing and revoking feed URLs for the admin endpoint.

docs/ics.md describes what the feed holds and why.
"""
