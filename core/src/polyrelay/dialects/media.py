"""Inline media: the one ``data:`` URL reader and writer every codec uses.

Clients put images and files inline as ``data:<type>[;<param>...];base64,<data>``
(RFC 2397); the codecs that carry media as separate ``media_type`` and
``data`` fields need the two halves, the URL-only ones need the URL back.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class DataURL:
    """The halves of a base64 ``data:`` URL."""

    #: The media type without parameters; None when the URL names none (``data:;base64,...``).
    media_type: str | None
    #: The base64 payload, as given.
    data: str


def parse_data_url(url: str) -> DataURL | None:
    """``data:<type>;base64,<data>`` → its halves; None for any other URL.

    ``data:image/png;base64`` (no comma, so no payload) is not a data URL.
    """
    if not url.startswith("data:"):
        return None
    header, comma, data = url[5:].partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    return DataURL(header.split(";", 1)[0].strip() or None, data)


def data_url(media_type: str | None, data: str, fallback: str) -> str:
    """A base64 ``data:`` URL, typed ``fallback`` when the media type is unknown."""
    return f"data:{media_type or fallback};base64,{data}"


#: How the base64 of each image format begins (its magic bytes, encoded).
_IMAGE_MAGIC = (("iVBOR", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))


def sniff_image_type(data: str) -> str:
    """The image type a base64 payload starts like; PNG when it is none of the four."""
    for prefix, media_type in _IMAGE_MAGIC:
        if data.startswith(prefix):
            return media_type
    return "image/png"
