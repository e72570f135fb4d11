"""Names of everything PixelCheck keeps in Redis, under one prefix so deployments and test runs never collide."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    prefix: str

    def analysis_channel(self, image_id: str) -> str:
        return f"{self.prefix}:analysis:{image_id}"

    @property
    def analysis_channel_pattern(self) -> str:
        return f"{self.prefix}:analysis:*"

    def signin_failures(self, kind: str, value: str) -> str:
        return f"{self.prefix}:signin-failures:{kind}:{value}"

    def signin_familiar(self, login_digest: str) -> str:
        return f"{self.prefix}:signin-familiar:{login_digest}"

    def url_imports(self, user_id: str, window: int) -> str:
        return f"{self.prefix}:url-imports:{user_id}:{window}"

    def webhook_in_flight(self, endpoint_id: str) -> str:
        return f"{self.prefix}:webhook-in-flight:{endpoint_id}"

    @property
    def celery_queue(self) -> str:
        return f"{self.prefix}.tasks"

    @property
    def webhook_queue(self) -> str:
        """Webhook deliveries: their own queue, served by `pixelcheck worker --webhooks` (a thread pool), so a slow
        receiver never holds an inference worker."""
        return f"{self.prefix}.webhooks"

    @property
    def celery_keyprefix(self) -> str:
        return f"{self.prefix}:celery:"
