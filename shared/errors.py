"""Domain errors: raised anywhere, turned into a status and a message in one middleware."""

from __future__ import annotations


class KittehError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BadRequest(KittehError):
    status, code = 400, "bad_request"


class Unauthorized(KittehError):
    """No upload key, or not a live one: answered with ``WWW-Authenticate: Bearer``."""

    status, code = 401, "unauthorized"


class Forbidden(KittehError):
    status, code = 403, "forbidden"


class NotFound(KittehError):
    status, code = 404, "not_found"


class TooLarge(KittehError):
    status, code = 413, "too_large"


class UnsupportedImage(KittehError):
    status, code = 415, "unsupported_image"


class ImageOverLimits(KittehError):
    status, code = 422, "over_limits"


class Busy(KittehError):
    status, code = 503, "busy"

    def __init__(self, message: str, *, retry_after: int = 2):
        super().__init__(message, retry_after=retry_after)


class StorageFull(KittehError):
    """The volume (or the database's disk) has no room left: not the client's fault, and not
    over in a few seconds like a restart, so 507 rather than 503."""

    status, code = 507, "storage_full"

    def __init__(self, message: str, *, retry_after: int = 60):
        super().__init__(message, retry_after=retry_after)


class RequestTimeout(KittehError):
    status, code = 408, "too_slow"
