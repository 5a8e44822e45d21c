"""Real time: the Graph and Syncro webhooks, the lifecycle of Graph subscriptions, and the one
coalescing way to ask for a technician's sync (`realtime.enqueue.request_sync`). The queue job
and the timers live beside them (`realtime.jobs`, `realtime.timers`). See docs/realtime.md."""

# The queue of Graph subscription work (lifecycle events, a new link's subscription): its own
# queue, so subscription work never waits behind a backlog of syncs. A constant, because a queue
# trigger's name is fixed when the app is indexed.
SUBSCRIPTION_QUEUE = "subscription-jobs"
