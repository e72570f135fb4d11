"""BMP and TIFF, the formats scanners, cameras and image datasets write: sniffed from their first bytes, held to
the same upload rules as JPEG (header-checked limits before decoding, a full decode, one picture per file), and
read by the detector like any other file, 16-bit samples scaled rather than clipped."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Detector, load_detector
from pixelcheck.analysis.detector.image_facts import decode_rgb, open_image
from pixelcheck.errors import InvalidInput, TooLarge
from pixelcheck.image_formats import SNIFF_BYTES, to_8_bit
from pixelcheck.ingestion.validation import UploadLimits, check_declared_type, decode_image, sniff_content_type
from pixelcheck.reports.thumbnails import make_thumbnail
from tests import images

LIMITS = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=12_000, max_pixels=50_000_000)


def rgb_16_bit_tiff(width: int = 96, height: int = 64) -> bytes:
    """16 bits per RGB sample (what Pillow cannot write): every pixel full red, half green, no blue."""
    return images.raw_tiff(width, height, bits=16, pixels=np.tile(np.array([65535, 32768, 0], "<u2"),
                                                                  width * height).tobytes())


@pytest.mark.parametrize(("head", "expected"), [
    (images.bmp(8, 8), "image/bmp"), (images.bmp_header(8, 8), "image/bmp"), (images.tiff(8, 8), "image/tiff"),
    (b"MM\0*\0\0\0\x08", "image/tiff"), (b"II+\0\x08\0\0\0", "image/tiff"), (b"MM\0+\0\x08\0\0", "image/tiff"),
    (b"BMW R 1200 GS owner's manual", None), (b"BM", None), (b"II*", None), (b"MM\0", None)])
def test_bmp_and_tiff_are_told_apart_by_their_first_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head[:SNIFF_BYTES]) == expected


@pytest.mark.parametrize(("mode", "bits_per_pixel"), [("RGB", 24), ("RGBA", 32), ("P", 8), ("1", 1)])
def test_bitmaps_of_24_32_8_and_1_bits_are_accepted_with_their_dimensions(mode: str, bits_per_pixel: int) -> None:
    data = images.bmp(500, 333, seed=3, mode=mode)
    assert int.from_bytes(data[28:30], "little") == bits_per_pixel
    decoded = decode_image(data, LIMITS)
    assert (decoded.content_type, decoded.width, decoded.height) == ("image/bmp", 500, 333)


@pytest.mark.parametrize("data", [
    images.tiff(500, 333), images.tiff(500, 333, compression="tiff_lzw"), images.tiff(500, 333, compression="jpeg"),
    images.tiff(500, 333, compression="tiff_adobe_deflate"), images.tiff(500, 333, compression="packbits"),
    images.tiff(500, 333, mode="CMYK"), images.tiff(500, 333, mode="L"), images.tiff(500, 333, mode="RGBA"),
    images.tiff(500, 333, mode="P"), images.tiff_16_bit_gray(500, 333), rgb_16_bit_tiff(500, 333),
    images.tiff(500, 333, big_tiff=True)],
    ids=["uncompressed", "lzw", "jpeg", "deflate", "packbits", "cmyk", "gray", "alpha", "palette", "16-bit-gray",
         "16-bit-rgb", "bigtiff"])
def test_tiffs_are_accepted_with_their_dimensions(data: bytes) -> None:
    decoded = decode_image(data, LIMITS)
    assert (decoded.content_type, decoded.width, decoded.height) == ("image/tiff", 500, 333)


@pytest.mark.parametrize("data", [images.bmp(320, 240), images.tiff(320, 240),
                                  images.tiff(320, 240, compression="tiff_lzw"), images.tiff_16_bit_gray()])
def test_truncated_bmp_and_tiff_are_undecodable(data: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(data[: len(data) * 2 // 3], LIMITS)
    assert caught.value.reason == "UNDECODABLE_IMAGE"


@pytest.mark.parametrize("make", [images.bmp_header, lambda w, h: images.raw_tiff(w, h, pixels=b"")])
@pytest.mark.parametrize(("width", "height", "reason"), [
    (30_000, 30_000, "DECOMPRESSION_BOMB"), (8000, 7000, "IMAGE_DIMENSIONS_TOO_LARGE"),
    (12_001, 10, "IMAGE_DIMENSIONS_TOO_LARGE")])
def test_headers_claiming_huge_pictures_are_refused_before_decoding(make, width: int, height: int,  # type: ignore[no-untyped-def]
                                                                    reason: str) -> None:
    data = make(width, height)  # a header and no pixels: decoding it would fail as UNDECODABLE_IMAGE
    assert len(data) < 300
    with pytest.raises(TooLarge) as caught:
        decode_image(data, LIMITS)
    assert caught.value.reason == reason


def test_a_tiff_of_several_pages_is_refused_as_multi_page() -> None:
    first, second = images.picture(160, 120, 1), images.picture(160, 120, 2)
    with pytest.raises(InvalidInput) as caught:
        decode_image(images.encode(first, "TIFF", save_all=True, append_images=[second]), LIMITS)
    assert caught.value.reason == "MULTI_PAGE_IMAGE" and "several pages" in str(caught.value)


def test_a_tiff_whose_pages_after_the_first_are_previews_is_one_picture() -> None:
    decoded = decode_image(images.raw_tiff(64, 48, subfile_types=(0, 1, 1)), LIMITS)
    assert (decoded.width, decoded.height) == (64, 48)


def test_a_tiff_whose_first_image_is_a_preview_like_a_camera_raw_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(images.raw_tiff(64, 48, subfile_types=(1, 0)), LIMITS)
    assert caught.value.reason == "UNSUPPORTED_TYPE" and "camera raw" in str(caught.value)


def test_a_tiff_with_endless_directories_is_refused_without_reading_them_all() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(images.raw_tiff(8, 8, subfile_types=(0,) + (1,) * 500), LIMITS)
    assert caught.value.reason == "MULTI_PAGE_IMAGE"


def test_a_tiff_with_a_broken_directory_after_the_picture_is_undecodable() -> None:
    data = bytearray(images.raw_tiff(8, 8, subfile_types=(0, 1)))
    width_entry = data.rindex(struct.pack("<HHI", 256, 4, 1))  # the second directory's ImageWidth
    data[width_entry:width_entry + 2] = struct.pack("<H", 0x7FFF)  # becomes an unknown tag: no width left
    with pytest.raises(InvalidInput) as caught:
        decode_image(bytes(data), LIMITS)
    assert caught.value.reason == "UNDECODABLE_IMAGE"


def test_bmp_and_tiff_media_type_aliases_match_and_a_wrong_declaration_does_not() -> None:
    for declared in ("image/bmp", "image/x-ms-bmp", "image/x-bmp"):
        check_declared_type(declared, "image/bmp")
    for declared in ("image/tiff", "image/tif", "image/x-tiff"):
        check_declared_type(declared, "image/tiff")
    with pytest.raises(InvalidInput) as caught:
        check_declared_type("image/jpeg", "image/tiff")
    assert caught.value.reason == "CONTENT_TYPE_MISMATCH"


# -- samples wider than 8 bits ----------------------------------------------------------------------------
@pytest.mark.parametrize("data", [images.tiff_16_bit_gray(256, 8),
                                  images.encode(Image.open(io.BytesIO(images.tiff_16_bit_gray(256, 8))), "PNG")],
                         ids=["tiff", "png"])
def test_16_bit_gray_is_scaled_to_8_bits_not_clipped_white(data: bytes) -> None:
    row = np.asarray(decode_rgb(open_image(data)))[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and abs(row[128] - 128) <= 1
    assert (np.diff(row) >= 0).all()


def test_16_bit_rgb_keeps_its_colour() -> None:
    assert decode_rgb(open_image(rgb_16_bit_tiff())).getpixel((5, 5)) == (255, 128, 0)


def test_float_samples_are_read_as_zero_to_one() -> None:
    ramp = Image.fromarray(np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (4, 1)))
    row = np.asarray(to_8_bit(ramp))[0].astype(int)
    assert (row[0], row[-1]) == (0, 255) and abs(row[128] - 128) <= 1


def test_12_bit_samples_are_scaled_from_their_own_range() -> None:
    packed = bytes([0x00, 0x0F, 0xFF])  # two 12-bit samples, 0 and 4095, as a 12-bit scanner packs them
    twelve = open_image(images.raw_tiff(2, 1, bits=12, samples=1, pixels=packed))
    assert list(np.asarray(decode_rgb(twelve))[0, :, 0]) == [0, 255]


def test_thumbnail_of_a_16_bit_scan_is_not_blown_out() -> None:
    thumbnail = make_thumbnail(images.tiff_16_bit_gray(400, 100), 100)
    assert thumbnail is not None
    with Image.open(io.BytesIO(thumbnail)) as preview:
        assert preview.size == (100, 25) and 100 < np.asarray(preview.convert("L")).mean() < 155


@pytest.mark.parametrize("make", [images.bmp, images.tiff])
def test_thumbnail_of_a_bitmap_or_tiff_is_a_jpeg_of_the_picture(make) -> None:  # type: ignore[no-untyped-def]
    thumbnail = make_thumbnail(make(800, 600, seed=6), 200)
    assert thumbnail is not None and thumbnail.startswith(b"\xff\xd8\xff")
    with Image.open(io.BytesIO(thumbnail)) as preview:
        assert preview.size == (200, 150)


# -- the detector reads them ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize(("data", "fmt"), [(images.bmp(640, 480, seed=5), "BMP"),
                                           (images.tiff(640, 480, seed=5), "TIFF"),
                                           (images.tiff_16_bit_gray(640, 480), "TIFF")])
def test_detector_describes_bitmaps_and_tiffs_without_camera_exif(detector: Detector, data: bytes, fmt: str) -> None:
    verdict = detector.analyze(data)
    assert verdict.image_facts is not None
    facts = verdict.image_facts
    assert (facts.format, facts.width, facts.height, facts.has_exif) == (fmt, 640, 480, False)
    assert not verdict.provenance.camera_make


def test_detector_reads_camera_exif_from_a_tiff(detector: Detector) -> None:
    verdict = detector.analyze(images.tiff(640, 480, seed=5, exif=images.apple_exif("iPhone 15 Pro")))
    assert verdict.image_facts is not None and verdict.image_facts.has_exif
    assert (verdict.provenance.camera_make, verdict.provenance.camera_model) == ("Apple", "iPhone 15 Pro")
    [camera] = [s for s in verdict.signals if s.name == "camera_metadata"]
    assert "Apple iPhone 15 Pro" in camera.explanation


@pytest.mark.parametrize("make", [images.bmp, images.tiff])
def test_detector_scores_the_decoded_pixels(detector: Detector, make) -> None:  # type: ignore[no-untyped-def]
    """The pixel model sees exactly the pixels the file holds: a PNG of them scores the same."""
    data = make(512, 384, seed=9)
    with Image.open(io.BytesIO(data)) as opened:
        lossless = images.encode(opened.convert("RGB"), "PNG")

    def pixel_score(blob: bytes) -> float:
        [signal] = [s for s in detector.analyze(blob).signals if s.name == "pixel_model"]
        return signal.score

    assert pixel_score(data) == pytest.approx(pixel_score(lossless), abs=1e-6)
