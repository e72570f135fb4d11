"""Names of the domain events in the audit trail, one spelling each so ListEvents(action=...) finds them.

Contexts record through `container.audit_recorder.record(<name>, actor_id=..., target=..., payload=...,
request_id=..., peer=...)`; RPCs themselves are recorded as "rpc" by the call interceptor.
"""

from __future__ import annotations

USER_SIGNED_UP = "user.signed_up"
SIGN_IN_FAILED = "user.sign_in_failed"  # with the caller's peer
ROLES_CHANGED = "user.roles_changed"
SERVICE_TOKEN_ISSUED = "token.service_issued"
UPLOAD_ACCEPTED = "upload.accepted"
UPLOAD_REJECTED = "upload.rejected"  # payload: reason, sha256, size_bytes (and source_url for ImportImage)
IMAGE_DELETED = "image.deleted"
ANALYSIS_SUCCEEDED = "analysis.succeeded"
ANALYSIS_FAILED = "analysis.failed"
REPORT_READY = "report.ready"
RETENTION_APPLIED = "retention.applied"
WEBHOOK_ENDPOINT_CREATED = "webhook.endpoint_created"
WEBHOOK_ENDPOINT_DELETED = "webhook.endpoint_deleted"
WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"

DOMAIN_ACTIONS = (USER_SIGNED_UP, SIGN_IN_FAILED, ROLES_CHANGED, SERVICE_TOKEN_ISSUED, UPLOAD_ACCEPTED,
                  UPLOAD_REJECTED, IMAGE_DELETED, ANALYSIS_SUCCEEDED, ANALYSIS_FAILED, REPORT_READY,
                  RETENTION_APPLIED, WEBHOOK_ENDPOINT_CREATED, WEBHOOK_ENDPOINT_DELETED, WEBHOOK_SECRET_ROTATED)
