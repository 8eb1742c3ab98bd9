"""The assets build and the nginx template rendering the runner and compose share."""

from __future__ import annotations

import json

import pytest

from deploy import nginx
from deploy.build_assets import STATIC, build
from services.gallery.assets import AssetManifest


def test_build_fingerprints_every_file(tmp_path):
    out = tmp_path / "assets"
    manifest = build(out)
    sources = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()}
    assert set(manifest) == sources
    for plain, hashed in manifest.items():
        assert (out / hashed).read_bytes() == (STATIC / plain).read_bytes()
        assert hashed != plain and hashed.rsplit(".", 1)[1] == plain.rsplit(".", 1)[1]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    again = build(out)
    assert again == manifest, "same content, same names"


def test_manifest_resolves_names_under_the_base_url(tmp_path):
    manifest = build(tmp_path / "a")
    assets = AssetManifest.load("https://cdn.example/k/", tmp_path / "a" / "manifest.json")
    assert assets.url("css/app.css") == "https://cdn.example/k/" + manifest["css/app.css"]
    assert assets.origin == "https://cdn.example"
    plain = AssetManifest.load("/assets/", None)
    assert plain.url("css/app.css") == "/assets/css/app.css" and plain.origin == ""


def test_templates_render_only_kitteh_placeholders():
    for name in ("gateway", "assets"):
        template = (nginx.TEMPLATES / f"{name}.conf.template").read_text()
        names = nginx.placeholders(template)
        assert names and all(n.startswith("KITTEH_") for n in names)
        rendered = nginx.render(template, {n: "X" for n in names})
        assert "${" not in rendered
        if name == "gateway":
            assert "$kitteh_dir" in rendered and "$request_method" in rendered
        with pytest.raises(KeyError, match="no value for"):
            nginx.render(template, {})
