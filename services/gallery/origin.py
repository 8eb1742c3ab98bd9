"""Share URLs' origin: moved to ``shared.origin`` (upload's JSON needs it too for ``embed``)."""

from shared.origin import HOST, request_origin, share_origin

__all__ = ["HOST", "request_origin", "share_origin"]
