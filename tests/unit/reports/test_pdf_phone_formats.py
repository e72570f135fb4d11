"""Reports show HEIC and AVIF uploads like any other: the thumbnail is decoded from the phone file and embedded."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image

from pixelcheck.reports.pdf import render_pdf
from pixelcheck.reports.thumbnails import make_thumbnail
from tests import images

IMAGE_OBJECT = b"/Subtype /Image"


@pytest.mark.parametrize(("make", "filename", "content_type"), [
    (images.heic, "IMG_4711.HEIC", "image/heic"), (images.avif, "shot.avif", "image/avif")])
def test_single_pdf_embeds_the_thumbnail_of_a_phone_format_upload(samples, make, filename: str,  # type: ignore[no-untyped-def]
                                                                  content_type: str) -> None:
    data = make(480, 360, seed=4, exif=images.apple_exif())
    shown = render_pdf(samples.document((samples.entry(filename=filename, data=data, content_type=content_type,
                                                       width=480, height=360),)))
    unreadable = render_pdf(samples.document((samples.entry(filename=filename, data=b"\0\0\0\x18ftypheic broken",
                                                            content_type=content_type),)))
    assert shown.count(IMAGE_OBJECT) == unreadable.count(IMAGE_OBJECT) + 1


@pytest.mark.parametrize("make", [images.heic, images.avif])
def test_thumbnail_of_a_phone_format_is_a_jpeg_of_the_picture(make) -> None:  # type: ignore[no-untyped-def]
    thumbnail = make_thumbnail(make(800, 600, seed=6), 200)
    assert thumbnail is not None and thumbnail.startswith(b"\xff\xd8\xff")
    with Image.open(BytesIO(thumbnail)) as preview:
        assert preview.size == (200, 150)
