"""Queue triggers pumped from Storage Queues the way the real host does it.

- Messages are fetched in batches (``batchSize``) and run concurrently; a new batch is fetched
  when fewer than ``newBatchThreshold`` are still running.
- While a function runs, its message stays invisible (for the function timeout plus a minute).
- Success deletes the message. Failure makes it visible again after ``visibilityTimeout``;
  after ``maxDequeueCount`` failed attempts it is moved to ``<queue>-poison``.
- An empty queue is polled less and less often, up to ``maxPollingInterval``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from azure.functions.queue import QueueMessage

from local.host.config import HostConfig
from local.host.context import arguments, call_sync
from local.host.functions import QueueFunction
from local.host.logs import invocation

log = logging.getLogger("host.queue")

_MIN_POLL = 0.1


class QueuePump:
    """Feeds one queue-triggered function from its queue until stopped."""

    def __init__(self, function: QueueFunction, connection_string: str, config: HostConfig) -> None:
        from azure.storage.queue import QueueClient

        self.function = function
        self.config = config
        # No decode policy: a message that is not valid base64 must fail like any other bad
        # message (retried, then poisoned), not break the whole batch.
        self._queue = QueueClient.from_connection_string(connection_string, function.queue_name)
        self._poison = QueueClient.from_connection_string(connection_string, f"{function.queue_name}-poison")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"queue-{function.name}", daemon=True)
        self._workers = ThreadPoolExecutor(max_workers=config.queue_batch_size, thread_name_prefix=f"q-{function.name}")
        self._in_flight: set[Future] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        for client in (self._queue, self._poison):
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._workers.shutdown(wait=True, cancel_futures=False)

    def _run(self) -> None:
        interval = _MIN_POLL
        while not self._stop.is_set():
            try:
                fetched = self._fetch()
            except Exception:
                log.exception("could not read queue %s", self.function.queue_name)
                fetched = 0
            interval = _MIN_POLL if fetched else min(interval * 2, self.config.queue_max_polling_interval)
            self._stop.wait(0.01 if fetched else interval)

    def _fetch(self) -> int:
        with self._lock:
            running = len(self._in_flight)
        if running > self.config.new_batch_threshold:
            return 0
        wanted = self.config.queue_batch_size - running
        in_flight_visibility = int(self.config.function_timeout) + 60
        messages = list(
            self._queue.receive_messages(
                max_messages=wanted, messages_per_page=wanted, visibility_timeout=in_flight_visibility
            )
        )[:wanted]
        for message in messages:
            future = self._workers.submit(self._process, message)
            with self._lock:
                self._in_flight.add(future)
            future.add_done_callback(self._done)
        return len(messages)

    def _done(self, future: Future) -> None:
        with self._lock:
            self._in_flight.discard(future)

    def _process(self, message: Any) -> None:
        limit = self.config.queue_max_dequeue_count
        if message.dequeue_count > limit:  # failed before it could be settled (a crash): poison now
            self._poison_message(message)
            return
        with invocation(self.function.name) as invocation_id:
            try:
                body = self._decode(message.content)
                trigger = QueueMessage(
                    id=message.id,
                    body=body,
                    dequeue_count=message.dequeue_count,
                    expiration_time=message.expires_on,
                    insertion_time=message.inserted_on,
                    time_next_visible=message.next_visible_on,
                    pop_receipt=message.pop_receipt,
                )
                kwargs = arguments(
                    self.function.call, self.function.binding, trigger, invocation_id, self.function.name
                )
                call_sync(self.function.call, kwargs)
            except Exception:
                log.exception("queue function raised", extra={"dequeue_count": message.dequeue_count})
                if message.dequeue_count >= limit:
                    self._poison_message(message)
                else:
                    self._queue.update_message(message, visibility_timeout=int(self.config.queue_visibility_timeout))
                return
            self._queue.delete_message(message)

    def _decode(self, content: str) -> bytes:
        if self.config.queue_message_encoding == "none":
            return content.encode("utf-8")
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("message is not valid base64 (host.json messageEncoding is base64)") from None

    def _poison_message(self, message: Any) -> None:
        log.warning("moving message to %s-poison after %d attempts", self.function.queue_name, message.dequeue_count)
        self._poison.send_message(message.content)
        self._queue.delete_message(message)
