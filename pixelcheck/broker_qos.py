"""kombu's Redis acknowledgement bookkeeping, made safe for a channel whose broker connection is already gone.

When Redis goes away while a worker holds delivered-but-unacknowledged messages (a threads-pool webhooks
worker with acks_late tasks in flight), Celery's consumer first collects the broken connection, which closes
its kombu transport, and then closes the connection again. That second close finishes closing the channel and
asks the QoS to put the unacknowledged messages back; with the transport closed, kombu (5.7) cannot build a
Redis client and raises AttributeError, which Celery takes for an unrecoverable error and stops the worker.
The same happens when a task that was running during the outage finishes and acknowledges its message on
the old channel after the worker reconnected.

With the connection gone, nothing can be done in Redis through that channel anyway. The messages stay in
kombu's unacked index (when the broker kept its data), and kombu's visibility-timeout restore
(QoS.restore_visible, run by every consuming worker) puts them back in their queue; when the broker lost its
data, the webhook dispatcher re-finds due deliveries in the database. Our tasks are idempotent (acks_late),
so a message redelivered after it was already handled does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

log = logging.getLogger("pixelcheck.broker")


class ConnectionLossSafeQoS(kombu_redis.QoS):
    """kombu's Redis QoS that skips the Redis side of restore/ack/reject once its channel's connection is gone."""

    def _connection_gone(self) -> bool:
        transport = self.channel.connection  # None once the channel was closed
        return transport is None or transport.client is None  # client is None once the connection was closed

    def restore_unacked(self, client: Any = None) -> None:
        if client is None and self._connection_gone():
            log.warning("broker connection gone: %d unacknowledged message(s) are left to the visibility timeout",
                        len(self._delivered))
            self._delivered.clear()
            return
        super().restore_unacked(client)

    def ack(self, delivery_tag: Any) -> None:
        if self._connection_gone():
            log.info("broker connection gone: message %s not acknowledged; it may be delivered again", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)  # forget it locally only
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if self._connection_gone():
            log.info("broker connection gone: message %s not rejected; it may be delivered again", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue)


def use_connection_loss_safe_qos() -> None:
    """Make every kombu Redis channel in this process use ConnectionLossSafeQoS (idempotent)."""
    kombu_redis.Channel.QoS = ConnectionLossSafeQoS
