"""Talking to the two services: the Microsoft Graph and Syncro clients, their errors, and the
retry helper they share. The sync engine (mapping, planner, executor) joins them here later.

- `sync.graph.GraphClient`: one technician's mailbox (user, calendars).
- `sync.syncro.SyncroClient`: the Syncro account (users).
- `sync.errors`: the error tree both clients raise (drawn in its docstring).
- `sync.http`: bounded, jittered retries honouring ``Retry-After``.
"""
