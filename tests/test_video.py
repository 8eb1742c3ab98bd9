"""Videos through the upload and resize apps (built by their factories, real Postgres, real
child processes): what is stored, what is refused, and the renditions the background makes."""

from __future__ import annotations

import asyncio
import io
from fractions import Fraction

import asyncpg
import av
import pytest
from PIL import Image

from shared.formats import sniff
from tests.support import file_form
from tests.video_files import (
    PRIVATE,
    android_mp4,
    iphone_mov,
    make_video,
    small_mp4,
    webm_vp9,
)

RENDITION_WAIT_SECONDS = 240  # 2 shared cores, other engineers' tests beside: generous


async def upload(client, data: bytes, filename: str, content_type: str = "video/mp4"):
    response = await client.post("/api/images", data=file_form(data, filename, content_type))
    return response.status, await response.json()


async def wait_renditions(db, token: str, seconds: float = RENDITION_WAIT_SECONDS) -> dict:
    """Rendition states by name once none is pending or working (event: the rows)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        rows = await db.fetch("SELECT r.name, r.state, r.error FROM renditions r JOIN images i"
                              " ON i.id = r.image_id WHERE i.token = $1", token)
        states = {r["name"]: r["state"] for r in rows}
        if rows and all(s in ("ready", "failed") for s in states.values()):
            return {r["name"]: (r["state"], r["error"]) for r in rows}
        assert asyncio.get_running_loop().time() < deadline, states
        await asyncio.sleep(0.5)


def files_of(storage_dir) -> list:
    return sorted(p for p in storage_dir.rglob("*") if p.is_file())


def stored(storage_dir, url: str):
    return storage_dir / url.removeprefix("/i/")


@pytest.mark.parametrize(("make", "filename", "container", "upright"), [
    (iphone_mov, "IMG_0042.MOV", "MOV", (240, 320)),
    (android_mp4, "VID_20261207.mp4", "MP4", (1440, 810)),
    (webm_vp9, "clip.webm", "WEBM", (320, 240)),
])
async def test_phone_and_browser_videos_are_stored_clean_with_poster_and_renditions(
        upload_client, db, storage_dir, make, filename, container, upright):
    data = make()
    status, body = await upload(upload_client, data, filename)
    assert status == 201, body
    assert body["kind"] == "video"
    assert body["duration"] == pytest.approx(1.0, abs=0.1)
    assert (body["original"]["width"], body["original"]["height"]) == upright
    assert set(body["renditions"]) == {"mp4", "av1"}
    assert body["renditions"]["mp4"]["content_type"] == "video/mp4"
    assert body["renditions"]["av1"]["content_type"] == "video/webm"
    # The original: the same container, remuxed, nothing private left in it.
    original = stored(storage_dir, body["original"]["url"]).read_bytes()
    assert sniff(original[:256]).name == container
    assert not [p for p in PRIVATE if p in original]
    # The poster's sizes, made before the answer, upright like the video.
    tiny = stored(storage_dir, body["variants"]["tiny"]["url"])
    with Image.open(tiny) as img:
        assert img.width == 90 and abs(img.height - round(90 * upright[1] / upright[0])) <= 1
    assert body["thumbhash"]

    states = await wait_renditions(db, body["token"])
    assert states == {"mp4": ("ready", None), "av1": ("ready", None)}
    mp4 = stored(storage_dir, f"{body['original']['url'].rsplit('/', 1)[0]}/play.mp4")
    with av.open(str(mp4)) as played:
        video = played.streams.video[0]
        assert video.codec_context.name == "h264"
        assert played.streams.audio[0].codec_context.name == "aac"
        assert video.width <= 1280 and video.average_rate <= 30
        frame = next(played.decode(video))
        assert frame.rotation == 0  # upright in its pixels, no matrix to apply
        shown = (frame.width, frame.height)
    assert shown == (min(upright[0], 1280), round(min(upright[0], 1280) * upright[1]
                                                  / upright[0]) // 2 * 2)
    if filename.endswith("MOV"):  # coded sideways with its top band: now on the right
        pixels = frame.to_image()
        assert pixels.getpixel((pixels.width - 3, pixels.height // 4))[2] > 150
        assert pixels.getpixel((3, pixels.height // 4))[2] < 100
    head = mp4.read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # +faststart
    for path in files_of(storage_dir):  # every stored byte: original, poster, variants, plays
        assert not [p for p in PRIVATE if p in path.read_bytes()], path


async def test_animation_gets_an_mp4_smaller_than_its_animated_webp(upload_client, db,
                                                                     storage_dir):
    frames = []
    for i in range(30):
        frame = Image.new("RGB", (320, 240), (250, 240, 220))
        frame.paste((200, 40, 40), (i * 8, 80, i * 8 + 60, 140))
        frames.append(frame.quantize(64))
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    status, body = await upload(upload_client, gif.getvalue(), "moving.gif", "image/gif")
    assert status == 201, body
    assert body["kind"] == "image" and body["duration"] is None
    assert set(body["renditions"]) == {"mp4"}
    assert await wait_renditions(db, body["token"]) == {"mp4": ("ready", None)}
    folder = stored(storage_dir, body["original"]["url"]).parent
    mp4 = folder / "play.mp4"
    with av.open(str(mp4)) as played:
        decoded = list(played.decode(video=0))
        assert len(decoded) == 30
        assert played.streams.video[0].duration * played.streams.video[0].time_base == \
            pytest.approx(Fraction(30 * 50, 1000), abs=0.06)
    await _wait_file(folder / "large.webp")
    assert mp4.stat().st_size < (folder / "large.webp").stat().st_size


@pytest.mark.parametrize(("fmt", "content_type"), [("PNG", "image/apng"),
                                                   ("WEBP", "image/webp"),
                                                   ("AVIF", "image/avif")])
async def test_apng_animated_webp_and_avif_get_their_mp4_too(upload_client, db, storage_dir, fmt,
                                                        content_type):
    frames = [Image.new("RGBA", (120, 90), (0, 0, 0, 0)) for _ in range(12)]
    for i, frame in enumerate(frames):
        frame.paste((30, 160, 60, 255), (i * 8, 20, i * 8 + 30, 60))  # on transparency
    animation = io.BytesIO()
    frames[0].save(animation, fmt, save_all=True, append_images=frames[1:], duration=100,
                   loop=0)
    status, body = await upload(upload_client, animation.getvalue(), f"a.{fmt.lower()}",
                                content_type)
    assert status == 201, body
    assert body["original"]["frames"] == 12 and set(body["renditions"]) == {"mp4"}
    assert await wait_renditions(db, body["token"]) == {"mp4": ("ready", None)}
    mp4 = stored(storage_dir, body["original"]["url"]).parent / "play.mp4"
    with av.open(str(mp4)) as played:
        decoded = [f.to_image() for f in played.decode(video=0)]
    assert len(decoded) == 12
    # Transparency is shown on white, as the page shows it; the square is where it was.
    assert min(decoded[0].getpixel((110, 80))) > 235
    assert decoded[3].getpixel((24 + 15, 40))[1] > 120


async def _wait_file(path, seconds: float = 60) -> None:
    for _ in range(int(seconds * 10)):
        if path.exists():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never came")


async def _refused(client, db, storage_dir, data: bytes, filename: str, status: int,
                   fragment: str) -> None:
    got, body = await upload(client, data, filename)
    assert got == status, body
    assert fragment in body["error"]["message"], body
    assert await db.fetchval("SELECT count(*) FROM images") == 0
    assert await db.fetchval("SELECT count(*) FROM renditions") == 0
    assert files_of(storage_dir) == [], "nothing left behind"


async def test_truncated_video_is_415_and_leaves_nothing(upload_client, db, storage_dir):
    data = android_mp4()
    await _refused(upload_client, db, storage_dir, data[: len(data) // 2], "cut.mp4", 415,
                   "damaged or truncated")


async def test_mislabelled_files_are_judged_by_their_bytes(upload_client, db, storage_dir):
    await _refused(upload_client, db, storage_dir, b"\x00\x00\x00\x18ftypmp42" + b"x" * 500,
                   "holiday.mp4", 415, "damaged")
    await _refused(upload_client, db, storage_dir, b"just text, called a video" * 20,
                   "film.mov", 415, "not an image Kitteh accepts")
    # A WebM named .mov is a WebM.
    status, body = await upload(upload_client, webm_vp9(), "clip.mov", "video/quicktime")
    assert status == 201 and body["original"]["content_type"] == "video/webm"
    assert body["original"]["filename"] == "clip.webm"


async def test_video_with_a_codec_kitteh_does_not_take_is_415(upload_client, db, storage_dir):
    data = make_video("mp4", "mpeg4", (160, 120), 0.5, 10, None)
    await _refused(upload_client, db, storage_dir, data, "old.mp4", 415,
                   "not a video Kitteh accepts")


async def test_over_long_video_is_422_and_leaves_nothing(upload_client, db, storage_dir):
    # Two frames an hour apart: seconds of work for the client, an hour for a transcoder.
    data = make_video("mp4", "libx264", (160, 120), 2, 1, None,
                      video_options={"preset": "ultrafast"})
    long = _stretched(data, 3600)
    await _refused(upload_client, db, storage_dir, long, "long.mp4", 422, "seconds long")


def _stretched(data: bytes, seconds: int) -> bytes:
    """The same two frames, the second shown ``seconds`` later (a remux with new times)."""
    source, out_file = av.open(io.BytesIO(data)), io.BytesIO()
    with source, av.open(out_file, "w", format="mp4") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for index, packet in enumerate(p for p in source.demux(video=0) if p.dts is not None):
            packet.pts = packet.dts = index * seconds * int(1 / packet.time_base)
            packet.stream = stream
            out.mux(packet)
    return out_file.getvalue()


async def test_over_large_video_is_413_and_leaves_nothing(aiohttp_client, aiohttp_server, env,
                                                          db, storage_dir):
    from services.upload.app import create_app
    from shared.config import UploadConfig

    config = UploadConfig.from_env({**env, "KITTEH_MAX_VIDEO_BYTES": "20000",
                                     "KITTEH_MAX_UPLOAD_BYTES": "1048576"})
    client = await aiohttp_client(create_app(config))
    data = android_mp4()
    assert len(data) > 20000
    await _refused(client, db, storage_dir, data, "big.mp4", 413, "This video is too large")
    # An image may still be larger than that: which limit applies comes from the bytes.
    picture = io.BytesIO()
    Image.effect_noise((200, 200), 60).convert("RGB").save(picture, "PNG")
    assert len(picture.getvalue()) > 20000
    status, body = await upload(client, picture.getvalue(), "noise.png", "image/png")
    assert status == 201, body


async def test_video_limits_are_published(gallery_client):
    limits = await (await gallery_client.get("/api/limits")).json()
    assert limits["max_video_bytes"] == 200 * 1024 * 1024
    assert limits["max_video_seconds"] == 300


async def test_a_video_page_says_what_it_waits_for(upload_client, gallery_client, db):
    status, body = await upload(upload_client, small_mp4(0.5), "wait.mp4")
    assert status == 201, body
    await wait_renditions(db, body["token"])
    page = await (await gallery_client.get(body["page_url"])).text()
    assert '<video id="video" controls playsinline preload="metadata"' in page
    assert 'id="video-note"' not in page
    await db.execute("UPDATE renditions SET state = 'failed', error = 'test'")
    page = await (await gallery_client.get(body["page_url"])).text()
    assert "<video" not in page and 'id="picture"' in page  # the poster instead
    assert "could not be prepared for playing in browsers so far" in page
    # Being made by someone (a fresh claim: no background loop takes it from under the test).
    await db.execute("UPDATE renditions SET state = 'working', claimed_at = now()")
    page = await (await gallery_client.get(body["page_url"])).text()
    assert "Being prepared for playing in browsers" in page


async def test_a_lost_rendition_file_is_made_again_after_a_sweep(upload_client, db,
                                                                 storage_dir, database_url):
    from services.resize.sweeper import sweep
    from shared.storage import LocalStore, scratch_for

    status, body = await upload(upload_client, small_mp4(0.5), "kept.mp4")
    assert status == 201, body
    await wait_renditions(db, body["token"])
    played = stored(storage_dir, body["original"]["url"]).parent / "play.mp4"
    played.unlink()
    # As rows are by the time a periodic sweep sees them: older than its margin.
    await db.execute("UPDATE images SET created_at = created_at - interval '1 hour'")
    await db.execute("UPDATE renditions SET updated_at = updated_at - interval '1 hour'")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        dry = await sweep(pool, LocalStore(storage_dir), scratch_for(storage_dir), 3600,
                          dry_run=True)
        assert dry.lost_variants == [f"{body['name']}/play.mp4"]
        report = await sweep(pool, LocalStore(storage_dir), scratch_for(storage_dir), 3600)
    finally:
        await pool.close()
    assert report.lost_variants == [f"{body['name']}/play.mp4"]
    assert await wait_renditions(db, body["token"]) == {"mp4": ("ready", None),
                                                        "av1": ("ready", None)}
    assert played.exists()



async def test_a_lost_poster_is_made_again_from_the_original(upload_client, db, storage_dir):
    status, body = await upload(upload_client, iphone_mov(0.5), "IMG_0043.MOV",
                                "video/quicktime")
    assert status == 201, body
    await wait_renditions(db, body["token"])
    folder = stored(storage_dir, body["original"]["url"]).parent
    await _wait_file(folder / "large.avif")
    poster = (folder / "poster.jpg").read_bytes()
    (folder / "poster.jpg").unlink()
    (folder / "large.avif").unlink()
    # As the sweeper leaves a lost variant: pending, for the background to make again.
    await db.execute("UPDATE variants SET state = 'pending' WHERE kind = 'large'"
                     " AND format = 'avif'")
    await _wait_file(folder / "large.avif")
    assert (folder / "poster.jpg").read_bytes() == poster  # the same frame, decoded again
    with Image.open(folder / "large.avif") as img:
        assert img.size == (240, 320)


async def test_the_plain_form_takes_a_video_too(upload_client, db):
    response = await upload_client.post("/upload", data=file_form(webm_vp9(0.5), "clip.webm",
                                                                  "video/webm"),
                                        allow_redirects=False)
    assert response.status == 303
    token = await db.fetchval("SELECT token FROM images WHERE content_type = 'video/webm'")
    assert token and response.headers["Location"].lower().startswith(f"/{token}kitty?")
