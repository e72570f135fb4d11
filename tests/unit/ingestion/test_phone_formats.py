"""HEIC/HEIF and AVIF, the formats phones and browsers produce: sniffed by their ftyp brands, held to the same
upload rules as JPEG, and read by the detector like any other file (EXIF, C2PA, decoded pixels). The files
are real ones the tests encode (libheif's HEVC encoder, Pillow's libavif) and sign (c2pa-python)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Detector, SignatureState, load_detector
from pixelcheck.analysis.detector.content_credentials import CredentialReader
from pixelcheck.errors import InvalidInput, TooLarge
from pixelcheck.image_formats import SNIFF_BYTES, enable_decoders
from pixelcheck.ingestion.validation import UploadLimits, check_declared_type, decode_image, sniff_content_type
from tests import images
from tests.c2pa_signing import SIGNER_ORGANIZATION, sign

LIMITS = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=12_000, max_pixels=50_000_000)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\0\0\0\x08meta"


@pytest.mark.parametrize(("head", "expected"), [
    (ftyp(b"heic", b"mif1", b"heic"), "image/heic"), (ftyp(b"mif1", b"heic"), "image/heic"),
    (ftyp(b"heix", b"mif1"), "image/heic"), (ftyp(b"avif", b"mif1", b"miaf"), "image/avif"),
    (ftyp(b"mif1", b"avif", b"miaf"), "image/avif"), (ftyp(b"avis", b"msf1"), "image/avif"),
    (ftyp(b"isom", b"mp42", b"avc1"), None), (ftyp(b"qt  "), None), (ftyp(b"crx ", b"isom"), None),
])
def test_heif_family_is_told_apart_by_its_brands(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head[:SNIFF_BYTES]) == expected


@pytest.mark.parametrize(("make", "content_type"), [(images.heic, "image/heic"), (images.avif, "image/avif")])
def test_phone_formats_are_accepted_with_their_dimensions(make, content_type: str) -> None:  # type: ignore[no-untyped-def]
    decoded = decode_image(make(500, 333, seed=3), LIMITS)
    assert (decoded.content_type, decoded.width, decoded.height) == (content_type, 500, 333)


@pytest.mark.parametrize("make", [images.heic, images.avif])
def test_truncated_phone_images_are_undecodable(make) -> None:  # type: ignore[no-untyped-def]
    data = make(320, 240)
    with pytest.raises(InvalidInput) as caught:
        decode_image(data[: len(data) * 2 // 3], LIMITS)
    assert caught.value.reason == "UNDECODABLE_IMAGE"


@pytest.mark.parametrize("make", [images.heic, images.avif])
def test_phone_images_over_the_dimension_limits_are_refused_before_decoding(make) -> None:  # type: ignore[no-untyped-def]
    small = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=400, max_pixels=50_000_000)
    with pytest.raises(TooLarge) as caught:
        decode_image(make(401, 200), small)
    assert caught.value.reason == "IMAGE_DIMENSIONS_TOO_LARGE"
    few_pixels = UploadLimits(max_bytes=10 << 20, max_chunk_bytes=1 << 20, max_side=12_000, max_pixels=60_000)
    with pytest.raises(TooLarge):
        decode_image(make(300, 201), few_pixels)


def test_a_heic_holding_several_pictures_is_refused_like_an_animation() -> None:
    enable_decoders()
    first, second = images.picture(160, 120, 1), images.picture(160, 120, 2)
    buffer = io.BytesIO()
    first.save(buffer, "HEIF", save_all=True, append_images=[second], quality=80)
    with pytest.raises(InvalidInput) as caught:
        decode_image(buffer.getvalue(), LIMITS)
    assert caught.value.reason == "ANIMATED_IMAGE"


def test_heif_media_type_aliases_match_and_a_wrong_declaration_does_not() -> None:
    check_declared_type("image/heif", "image/heic")
    check_declared_type("image/heic", "image/heic")
    with pytest.raises(InvalidInput) as caught:
        check_declared_type("image/jpeg", "image/heic")
    assert caught.value.reason == "CONTENT_TYPE_MISMATCH"


# -- the detector reads them ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize(("make", "fmt"), [(images.heic, "HEIF"), (images.avif, "AVIF")])
def test_detector_reads_apple_exif_from_phone_formats(detector: Detector, make, fmt: str) -> None:  # type: ignore[no-untyped-def]
    verdict = detector.analyze(make(640, 480, seed=5, exif=images.apple_exif("iPhone 15 Pro")))
    assert verdict.image_facts is not None
    assert (verdict.image_facts.format, verdict.image_facts.width, verdict.image_facts.has_exif) == (fmt, 640, True)
    assert verdict.provenance.camera_make == "Apple" and verdict.provenance.camera_model == "iPhone 15 Pro"
    assert verdict.provenance.software == "17.4.1"
    [camera] = [s for s in verdict.signals if s.name == "camera_metadata"]
    assert "Apple iPhone 15 Pro" in camera.explanation


@pytest.mark.parametrize("make", [images.heic, images.avif])
def test_detector_scores_the_decoded_pixels(detector: Detector, make) -> None:  # type: ignore[no-untyped-def]
    """The pixel model sees exactly the pixels the phone file decodes to: a lossless PNG of them scores the same."""
    data = make(512, 384, seed=9)
    enable_decoders()
    with Image.open(io.BytesIO(data)) as opened:
        pixels = opened.convert("RGB")
    lossless = images.encode(pixels, "PNG")

    def pixel_score(blob: bytes) -> float:
        [signal] = [s for s in detector.analyze(blob).signals if s.name == "pixel_model"]
        return signal.score

    assert pixel_score(data) == pytest.approx(pixel_score(lossless), abs=1e-6)


@pytest.mark.parametrize(("make", "media_type"), [(images.heic, "image/heic"), (images.avif, "image/avif"),
                                                  (images.jpeg, "image/jpeg")])
def test_c2pa_manifest_is_read_from_phone_formats_as_from_jpeg(make, media_type: str) -> None:  # type: ignore[no-untyped-def]
    signed = sign(make(320, 240, seed=8), media_type, generator="Example Image Model")
    assert decode_image(signed, LIMITS).content_type == media_type  # still a valid upload once signed
    found = CredentialReader().read(signed)
    assert (found.present, found.state, found.source_type) == (True, SignatureState.VALID, "trainedAlgorithmicMedia")
    assert found.claim_generator == "Example Image Model" and found.signer == SIGNER_ORGANIZATION


def test_detector_reports_the_c2pa_statement_of_a_signed_heic(detector: Detector) -> None:
    verdict = detector.analyze(sign(images.heic(480, 360, seed=10), "image/heic"))
    assert verdict.provenance.c2pa_present and verdict.provenance.c2pa_signature is SignatureState.VALID
    assert verdict.provenance.c2pa_digital_source_type.endswith("trainedAlgorithmicMedia")
    assert verdict.label.name == "AI"
