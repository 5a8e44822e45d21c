"""The sync: the Graph and Syncro clients, mapping between them, and the engine that keeps one
technician's two calendars in step (docs/sync.md, docs/poller.md). The core layer
(docs/architecture.md): it takes its clients, stores and deps as arguments (`services` builds them).

- `sync.graph.GraphClient`, `sync.syncro.SyncroClient`: the two services (Graph's ``$batch``, delta
  round and error answers in `sync.graph_batch`, `sync.graph_delta`, `sync.graph_errors`);
  `sync.errors` the error tree both raise and the status -> error tables, `sync.client_http` the
  retries they share, `sync.budget` the Syncro request budget.
- `sync.model`, `sync.mapping`, `sync.html_text`, `sync.merge`: an appointment on either side as
  one `Item`, and back; `sync.zones` Graph's zone names, `sync.times` ISO times,
  `sync.account_zone` the Syncro account's zone (one cache for the sync and the feed).
- `sync.planner` (pure) decides; each action of `sync.actions` runs itself against `sync.sides` (what
  it needs of Syncro, Outlook and the pair rows: `sync.syncro_side`, `sync.outlook_side`,
  `sync.pair_store`); `sync.executor` is the loop around them.
- `sync.inputs` (the planner's items and their `ItemFlags`), `sync.repairs` (tag repairs).
- `sync.engine.sync_tech`: one tech's sync under their lease, read -> plan -> execute until both
  sides agree (`sync.deps.SyncDeps` in, `sync.report.SyncReport` out); `sync.unlink` an unlink's
  last sync; `sync.recycle` the recycle bin's restore; `sync.job_reasons` why a sync was queued.
- `sync.outlook_mirror`, `sync.poller`: the two mirrors the engine reads (Graph delta rounds; the
  Syncro poll, which also queues a job per tech that changed: `sync.poll_windows`,
  `sync.poll_diff`, `sync.poll_cursors`, and `sync.ownership`, whose an appointment is).
- `sync.subscriptions`: the Graph change-notification subscriptions; `sync.syncro_tokens` the
  techs' own Syncro API tokens.
"""
