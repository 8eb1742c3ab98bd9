"""The OpenAPI document against the JSON the services write (schemathesis fuzzes the running
stack in tests/e2e; this checks every field of a fully made image is described)."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema

from services.gallery.openapi import DOCUMENT, PATHS
from shared.images import ImageRecord, VariantRecord, image_json
from shared.urls import Urls


def full_image() -> ImageRecord:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    sizes = (("tiny", 90, 60), ("large", 300, 200), ("monstrous", 600, 400),
             ("wide", 1280, 853), ("huge", 2048, 1365))
    return ImageRecord(
        id=1, token="abc", name="Abc", storage_key="0" * 32, filename="cat.jpg",
        content_type="image/jpeg", width=3000, height=2000, bytes=1000, frames=1,
        created_at=now,
        variants=tuple(VariantRecord(k, w, h, "ready", 100) for k, w, h in sizes),
        modern=tuple(VariantRecord(k, w, h, "ready", 50, f) for k, w, h in sizes
                     for f in ("avif", "webp")),
        thumbhash=b"\x01\x02\x03", visibility="unlisted", expires_at=now)


def described(schema: dict, instance, path: str = "") -> list[str]:
    """Fields of ``instance`` that ``schema`` (components resolved) does not name."""
    schemas = DOCUMENT["components"]["schemas"]
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
    missing = []
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            if key in props:
                missing += described(props[key], value, f"{path}.{key}")
            elif isinstance(extra, dict):
                missing += described(extra, value, f"{path}.{key}")
            else:
                missing.append(f"{path}.{key}")
    return missing


def test_every_field_of_the_image_json_is_in_the_document():
    body = image_json(full_image(), Urls("https://cats.example", "https://images.example"))
    schema = {"$ref": "#/components/schemas/Image", **DOCUMENT}
    jsonschema.Draft202012Validator(schema).validate(body)
    assert described({"$ref": "#/components/schemas/Image"}, body) == []


def test_every_field_of_the_album_json_is_in_the_document():
    from shared.albums import AlbumRecord, album_json

    image = full_image()
    album = AlbumRecord(1, "abc", "Abc", "Title", None, "public", None, image.created_at,
                        (image, image))
    body = {**album_json(album, Urls("https://cats.example")), "delete_token": "x"}
    schema = {"$ref": "#/components/schemas/CreatedAlbum", **DOCUMENT}
    jsonschema.Draft202012Validator(schema).validate(body)
    assert described({"$ref": "#/components/schemas/Album"}, body) == [".delete_token"]


def test_the_statuses_the_services_answer_are_documented():
    upload = PATHS["/api/images"]["post"]["responses"]
    assert "507" in upload  # StorageFull: the volume is full
    assert "507" in PATHS["/upload"]["post"]["responses"]
    assert "421" in PATHS["/img/{token}"]["get"]["responses"]  # a files origin's downloads


def test_every_limit_published_is_in_the_document():
    from dataclasses import asdict, fields

    from shared.config import Limits

    limits = Limits(*(1 for _ in fields(Limits)))
    assert described({"$ref": "#/components/schemas/Limits"}, asdict(limits)) == []
    assert set(asdict(limits)) == set(DOCUMENT["components"]["schemas"]["Limits"]["required"])
