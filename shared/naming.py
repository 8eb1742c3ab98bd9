"""Memorable names (``SublimeDandelionUkrainianLevkoy``) and the tokens derived from them.

Uniqueness is the database's job (a unique index on the token, retried on conflict). The
name generator only has to make conflicts rare, and to keep producing new candidates when the
word space runs thin: after a few conflicting attempts it appends a number whose range grows
with every attempt, so the candidate space never runs out.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from shared import words

PLAIN_ATTEMPTS = 4  # attempts with words only, before numbers are appended
NAME_PATTERN = re.compile(r"^[A-Za-z]+[0-9]*$")


@dataclass(frozen=True)
class WordLists:
    adjectives: tuple[str, ...] = words.ADJECTIVES
    colours: tuple[str, ...] = words.COLOURS
    breeds: tuple[str, ...] = words.BREEDS

    @property
    def size(self) -> int:
        return len(self.adjectives) * len(self.colours) * len(self.breeds)


DEFAULT_WORDS = WordLists()


def candidate_name(attempt: int, word_lists: WordLists = DEFAULT_WORDS) -> str:
    """The ``attempt``-th guess (0-based): three words, then three words and a growing number."""
    name = (secrets.choice(word_lists.adjectives) + secrets.choice(word_lists.colours)
            + secrets.choice(word_lists.breeds))
    if attempt < PLAIN_ATTEMPTS:
        return name
    digits = attempt - PLAIN_ATTEMPTS + 1
    return f"{name}{secrets.randbelow(10 ** digits * 9) + 10 ** digits}"


def token_for(name: str) -> str:
    return name.lower()


def token_from_path(segment: str) -> str | None:
    """The token named by a page path segment: case-insensitive, ``Kitty`` suffix optional."""
    if segment.lower().endswith("kitty") and len(segment) > len("kitty"):
        segment = segment[: -len("kitty")]
    if not NAME_PATTERN.match(segment) or len(segment) > 120:
        return None
    return segment.lower()


def album_token_from_path(segment: str) -> str | None:
    """The album token named by a page path segment: ``{Name}Album``, case-insensitive (the
    suffix is required: without it the name is an image's)."""
    if not segment.lower().endswith("album") or len(segment) <= len("album"):
        return None
    segment = segment[: -len("album")]
    if not NAME_PATTERN.match(segment) or len(segment) > 120:
        return None
    return segment.lower()
