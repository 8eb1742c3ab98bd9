"""The volume's removal of a deleted image's late variants never touches what a new upload of
the same bytes has placed there meanwhile (its row not yet committed)."""

from __future__ import annotations

from shared.storage import Storage


def test_remove_files_takes_back_only_the_named_files(tmp_path):
    storage = Storage(tmp_path)
    key = "ab" + "0" * 30
    storage.write_bytes(key, "original", "jpg", b"the new upload's original")
    storage.write_bytes(key, "large", "avif", b"a late variant of the deleted image")
    storage.remove_files(key, [("large", "avif")])
    assert not storage.path(key, "large", "avif").exists()
    assert storage.path(key, "original", "jpg").read_bytes() == b"the new upload's original"


def test_remove_files_removes_the_emptied_directory_and_shard(tmp_path):
    storage = Storage(tmp_path)
    key = "cd" + "1" * 30
    storage.write_bytes(key, "tiny", "webp", b"late")
    storage.remove_files(key, [("tiny", "webp")])
    assert not storage.image_dir(key).exists() and not storage.image_dir(key).parent.exists()
