"""Every environment variable Kitteh reads, in one list, with its default and meaning.

The services build their configuration objects from this list (see ``shared.config``), the
local runner passes the same names to its children, the README's configuration table is
generated from it (``python -m shared.settings``), and a test checks compose.yaml only uses
names that appear here.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None  # None: required
    help: str
    used_by: str


VARIABLES: tuple[Variable, ...] = (
    Variable("DATABASE_URL", None,
             "PostgreSQL URL (`postgresql://user:pass@host:5432/db`; a Unix socket as "
             "`?host=/dir`). The local runner sets it to its own cluster unless you set it.",
             "upload, resize, gallery, migrate"),
    Variable("KITTEH_STORAGE_DIR", "./var/images",
             "The volume: originals, variants and upload temp files.",
             "upload, resize, gallery"),
    Variable("KITTEH_STORAGE", "local",
             "Where originals and variants are kept: `local` (KITTEH_STORAGE_DIR) or `s3` "
             "(an S3-compatible bucket: the KITTEH_S3_* settings; upload temp files stay in "
             "KITTEH_STORAGE_DIR/tmp). See docs/scaling.md.",
             "upload, resize, gallery, gateway, runner, kitteh"),
    Variable("KITTEH_S3_ENDPOINT", "",
             "S3 mode: the server's URL (`http://127.0.0.1:8333` for SeaweedFS, MinIO, Ceph "
             "RGW...); empty: AWS S3 in KITTEH_S3_REGION.", "upload, resize, gallery"),
    Variable("KITTEH_S3_BUCKET", "",
             "S3 mode: the bucket (required). Made at start if missing and the key may.",
             "upload, resize, gallery"),
    Variable("KITTEH_S3_REGION", "us-east-1", "S3 mode: the region requests are signed for.",
             "upload, resize, gallery"),
    Variable("KITTEH_S3_ACCESS_KEY_ID", "", "S3 mode: the access key id (required).",
             "upload, resize, gallery"),
    Variable("KITTEH_S3_SECRET_ACCESS_KEY", "", "S3 mode: the secret access key (required).",
             "upload, resize, gallery"),
    Variable("KITTEH_BIND_HOST", "127.0.0.1",
             "Address the Python services listen on (0.0.0.0 in containers).",
             "upload, resize, gallery"),
    Variable("KITTEH_UPLOAD_PORT", "8081", "Port of the upload service.", "upload, runner"),
    Variable("KITTEH_RESIZE_PORT", "8082", "Port of the resize service.", "resize, runner"),
    Variable("KITTEH_GALLERY_PORT", "8083", "Port of the gallery service.", "gallery, runner"),
    Variable("KITTEH_ASSETS_PORT", "8084", "Port of the assets nginx.", "runner"),
    Variable("KITTEH_PORT", "8080", "The gateway's public port: the only one users need.",
             "runner, gateway"),
    Variable("KITTEH_GATEWAY_HOST", "127.0.0.1",
             "Local runner: address the gateway listens on (0.0.0.0 to reach it from the LAN).",
             "runner"),
    Variable("KITTEH_DATA_DIR", "./var",
             "Local runner: volume, logs, rendered nginx configs and the embedded PostgreSQL. "
             "The kitteh command (migrate, sweep, backup, restore) finds the installation "
             "through it.",
             "runner, kitteh"),
    Variable("KITTEH_RESIZE_URL", "http://127.0.0.1:8082",
             "Where the upload service reaches the resize service.", "upload"),
    Variable("KITTEH_PUBLIC_URL", "",
             "If set (`https://cats.example`), URLs in responses are absolute on it. Share URLs "
             "(`og:image`, `og:url`, the copy fields) are always absolute: on this, or else on "
             "the scheme and host of the request (the gateway's `X-Forwarded-Proto`/`-Host`).",
             "upload, gallery"),
    Variable("KITTEH_FILES_URL", "",
             "If set (`https://images.example`), a separate origin for uploaded files: every "
             "`/i/` and download URL is on it, the gateway serves files and downloads only on "
             "its host and pages and the API only on KITTEH_PUBLIC_URL's (then required; "
             "`/healthz` answers on every host).", "upload, gallery, gateway"),
    Variable("KITTEH_ASSETS_URL", "/assets/",
             "Base URL of the css/js assets (may be a CDN).", "gallery"),
    Variable("KITTEH_ASSETS_MANIFEST", "",
             "manifest.json written by the assets build; empty: plain file names.", "gallery"),
    Variable("KITTEH_ACCEL_REDIRECT", "1",
             "1: downloads answer with X-Accel-Redirect for nginx to stream; "
             "0: the gallery streams the file itself (no gateway in front).", "gallery"),
    Variable("KITTEH_MAX_UPLOAD_BYTES", str(40 * MiB),
             "Largest upload accepted, in bytes (413 above).", "upload, gateway"),
    Variable("KITTEH_MAX_VIDEO_BYTES", str(200 * MiB),
             "Largest video upload accepted, in bytes (413 above). The gateway's body limit "
             "is the larger of this and KITTEH_MAX_UPLOAD_BYTES.", "upload, gateway"),
    Variable("KITTEH_MAX_VIDEO_SECONDS", "300",
             "Longest video accepted, in seconds (422 above).", "upload"),
    Variable("KITTEH_MAX_SIDE", "10000",
             "Largest width or height in pixels (422 above).", "upload"),
    Variable("KITTEH_MAX_PIXELS", "40000000",
             "Largest width × height (422 above); also Pillow's decompression-bomb limit.",
             "upload, resize"),
    Variable("KITTEH_MAX_FRAMES", "900",
             "Most animation frames in a GIF, APNG or WebP (422 above).", "upload"),
    Variable("KITTEH_MAX_ANIMATION_WORK", "100000000",
             "Work budget of an animated variant, in frames × pixels of the original; "
             "beyond it the variants are still posters of the first frame (the page says so).",
             "upload, resize, gallery"),
    Variable("KITTEH_UPLOAD_READ_TIMEOUT", "60",
             "Seconds a client may stay silent while sending an upload (slow clients get cut).",
             "upload, gateway"),
    Variable("KITTEH_RESIZE_TIMEOUT", "30",
             "Seconds the upload service waits for resize before answering anyway "
             "(variants are then finished in the background).", "upload"),
    Variable("KITTEH_RESIZE_WORKERS", "0",
             "Threads doing Pillow work in the resize service; 0: one per CPU core.", "resize"),
    Variable("KITTEH_RESIZE_QUEUE", "16",
             "Resize jobs that may wait for a worker; beyond that, 503 with Retry-After.",
             "resize"),
    Variable("KITTEH_RECONCILE_INTERVAL", "5",
             "Seconds between the resize service's sweeps for pending or stale variants.",
             "resize"),
    Variable("KITTEH_SWEEP_INTERVAL", "600",
             "Seconds between the resize service's sweeps of the volume (orphan image "
             "directories, stale temp files, rows whose original is gone); 0: never "
             "(run `python -m services.resize.sweep` yourself).", "resize"),
    Variable("KITTEH_TEMP_MAX_AGE", "3600",
             "Seconds before the sweeper removes a temp file or an image directory that has "
             "no row (younger ones may belong to an upload in progress).", "resize"),
    Variable("KITTEH_UPLOAD_REPLICAS", "1",
             "Local runner: upload processes to start; replica n (from 0) listens on "
             "KITTEH_UPLOAD_PORT + 10·n, the gateway balances over all. 0: none (run your own "
             "on KITTEH_UPLOAD_PORT).", "runner"),
    Variable("KITTEH_RESIZE_REPLICAS", "1",
             "Local runner: resize processes to start, on KITTEH_RESIZE_PORT + 10·n. 0: none; "
             "uploads still succeed and variant URLs show the original until one runs.",
             "runner"),
    Variable("KITTEH_MIN_FREE_BYTES", str(100 * MiB),
             "Free bytes on the volume below which upload and resize report not ready in "
             "/readyz (a full volume answers uploads with 507).", "upload, resize"),
    Variable("KITTEH_GATEWAY_STATUS_PORT", "8085",
             "Port of the gateway's nginx `stub_status` (connections, requests), on 127.0.0.1 "
             "only: for prometheus-nginx-exporter, never published.", "runner, gateway"),
    Variable("KITTEH_CACHE_SECONDS", "1",
             "Gateway micro-cache of image pages and open-file cache, in seconds (1-10). A "
             "delete is acknowledged only after this long, so nothing deleted is served "
             "after its 204.", "gateway, upload"),
    Variable("KITTEH_UPLOADS", "open",
             "Who may upload: `open` (anyone who reaches the page) or `keys` (only with an "
             "upload key made by `kitteh keys create`; 401 without one). Reading stays public.",
             "upload, gallery"),
    Variable("KITTEH_NEWEST", "on",
             "`off` hides the Newest grid on the home page and the list API "
             "(`GET /api/images` answers 404), for private hosts.", "gallery"),
    Variable("KITTEH_RATE_LIMIT", "120",
             "Uploads and deletes (refused ones too) per minute per client address at the "
             "gateway (429 above); key checks have a limit of their own at the same rate.",
             "gateway"),
    Variable("KITTEH_FETCH_ALLOW_NETWORKS", "",
             "Upload from a link: comma-separated CIDR ranges (`10.0.0.0/8, fd00::/8`) Kitteh "
             "may fetch from although they are not public (loopback, private, link-local, "
             "unique-local...), for an intranet or tests. Empty: public addresses only.",
             "upload"),
    Variable("KITTEH_TLS_CERT", "",
             "PEM certificate chain (e.g. Let's Encrypt's fullchain.pem); with KITTEH_TLS_KEY "
             "(both or neither) the gateway serves HTTPS (TLS 1.2+, HTTP/2, HSTS) on "
             "KITTEH_PORT.", "runner, gateway"),
    Variable("KITTEH_TLS_KEY", "", "PEM private key of KITTEH_TLS_CERT.", "runner, gateway"),
    Variable("KITTEH_HTTP_PORT", "",
             "Local runner, with TLS only: a plain-HTTP port whose every answer is a 308 to "
             "the same path and query on HTTPS (`/healthz` answers 200 there).", "runner"),
    # Set by the runner (or compose) for the nginx templates in deploy/nginx/:
    Variable("KITTEH_LISTEN", "80",
             "nginx templates: the address:port an nginx listens on (the gateway's followed "
             "by `ssl http2` with TLS).", "gateway, assets"),
    Variable("KITTEH_HTTP_LISTEN", "80",
             "nginx templates, with TLS: the address:port of the plain-HTTP redirect server.",
             "gateway"),
    Variable("KITTEH_MAX_BODY_BYTES", str(200 * MiB),
             "nginx templates: the gateway's request body limit, the larger of "
             "KITTEH_MAX_UPLOAD_BYTES and KITTEH_MAX_VIDEO_BYTES (the runner computes it; "
             "compose passes this default: set it when raising either above it).", "gateway"),
    Variable("KITTEH_UPLOAD_ADDR", "upload:8081", "nginx templates: host:port of upload.",
             "gateway"),
    Variable("KITTEH_RESIZE_ADDR", "resize:8082", "nginx templates: host:port of resize.",
             "gateway"),
    Variable("KITTEH_GALLERY_ADDR", "gallery:8083", "nginx templates: host:port of gallery.",
             "gateway"),
    Variable("KITTEH_ASSETS_ADDR", "assets:80", "nginx templates: host:port of the assets nginx.",
             "gateway"),
    Variable("KITTEH_ASSETS_ROOT", "/usr/share/nginx/html",
             "nginx templates: directory of the built assets.", "assets"),
    Variable("KITTEH_LOG_LEVEL", "INFO", "Python log level of the services.",
             "upload, resize, gallery"),
)

BY_NAME = {v.name: v for v in VARIABLES}


def markdown_table() -> str:
    rows = ["| variable | default | used by | meaning |", "|---|---|---|---|"]
    for v in VARIABLES:
        if v.default is None:
            default = "(required)"
        else:
            default = f"`{v.default}`" if v.default else "(empty)"
        rows.append(f"| `{v.name}` | {default} | {v.used_by} | {v.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
