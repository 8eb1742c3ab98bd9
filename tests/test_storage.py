"""The local store's removal of a deleted image's late variants never touches what a new
upload of the same bytes has placed there meanwhile (its row not yet committed). The store's
whole contract, for both stores, is in tests/test_store_contract.py."""

from __future__ import annotations

from shared.storage import LocalStore, file_name


async def test_delete_takes_back_only_the_named_files(tmp_path):
    store = LocalStore(tmp_path)
    key = "ab" + "0" * 30
    await store.put_bytes(file_name(key, "original", "jpg"), b"the new upload's original",
                          "image/jpeg")
    await store.put_bytes(file_name(key, "large", "avif"), b"a late variant", "image/avif")
    await store.delete([file_name(key, "large", "avif")])
    assert not await store.exists(file_name(key, "large", "avif"))
    assert (tmp_path / file_name(key, "original", "jpg")).read_bytes() == \
        b"the new upload's original"


async def test_delete_removes_the_emptied_directory_and_shard(tmp_path):
    store = LocalStore(tmp_path)
    key = "cd" + "1" * 30
    await store.put_bytes(file_name(key, "tiny", "webp"), b"late", "image/webp")
    await store.delete([file_name(key, "tiny", "webp")])
    assert not (tmp_path / "cd" / key).exists() and not (tmp_path / "cd").exists()


async def test_put_file_moves_a_scratch_file_into_place_atomically(tmp_path):
    store = LocalStore(tmp_path)
    scratch = tmp_path / "tmp" / "upload-1"
    scratch.parent.mkdir()
    scratch.write_bytes(b"cleaned original")
    name = file_name("ef" + "2" * 30, "original", "png")
    await store.put_file(name, scratch, "image/png")
    assert not scratch.exists()
    assert (tmp_path / name).read_bytes() == b"cleaned original"
    assert [f.name async for f in store.list()] == [name]  # scratch is not in the store
