"""What the upload service counts: uploads by outcome and format, bytes, refusals by code."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from shared.errors import KittehError
from shared.formats import FORMATS

FETCH_OUTCOMES = ("fetched", "refused", "unreachable", "bad_link", "too_large")
UPLOAD_ROUTES = frozenset({"/api/images", "/upload", "/share"})


class UploadMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.uploads = Counter(
            "kitteh_uploads", "Uploads answered, by outcome (created: a new image; "
            "duplicate: the same bytes were there already; refused: a 4xx/5xx answer) and "
            "by the format found in the content (unknown when refused).",
            ["outcome", "format"], registry=registry)
        self.received_bytes = Counter(
            "kitteh_upload_received_bytes", "Bytes of image files received in full (as sent, "
            "before metadata is removed).", registry=registry)
        self.refusals = Counter(
            "kitteh_upload_refusals", "Uploads refused, by the error code of the JSON answer "
            "(too_large, unsupported_image, over_limits, storage_full, busy...).",
            ["code"], registry=registry)
        self.fetches = Counter(
            "kitteh_upload_fetches", "Uploads from a link, by outcome (fetched: the bytes "
            "arrived and went on to ingest like a file; refused: an address Kitteh will not "
            "reach; unreachable; bad_link; too_large).", ["outcome"], registry=registry)
        for outcome in FETCH_OUTCOMES:
            self.fetches.labels(outcome)
        # Every series exists from the start at 0, so rate() and increase() see the first
        # upload of each kind rather than a series appearing out of nowhere.
        for fmt in FORMATS:
            for outcome in ("created", "duplicate"):
                self.uploads.labels(outcome, fmt.name.lower())
        self.uploads.labels("refused", "unknown")
        for error in KittehError.__subclasses__():
            self.refusals.labels(error.code)

    def accepted(self, created: bool, fmt: str) -> None:
        self.uploads.labels("created" if created else "duplicate", fmt.lower()).inc()

    def refused(self, request: web.Request, error: KittehError) -> None:
        """The error middleware's hook: counts refusals of the upload routes only."""
        resource = request.match_info.route.resource
        if request.method == "POST" and resource is not None \
                and resource.canonical in UPLOAD_ROUTES:
            self.uploads.labels("refused", "unknown").inc()
            self.refusals.labels(error.code).inc()


UPLOAD_METRICS = web.AppKey("upload_metrics", UploadMetrics)
