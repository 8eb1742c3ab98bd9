"""AWS Signature Version 4 for the few bucket-level S3 requests obstore does not make.

obstore (the S3 store's client) is an object API: it has no HeadBucket or CreateBucket. The
store makes those two itself (``check`` and ``problem``), signed here; the tests use the same
signer to look at a bucket directly. Only header signing of a request whose body is in hand.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sigv4_headers(method: str, host: str, path: str, query: str, payload_sha256: str,
                  access_key_id: str, secret_access_key: str, region: str,
                  now: datetime.datetime | None = None) -> dict[str, str]:
    """The headers that sign one S3 request. ``host`` is the Host header (with a port when
    not the scheme's default), ``path`` is not yet URI-encoded, ``query`` is ``k=v&...``
    already encoded."""
    now = now or datetime.datetime.now(datetime.UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    canonical_query = "&".join(sorted(q if "=" in q else f"{q}=" for q in query.split("&")
                                      if q))
    headers = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, quote(path, safe="/-_.~"), canonical_query,
                           *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed,
                           payload_sha256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_access_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    return headers
