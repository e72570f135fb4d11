"""Who may call what: the one table of role requirements. Object-level checks live in the services."""

from __future__ import annotations

from pixelcheck.iam.principal import ADMIN, PROFESSIONAL, SERVICE, USER

PUBLIC: frozenset[str] = frozenset()
PEOPLE = frozenset({USER, PROFESSIONAL, ADMIN})
ANYONE = frozenset({USER, PROFESSIONAL, ADMIN, SERVICE})
REPORTERS = frozenset({PROFESSIONAL, ADMIN})
REPORT_READERS = frozenset({PROFESSIONAL, ADMIN, SERVICE})
ADMINS = frozenset({ADMIN})

_P = "/pixelcheck.v1."

# Method -> roles of which the caller needs one; PUBLIC needs no token. A method missing here is refused.
METHOD_ROLES: dict[str, frozenset[str]] = {
    f"{_P}AuthService/SignUp": PUBLIC,
    f"{_P}AuthService/SignIn": PUBLIC,
    f"{_P}AuthService/RefreshToken": PUBLIC,
    f"{_P}AuthService/SignOut": PEOPLE,
    f"{_P}AuthService/GetCurrentUser": ANYONE,
    f"{_P}AuthService/SetUserRoles": ADMINS,
    f"{_P}AuthService/SignOutEverywhere": PEOPLE,  # another user's: ADMIN, checked by the use case
    f"{_P}AuthService/ListServiceTokens": ADMINS,
    f"{_P}AuthService/RevokeServiceToken": ADMINS,
    f"{_P}IngestionService/UploadImage": PEOPLE,
    f"{_P}IngestionService/GetImage": ANYONE,
    f"{_P}IngestionService/ListImages": ANYONE,
    f"{_P}IngestionService/DeleteImage": PEOPLE,
    f"{_P}IngestionService/ImportImage": PEOPLE,
    f"{_P}ResultsService/GetResult": ANYONE,
    f"{_P}ResultsService/WatchAnalysis": ANYONE,
    f"{_P}ResultsService/ListResults": ANYONE,
    f"{_P}ResultsService/GetModelInfo": ANYONE,
    f"{_P}ResultsService/GetRegionMap": PEOPLE,
    f"{_P}ReportsService/CreateReport": REPORTERS,
    f"{_P}ReportsService/GetReport": REPORT_READERS,
    f"{_P}ReportsService/ListReports": REPORT_READERS,
    f"{_P}ReportsService/DownloadReport": REPORT_READERS,
    f"{_P}WebhooksService/CreateWebhookEndpoint": PEOPLE,
    f"{_P}WebhooksService/ListWebhookEndpoints": PEOPLE,
    f"{_P}WebhooksService/DeleteWebhookEndpoint": PEOPLE,
    f"{_P}WebhooksService/RotateWebhookSecret": PEOPLE,
    f"{_P}WebhooksService/ListWebhookDeliveries": PEOPLE,
    f"{_P}AuditService/RecordEvent": ANYONE,
    f"{_P}AuditService/ListEvents": ADMINS,
    f"{_P}AuditService/VerifyAuditLog": ADMINS,
    f"{_P}AuditService/GetUsageStatistics": ADMINS,
}

PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/",
                   "/grpc.reflection.v1alpha.ServerReflection/")


def required_roles(method: str) -> frozenset[str] | None:
    """Roles needed for method: PUBLIC (empty) for public ones, None for a method we do not serve."""
    if method.startswith(PUBLIC_PREFIXES):
        return PUBLIC
    return METHOD_ROLES.get(method)
