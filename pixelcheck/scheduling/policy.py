"""The scheduling policy: each principal falls in one class (its strongest role), and the class sets its
fair-share weight, its cap of queued + running analyses, and its upload rate."""

from __future__ import annotations

from dataclasses import dataclass

from pixelcheck.iam.principal import ADMIN, PROFESSIONAL, SERVICE, USER, Principal
from pixelcheck.settings import Settings

PRINCIPAL_CLASSES = (USER, PROFESSIONAL, ADMIN, SERVICE)


@dataclass(frozen=True)
class Share:
    """Whose work an item is, and how much of the workers that principal gets when others wait too."""

    principal_id: str
    principal_class: str = USER
    weight: float = 1.0


@dataclass(frozen=True)
class UploadRate:
    per_second: float
    burst: int


def principal_class(principal: Principal) -> str:
    """SERVICE for service tokens, else the strongest of ADMIN, PROFESSIONAL, USER."""
    for name in (SERVICE, ADMIN, PROFESSIONAL):
        if name in principal.roles:
            return name
    return USER


@dataclass(frozen=True)
class SchedulingPolicy:
    weights: dict[str, float]
    pending_caps: dict[str, int]  # 0 = no cap
    service_pending_cap: int  # 0 = no cap
    upload_rates: dict[str, UploadRate | None]  # None = no limit
    queue_full_retry_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulingPolicy:
        return cls(weights=settings.scheduling_weight_map, pending_caps=settings.admission_pending_cap_map,
                   service_pending_cap=settings.admission_service_pending_cap,
                   upload_rates={name: UploadRate(rate, burst) if rate > 0 else None
                                 for name, (rate, burst) in settings.upload_rate_limit_map.items()},
                   queue_full_retry_seconds=settings.admission_retry_after_seconds)

    def share(self, principal: Principal) -> Share:
        name = principal_class(principal)
        return Share(principal.user_id, name, self.weights.get(name, 1.0))
