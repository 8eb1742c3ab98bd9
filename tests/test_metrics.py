"""/metrics of each service, built by its factory: Prometheus text that moves with the work."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.gallery.app import create_app as create_gallery
from services.resize.app import create_app as create_resize
from services.upload.app import create_app as create_upload
from shared.config import GalleryConfig, ResizeConfig, UploadConfig
from shared.logs import REQUEST_ID_HEADER, RequestIdFilter, json_formatter
from tests.support import file_form, image_bytes, photo


@pytest.fixture
async def services(aiohttp_client, aiohttp_server, env, db):
    """Three apps in one process, as in production each with a registry of its own."""
    resize = await aiohttp_server(create_resize(ResizeConfig.from_env(env)))
    upload = await aiohttp_client(create_upload(
        UploadConfig.from_env({**env, "KITTEH_RESIZE_URL": str(resize.make_url(""))})))
    gallery = await aiohttp_client(create_gallery(
        GalleryConfig.from_env({**env, "KITTEH_ACCEL_REDIRECT": "0"})))
    resize_client = await aiohttp_client(resize)
    return upload, resize_client, gallery


async def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, parsed as Prometheus text, by (name, sorted labels)."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_one_upload_moves_the_counters(services):
    upload, resize, gallery = services
    before = await scrape(upload)
    assert value(before, "kitteh_uploads_total", outcome="created", format="jpeg") == 0

    data = photo("j07_wine.jpg").read_bytes()
    response = await upload.post("/api/images", data=file_form(data, "wine.jpg"))
    assert response.status == 201
    again = await upload.post("/api/images", data=file_form(data, "wine.jpg"))
    assert again.status == 200
    refused = await upload.post("/api/images", data=file_form(b"not an image", "x.jpg"))
    assert refused.status == 415

    after = await scrape(upload)
    assert value(after, "kitteh_uploads_total", outcome="created", format="jpeg") == 1
    assert value(after, "kitteh_uploads_total", outcome="duplicate", format="jpeg") == 1
    assert value(after, "kitteh_uploads_total", outcome="refused", format="unknown") == 1
    assert value(after, "kitteh_upload_refusals_total", code="unsupported_image") == 1
    assert value(after, "kitteh_upload_received_bytes_total") == 2 * len(data) + 12
    # Latency by the route's pattern and the status it was answered with.
    assert value(after, "kitteh_http_request_duration_seconds_count",
                 route="/api/images", method="POST", status="201") == 1
    assert value(after, "kitteh_http_request_duration_seconds_count",
                 route="/api/images", method="POST", status="415") == 1
    assert value(after, "kitteh_db_pool_connections") >= 1
    assert value(after, "kitteh_storage_free_bytes") > 0
    assert value(after, "process_resident_memory_bytes") > 0

    made = await scrape(resize)
    for kind in ("tiny", "large", "monstrous"):
        assert value(made, "kitteh_variant_render_seconds_count", kind=kind,
                     format="jpeg") == 1
    assert value(made, "kitteh_variant_render_seconds_sum", kind="monstrous",
                 format="jpeg") > 0
    # The backlog: the AVIF/WebP and wider pairs are made after the answer; the gauge counts
    # them down to nothing.
    for _ in range(600):
        if value(made, "kitteh_variants_not_ready", state="pending") == 0:
            break
        await asyncio.sleep(0.1)
        made = await scrape(resize)
    assert value(made, "kitteh_variants_not_ready", state="pending") == 0
    assert value(made, "kitteh_resize_queue_depth") == 0
    assert value(made, "kitteh_http_request_duration_seconds_count",
                 route="/variants/{token}", method="POST", status="200") == 1
    # The gallery's registry is its own: no upload counters, its own requests only.
    read = await scrape(gallery)
    assert ("kitteh_uploads_total", (("format", "jpeg"), ("outcome", "created"))) not in read
    assert value(read, "kitteh_storage_free_bytes") > 0


async def test_backlog_and_reconciler_runs_are_counted(services, db):
    _, resize, _ = services
    image_id = await db.fetchval(
        "INSERT INTO images (token, name, sha256, storage_key, filename, content_type, width,"
        " height, bytes, delete_token_hash) VALUES ('lostcat', 'LostCat', $1, $2, 'x.jpg',"
        " 'image/jpeg', 10, 10, 1, $1) RETURNING id", b"\0", "0" * 32)
    await db.execute("INSERT INTO variants (image_id, kind, width, height, state, attempts) "
                     "VALUES ($1, 'tiny', 10, 10, 'failed', 5)", image_id)
    samples = await scrape(resize)
    assert value(samples, "kitteh_variants_not_ready", state="failed") == 1
    for _ in range(50):  # the reconciler runs every second in these tests
        if value(samples, "kitteh_background_runs_total", task="reconciler", outcome="ok"):
            break
        await asyncio.sleep(0.1)
        samples = await scrape(resize)
    assert value(samples, "kitteh_background_runs_total", task="reconciler", outcome="ok") >= 1


async def test_route_labels_stay_bounded(services):
    _, _, gallery = services
    for token in ("a", "b", "c"):
        await gallery.get(f"/api/images/{token}")
    await gallery.get("/api/images/x/y/z")  # no such route
    await gallery.put("/")  # a method the route does not take
    samples = await scrape(gallery)
    assert value(samples, "kitteh_http_request_duration_seconds_count",
                 route="/api/images/{token}", method="GET", status="404") == 3
    assert value(samples, "kitteh_http_request_duration_seconds_count",
                 route="unmatched", method="GET", status="404") == 1
    assert value(samples, "kitteh_http_request_duration_seconds_count",
                 route="unmatched", method="PUT", status="405") == 1
    routes = {dict(labels).get("route") for name, labels in samples
              if name == "kitteh_http_request_duration_seconds_count"}
    assert routes <= {"/api/images/{token}", "unmatched", "/metrics"}


async def test_request_id_is_kept_returned_and_logged(services, caplog):
    upload, _, _ = services
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())  # what configure_logging puts on its handler
    response = await upload.post("/api/images", data=file_form(image_bytes(size=(80, 60))),
                                 headers={REQUEST_ID_HEADER: "trace-me.1"})
    assert response.status == 201
    assert response.headers[REQUEST_ID_HEADER] == "trace-me.1"
    # The upload's own line and resize's (the id went along with the call to resize).
    loggers = {r.name for r in caplog.records if getattr(r, "request_id", None) == "trace-me.1"}
    assert {"kitteh.upload", "kitteh.resize"} <= loggers

    unsafe = await upload.get("/healthz", headers={REQUEST_ID_HEADER: "bad id\u00e9"})
    made = unsafe.headers[REQUEST_ID_HEADER]
    assert made != "bad id\u00e9" and len(made) == 32


def test_log_lines_are_one_json_object():
    record = logging.LogRecord("kitteh.upload", logging.ERROR, __file__, 1, "stored %s",
                               ("Cat\n\"quoted\"",), None)
    record.request_id = "abc"
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json_formatter("upload").format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "stored Cat\n\"quoted\""
    assert (parsed["level"], parsed["logger"], parsed["service"], parsed["request_id"]) == \
        ("ERROR", "kitteh.upload", "upload", "abc")
    assert "Traceback" in parsed["exc_info"] and parsed["time"]


def test_animation_render_times_are_labelled_with_the_format_written(tmp_path):
    """An animated GIF's variants are WebP (animated, and still posters): the histogram
    says webp, not the still GIF's png."""
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry

    from services.resize.engine import PillowEngine
    from services.resize.metrics import MeasuredEngine, ResizeMetrics
    from shared.formats import BY_NAME
    from shared.variants import variant_specs
    from tests.test_formats_in import animated

    source = tmp_path / "cat.gif"
    source.write_bytes(animated("GIF", [50] * 4, 0))
    registry = CollectorRegistry()
    metrics = ResizeMetrics(registry, SimpleNamespace(busy=0, threads=1))
    MeasuredEngine(PillowEngine(), metrics).render_all(source, BY_NAME["GIF"],
                                                        variant_specs(480, 270))
    for kind in ("tiny", "large", "monstrous"):
        assert registry.get_sample_value("kitteh_variant_render_seconds_count",
                                         {"kind": kind, "format": "webp"}) == 1, kind
        assert registry.get_sample_value("kitteh_variant_render_seconds_count",
                                         {"kind": kind, "format": "png"}) is None
