"""Names of the domain events in the audit trail. Every context records through
`container.audit_recorder.record(<name>, actor_id=..., target=..., payload=..., request_id=..., peer=...)`
with one of these, so ListEvents filters find them under one spelling."""

from __future__ import annotations

USER_SIGNED_UP = "user.signed_up"  # target user:<id>
SIGN_IN_FAILED = "user.sign_in_failed"  # payload {login}; peer is the caller's address
ROLES_CHANGED = "user.roles_changed"  # target user:<id>; payload {before, after}
SERVICE_TOKEN_ISSUED = "token.service_issued"  # target user:<id>; payload {token_id, expires}
UPLOAD_ACCEPTED = "upload.accepted"  # target image:<id>; payload {sha256, size_bytes, duplicate}
UPLOAD_REJECTED = "upload.rejected"  # payload {reason, sha256, size_bytes}; peer
ANALYSIS_SUCCEEDED = "analysis.succeeded"  # target image:<id>; payload {label, confidence, duration_ms}
ANALYSIS_FAILED = "analysis.failed"  # target image:<id>; payload {reason}
REPORT_READY = "report.ready"  # target report:<id>; payload {format, size_bytes}
IMAGE_DELETED = "image.deleted"  # target image:<id>
RETENTION_APPLIED = "retention.applied"  # payload: counts pruned and deleted

DOMAIN_ACTIONS = (USER_SIGNED_UP, SIGN_IN_FAILED, ROLES_CHANGED, SERVICE_TOKEN_ISSUED, UPLOAD_ACCEPTED,
                  UPLOAD_REJECTED, ANALYSIS_SUCCEEDED, ANALYSIS_FAILED, REPORT_READY, IMAGE_DELETED,
                  RETENTION_APPLIED)
