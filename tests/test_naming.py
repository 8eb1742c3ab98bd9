"""Memorable names: unique by the database's constraint, even when the words run out."""

from __future__ import annotations

import asyncio
import re

from services.upload import ingest
from shared.naming import (
    NAME_PATTERN,
    WordLists,
    candidate_name,
    token_for,
    token_from_path,
)
from tests.support import file_form, image_bytes

TINY_WORDS = WordLists(("Sleepy", "Fluffy"), ("Ginger", "Smoke"), ("Manx", "Sphynx"))


def test_names_are_three_capitalised_words():
    name = candidate_name(0)
    assert re.fullmatch(r"(?:[A-Z][a-z]+){3,}", name), name
    assert token_for(name) == name.lower()


def test_later_attempts_append_growing_numbers():
    plain = {candidate_name(a, TINY_WORDS) for a in range(4)}
    assert all(NAME_PATTERN.match(n) and not n[-1].isdigit() for n in plain)
    numbered = [candidate_name(a, TINY_WORDS) for a in (4, 5, 9)]
    digits = [len(re.search(r"\d+$", n).group()) for n in numbered]
    assert digits == sorted(digits) and digits[0] >= 2 and digits[-1] > digits[0]


def test_page_paths_match_case_insensitively_with_optional_kitty():
    for segment in ("SublimeDandelionUkrainianLevkoyKitty", "sublimedandelionukrainianlevkoy",
                    "SUBLIMEDANDELIONUKRAINIANLEVKOYkitty"):
        assert token_from_path(segment) == "sublimedandelionukrainianlevkoy"
    assert token_from_path("Kitty") is None or token_from_path("Kitty") == "kitty"
    assert token_from_path("../etc/passwd") is None
    assert token_from_path("a" * 500) is None


async def upload_many(client, count: int) -> list[dict]:
    async def one(i: int) -> dict:
        data = image_bytes("PNG", size=(8, 8), color=(i % 256, i // 256, 7))
        response = await client.post("/api/images", data=file_form(data, f"{i}.png"))
        assert response.status == 201, await response.text()
        return await response.json()

    return await asyncio.gather(*(one(i) for i in range(count)))


async def test_names_unique_under_200_concurrent_uploads(upload_client, db):
    bodies = await upload_many(upload_client, 200)
    assert len({b["token"] for b in bodies}) == 200
    assert await db.fetchval("SELECT count(DISTINCT token) FROM images") == 200


async def test_names_stay_unique_when_the_word_space_runs_thin(upload_client, db, monkeypatch):
    # Eight three-word names for forty images: the unique index refuses repeats and the
    # retry appends numbers, so every image still gets its own name.
    monkeypatch.setattr(ingest, "candidate_name", lambda attempt: candidate_name(attempt,
                                                                                 TINY_WORDS))
    bodies = await upload_many(upload_client, 40)
    names = [b["name"] for b in bodies]
    assert len(set(names)) == 40
    assert sum(1 for n in names if n[-1].isdigit()) >= 32
    assert all(token_from_path(f"{n}Kitty") == n.lower() for n in names)
