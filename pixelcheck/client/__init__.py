"""The PixelCheck Python SDK: what another service imports to ask whether an image is AI-generated.

    from pixelcheck.client import PixelCheckClient

    with PixelCheckClient("pixelcheck.internal:443", root_certificates=ca_pem) as client:
        client.sign_in("svc-moderation", password)
        result = client.analyze("upload.jpg")

See pixelcheck.client.sdk for every call; failures raise PixelCheckError.
"""

from pixelcheck.client.errors import FieldViolation, IntegrityError, PixelCheckError
from pixelcheck.client.retry import NO_RETRY, RetryPolicy
from pixelcheck.client.sdk import PixelCheckClient, Session

__all__ = ["NO_RETRY", "FieldViolation", "IntegrityError", "PixelCheckClient", "PixelCheckError",
           "RetryPolicy", "Session"]
