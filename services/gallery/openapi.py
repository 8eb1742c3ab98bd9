"""``GET /api/openapi.json``: the HTTP API as an OpenAPI 3.1 document, written by hand.

Kept beside the handlers it describes, and checked against the running gateway by
schemathesis (tests/e2e/test_openapi.py): every answer, errors included, must match it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.upload.options import MAX_EXPIRES_IN, MIN_EXPIRES_IN
from shared.albums import MAX_ALBUM_IMAGES, MAX_TITLE

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {JSON: {"schema": _ref("Error")}}}
    if headers:
        response["headers"] = headers
    return response


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
CHALLENGE = {"WWW-Authenticate": {"description": "always `Bearer realm=\"kitteh\"`",
                                  "schema": {"type": "string", "pattern": "^Bearer"}}}
BUSY = _error("busy, or the database or volume briefly unavailable", RETRY_AFTER)
RATE_LIMITED = _error("too many writes from this address (the gateway's limit)")
BAD = _error("a malformed request: the message says what is wrong")
TOKEN = {"name": "token", "in": "path", "required": True,
         "description": "the image's token: its name in lower case",
         "schema": {"type": "string", "pattern": "^[a-z0-9]{1,100}$"}}
ERROR_CODES = ["bad_request", "unauthorized", "forbidden", "not_found", "too_slow",
               "too_large", "unsupported_image", "over_limits", "rate_limited", "busy",
               "storage_full", "misdirected", "method_not_allowed", "fetch_refused",
               "unreachable"]
ALBUM_TOKEN = {"name": "token", "in": "path", "required": True,
               "description": "the album's token: its name in lower case",
               "schema": {"type": "string", "pattern": "^[a-z0-9]{1,100}$"}}
OPTIONS = {
    "visibility": {"enum": ["public", "unlisted"], "default": "public",
                   "description": "unlisted: not in the Newest grid or the list"},
    "expires_in": {"type": "integer", "minimum": MIN_EXPIRES_IN, "maximum": MAX_EXPIRES_IN,
                   "description": "seconds from now; absent or empty: never"},
}
URL_FIELD = {"type": "string", "format": "uri", "maxLength": 2048,
             "description": "upload from a link instead of a file: an http or https URL that "
                            "Kitteh fetches (public addresses only, unless "
                            "KITTEH_FETCH_ALLOW_NETWORKS opens a range; at most 3 redirects); "
                            "the bytes are treated exactly as an uploaded file's"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string", "examples": ERROR_CODES},
                           "message": {"type": "string"}}}},
    },
    "Original": {
        "type": "object",
        "required": ["url", "width", "height", "bytes", "content_type", "filename", "frames"],
        "properties": {
            "url": {"type": "string"}, "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "bytes": {"type": "integer", "minimum": 1}, "content_type": {"type": "string"},
            "filename": {"type": "string"},
            "frames": {"type": "integer", "minimum": 1,
                       "description": "more than 1: an animation (its variants but tiny move)"}},
    },
    "VariantFile": {
        "type": "object", "required": ["url", "content_type", "bytes"],
        "properties": {
            "url": {"type": "string"}, "content_type": {"type": "string"},
            "bytes": {"type": ["integer", "null"], "minimum": 1}},
    },
    "Variant": {
        "type": "object", "required": ["url", "width", "height", "ready", "formats"],
        "properties": {
            "url": {"type": "string", "description": "the base format (JPEG, PNG, WebP)"},
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1}, "ready": {"type": "boolean"},
            "formats": {"type": "object",
                        "description": "the files of this size made so far, by output "
                                       "format (jpeg, png, webp, avif): the base one and the "
                                       "modern ones made in the background",
                        "additionalProperties": _ref("VariantFile")}},
    },
    "Rendition": {
        "type": "object",
        "required": ["url", "width", "height", "bytes", "content_type", "ready"],
        "properties": {
            "url": {"type": "string"}, "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "bytes": {"type": ["integer", "null"], "minimum": 1,
                      "description": "null until it is made"},
            "content_type": {"type": "string", "examples": ["video/mp4", "video/webm"]},
            "ready": {"type": "boolean",
                      "description": "made in the background after the upload answered"}},
    },
    "Image": {
        "type": "object",
        "required": ["token", "name", "page_url", "download_url", "original", "variants",
                     "thumbhash", "created_at", "visibility", "expires_at", "embed", "kind",
                     "duration", "renditions"],
        "properties": {
            "token": {"type": "string"}, "name": {"type": "string"},
            "page_url": {"type": "string"}, "download_url": {"type": "string"},
            "original": _ref("Original"),
            "variants": {"type": "object",
                         "description": "by size: tiny, large, monstrous, and for originals "
                                        "wide enough wide and huge",
                         "additionalProperties": _ref("Variant")},
            "thumbhash": {"type": ["string", "null"], "contentEncoding": "base64",
                          "description": "a ThumbHash of the picture (placeholder while it "
                                         "loads); null until the variants are made"},
            "created_at": {"type": "string", "format": "date-time"},
            "visibility": {"enum": ["public", "unlisted"]},
            "expires_at": {"type": ["string", "null"], "format": "date-time",
                           "description": "null: never. After it, every URL answers 404."},
            "embed": _ref("Embed"),
            "kind": {"enum": ["image", "video"],
                     "description": "video: an MP4, MOV or WebM; its variants are its first "
                                    "frame's (the poster)"},
            "duration": {"type": ["number", "null"], "minimum": 0,
                         "description": "a video's length in seconds; null for images"},
            "renditions": {"type": "object",
                           "description": "files made in the background: a video's mp4 "
                                          "(H.264 + AAC, at most 1280 wide and 30 fps) and "
                                          "av1 (AV1 + Opus in WebM), an animation's mp4",
                           "additionalProperties": _ref("Rendition")},
        },
    },
    "Embed": {
        "type": "object", "required": ["markdown", "bbcode", "html"],
        "description": "copy-as codes showing the picture (a variant, never the original) and "
                       "linking to its page, with absolute URLs: the same strings as the "
                       "page's copy buttons",
        "properties": {
            "markdown": {"type": "string", "examples": ["[![Name](direct)](page)"]},
            "bbcode": {"type": "string", "examples": ["[url=page][img]direct[/img][/url]"]},
            "html": {"type": "string",
                     "description": "<a href=page><img src=direct srcset=... alt=name "
                                    "width height></a>"}},
    },
    "Album": {
        "type": "object",
        "required": ["token", "name", "title", "page_url", "images", "created_at",
                     "visibility", "expires_at", "embed"],
        "properties": {
            "token": {"type": "string"}, "name": {"type": "string"},
            "title": {"type": ["string", "null"]},
            "page_url": {"type": "string", "description": "/{Name}Album"},
            "images": {"type": "array", "items": _ref("Image"),
                       "description": "the pictures still live, in order"},
            "created_at": {"type": "string", "format": "date-time"},
            "visibility": {"enum": ["public", "unlisted"]},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "embed": _ref("Embed"),
        },
    },
    "CreatedAlbum": {
        "allOf": [_ref("Album"), {"type": "object", "required": ["delete_token"],
                                  "properties": {"delete_token": {"type": "string"}}}],
    },
    # JSON request bodies name every field (unknown ones are ignored by the services); closed
    # here so that generators need no recursive "any JSON" for them.
    "NewAlbum": {
        "type": "object", "required": ["images"], "additionalProperties": False,
        "properties": {
            "images": {"type": "array", "minItems": 1, "maxItems": MAX_ALBUM_IMAGES,
                       "items": {"type": "object", "required": ["token"],
                                 "additionalProperties": False,
                                 "properties": {
                                     "token": {"type": "string"},
                                     "delete_token": {
                                         "type": "string",
                                         "description": "proves the picture is yours: the "
                                                        "album's delete may delete it "
                                                        "(?images=1). Without it (and "
                                                        "without the upload key it came "
                                                        "with) it is only linked"}}}},
            "title": {"type": ["string", "null"], "maxLength": MAX_TITLE},
            **OPTIONS,
        },
    },
    "Link": {
        "type": "object", "required": ["url"], "additionalProperties": False,
        "properties": {"url": URL_FIELD, **OPTIONS},
    },
    "UploadedImage": {
        "allOf": [_ref("Image"), {"type": "object", "properties": {"delete_token": {
            "type": "string",
            "description": "only in a 201: deletes the image; shown once, kept hashed"}}}],
    },
    "ImageList": {
        "type": "object", "required": ["images", "next"],
        "properties": {"images": {"type": "array", "items": _ref("Image")},
                       "next": {"type": ["string", "null"],
                                "description": "pass as `before` for the next page"}},
    },
    "Limits": {
        "type": "object",
        "required": ["max_upload_bytes", "max_side", "max_pixels", "max_frames",
                     "upload_read_timeout", "max_animation_work", "max_video_bytes",
                     "max_video_seconds"],
        "properties": {name: {"type": "integer"} for name in (
            "max_upload_bytes", "max_side", "max_pixels", "max_frames", "upload_read_timeout",
            "max_animation_work", "max_video_bytes", "max_video_seconds")},
    },
    "KeyInfo": {
        "type": "object", "required": ["name", "admin"],
        "properties": {"name": {"type": "string"}, "admin": {"type": "boolean"}},
    },
    "Upload": {
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": "the upload key, for forms that cannot "
                    "send a header; must come before `file`"},
            **OPTIONS,
            "url": URL_FIELD,
            "file": {"type": "string", "format": "binary",
                     "description": "JPEG, PNG, GIF, WebP, AVIF or HEIC, judged by its "
                                    "content; or a `url` instead"},
        },
    },
    "Uploads": {
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": "the upload key; must come before the "
                    "files"},
            **OPTIONS,
            "title": {"type": "string", "maxLength": MAX_TITLE,
                      "description": "the album's, when several files make one"},
            "url": URL_FIELD,
            "file": {"type": "array", "maxItems": MAX_ALBUM_IMAGES,
                     "items": {"type": "string", "format": "binary"},
                     "description": "one or several files (several make an album)"},
        },
    },
    "ShareX": {
        "type": "object",
        "required": ["Version", "Name", "DestinationType", "RequestMethod", "RequestURL",
                     "Body", "FileFormName", "URL", "DeletionURL"],
        "properties": {
            "Version": {"type": "string"}, "Name": {"type": "string"},
            "DestinationType": {"type": "string"}, "RequestMethod": {"const": "POST"},
            "RequestURL": {"type": "string"}, "Body": {"const": "MultipartFormData"},
            "FileFormName": {"const": "file"},
            "Headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "URL": {"type": "string"}, "ThumbnailURL": {"type": "string"},
            "DeletionURL": {"type": "string"}, "ErrorMessage": {"type": "string"}},
    },
}

PATHS: dict[str, Any] = {
    "/api/images": {
        "get": {
            "summary": "Public images, newest first (unlisted and expired ones never)",
            "operationId": "listImages",
            "parameters": [
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                {"name": "before", "in": "query", "description": "the `next` of a page",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 2**62}},
            ],
            "responses": {
                "200": {"description": "a page", "content": {JSON: {"schema": _ref("ImageList")}}},
                "400": BAD,
                "404": _error("the list is turned off (KITTEH_NEWEST=off)"),
                "503": BUSY,
            },
        },
        "post": {
            "summary": "Upload an image",
            "operationId": "uploadImage",
            "description": "With KITTEH_UPLOADS=keys an upload key is required "
                           "(`Authorization: Bearer <key>`); in open mode it is optional and "
                           "recorded when valid. The same bytes again answer 200 with the "
                           "image already there.",
            "security": [{}, {"uploadKey": []}],
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": _ref("Upload")},
                JSON: {"schema": _ref("Link")},
                "application/x-www-form-urlencoded": {"schema": _ref("Link")}}},
            "responses": {
                "201": {"description": "stored", "content": {
                    JSON: {"schema": _ref("UploadedImage")}}},
                "200": {"description": "the same bytes were uploaded before: that image",
                        "content": {JSON: {"schema": _ref("Image")}}},
                "400": BAD,
                "401": _error("keys mode: no upload key, or not a live one", CHALLENGE),
                "408": _error("the upload stalled"),
                "413": _error("too many bytes"),
                "415": _error("not a supported image or video (or damaged)"),
                "422": _error("over the pixel, side or frame limits; for a `url`: an "
                              "address Kitteh will not reach (`fetch_refused`), or a server "
                              "that cannot be reached or does not answer 200 "
                              "(`unreachable`)"),
                "429": RATE_LIMITED,
                "503": BUSY,
                "507": _error("the volume is full: nothing was stored"),
            },
        },
    },
    "/api/albums": {"post": {
        "summary": "Make an album of images uploaded before",
        "operationId": "createAlbum",
        "description": "Each picture may come with its delete token; in keys mode the upload "
                       "key it came with, or an admin key, may stand in for them (and a live "
                       "key is required, as for uploads).",
        "security": [{}, {"uploadKey": []}],
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("NewAlbum")}}},
        "responses": {
            "201": {"description": "made, with its delete token (shown once)",
                    "content": {JSON: {"schema": _ref("CreatedAlbum")}}},
            "400": BAD,
            "401": _error("keys mode: no upload key, or not a live one", CHALLENGE),
            "403": _error("a delete token does not match its picture: nothing made"),
            "413": _error("the JSON body is too large"),
            "429": RATE_LIMITED,
            "503": BUSY,
        },
    }},
    "/api/albums/{token}": {
        "parameters": [ALBUM_TOKEN],
        "get": {
            "summary": "One album, its live pictures in order",
            "operationId": "getAlbum",
            "responses": {
                "200": {"description": "the album",
                        "content": {JSON: {"schema": _ref("Album")}}},
                "404": _error("no such album (or it expired)"),
                "503": BUSY,
            },
        },
        "delete": {
            "summary": "Delete an album: its delete token, the upload key it was made with, "
                       "or an admin key",
            "operationId": "deleteAlbum",
            "security": [{"deleteToken": []}, {"uploadKey": []}],
            "parameters": [{"name": "images", "in": "query",
                            "description": "1: its pictures too (those it owns; an admin "
                                           "key: all)",
                            "schema": {"enum": ["0", "1"]}}],
            "responses": {
                "204": {"description": "deleted; no cache serves it any more"},
                "400": BAD,
                "403": _error("wrong or missing token or key, or no such album"),
                "429": RATE_LIMITED,
                "503": BUSY,
            },
        },
    },
    "/api/images/{token}": {
        "parameters": [TOKEN],
        "get": {
            "summary": "One image",
            "operationId": "getImage",
            "responses": {
                "200": {"description": "the image", "content": {JSON: {"schema": _ref("Image")}}},
                "404": _error("no such image (or it expired)"),
                "503": BUSY,
            },
        },
        "delete": {
            "summary": "Delete an image: its delete token, the upload key it came with, "
                       "or an admin key",
            "operationId": "deleteImage",
            "security": [{"deleteToken": []}, {"uploadKey": []}],
            "responses": {
                "204": {"description": "deleted, files and rows; no cache serves it any more"},
                "403": _error("wrong or missing token or key, or no such image: nothing "
                              "deleted"),
                "429": RATE_LIMITED,
                "503": BUSY,
            },
        },
    },
    "/api/limits": {"get": {
        "summary": "The limits in force", "operationId": "getLimits",
        "responses": {"200": {"description": "limits",
                              "content": {JSON: {"schema": _ref("Limits")}}}},
    }},
    "/api/keys/me": {"get": {
        "summary": "Which upload key this is (name and admin flag, never the key)",
        "operationId": "whoAmI",
        "security": [{"uploadKey": []}],
        "responses": {
            "200": {"description": "a live key", "content": {JSON: {"schema": _ref("KeyInfo")}}},
            "401": _error("no key, or not a live one", CHALLENGE),
            "429": RATE_LIMITED,
            "503": BUSY,
        },
    }},
    "/api/sharex.sxcu": {"get": {
        "summary": "A ShareX custom-uploader file; carries the upload key it is fetched with "
                   "(copied, not checked)",
        "operationId": "getShareX",
        "security": [{}, {"uploadKey": []}],
        "responses": {
            "200": {"description": "import it in ShareX (double click)",
                    "content": {JSON: {"schema": _ref("ShareX")}}},
            "400": BAD,
        },
    }},
    "/api/openapi.json": {"get": {
        "summary": "This document", "operationId": "getOpenAPI",
        "responses": {"200": {"description": "OpenAPI 3.1",
                              "content": {JSON: {"schema": {"type": "object"}}}}},
    }},
    "/img/{token}": {
        "parameters": [TOKEN],
        "get": {
            "summary": "The original, as an attachment under the name it was uploaded with",
            "operationId": "download",
            "responses": {
                "200": {"description": "the file", "content": {
                    "image/*": {"schema": {"type": "string", "format": "binary"}}}},
                "404": _html("no such image (or it expired)"),
                "421": _error("KITTEH_FILES_URL is set and this is not its host: downloads "
                              "are on the files origin (the `download_url`)"),
            },
        },
    },
    "/": {"get": {
        "summary": "The home page: the upload form and the Newest grid",
        "operationId": "home",
        "parameters": [{"name": "before", "in": "query", "description": "older tiles",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**62}}],
        "responses": {"200": _html("the page"), "400": _html("a malformed `before`")},
    }},
    "/share": {"post": {
        "summary": "The web app's share target (a phone's share sheet): like /upload; in keys "
                   "mode without a key the photos wait while the home page asks for it",
        "operationId": "shareTarget",
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"allOf": [_ref("Uploads"), {
                "type": "object", "properties": {"pending": {
                    "type": "string", "description": "a waiting share's id (with `key`)"}}}]}}}},
        "responses": {
            "303": {"description": "to the picture's or album's page (or, keys mode without "
                                   "a key, to the home page asking for it)",
                    "headers": {"Location": {"schema": {"type": "string"}}}},
            "200": _html("the page, when the redirect is followed"),
            **{status: _html(f"the form again, with what went wrong ({words})")
               for status, words in (("400", "bad form"), ("401", "keys mode: no valid key"),
                                     ("408", "stalled"), ("413", "too many bytes"),
                                     ("415", "not an image"), ("422", "over the limits"),
                                     ("429", "rate limited"), ("503", "busy"),
                                     ("507", "the volume is full"))},
        },
    }},
    "/manifest.webmanifest": {"get": {
        "summary": "The web app manifest (installable; share target)",
        "operationId": "manifest",
        "responses": {"200": {"description": "the manifest", "content": {
            "application/manifest+json": {"schema": {"type": "object"}}}}},
    }},
    "/upload": {"post": {
        "summary": "The no-JavaScript form: the same fields as POST /api/images (the key as "
                   "the field `key`, before `file`); several files make an album",
        "operationId": "formUpload",
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": _ref("Uploads")}}},
        "responses": {
            "303": {"description": "to the image's page, or the album's",
                    "headers": {"Location": {"schema": {"type": "string"}}}},
            "200": _html("the image's page, when the redirect is followed"),
            **{status: _html(f"the form again, with what went wrong ({words})")
               for status, words in (("400", "bad form"), ("401", "keys mode: no valid key"),
                                     ("408", "stalled"), ("413", "too many bytes"),
                                     ("415", "not an image"), ("422", "over the limits"),
                                     ("429", "rate limited"), ("503", "busy"),
                                     ("507", "the volume is full"))},
        },
    }},
    "/{name}": {
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "description": "the image's name, `Kitty` suffix optional, any case; "
                                       "or an album's name with `Album`",
                        "schema": {"type": "string",
                                   "pattern": "^[A-Za-z0-9]{1,100}(Kitty|Album)$"}}],
        "get": {
            "summary": "The image's page, or the album's (every picture, in order)",
            "operationId": "imagePage",
            "responses": {"200": _html("the page"),
                          "404": _html("no such image (or it expired)")},
        },
    },
    "/healthz": {"get": {
        "summary": "Liveness of the gateway", "operationId": "healthz",
        "responses": {"200": {"description": "ok",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Kitteh",
        "version": "1",
        "description": "A self-hosted image uploader. Reading is public; uploading may need "
                       "an upload key (KITTEH_UPLOADS=keys). The HTML pages are listed too; "
                       "their markup is not described.",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "uploadKey": {"type": "http", "scheme": "bearer",
                          "description": "an upload key from `kitteh keys create`"},
            "deleteToken": {"type": "http", "scheme": "bearer",
                            "description": "the `delete_token` of the upload's 201"},
        },
    },
}


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
