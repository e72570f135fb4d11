"""Generator and camera traces in PNG text chunks, XMP, EXIF and the alpha channel."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pixelcheck.analysis.detector.metadata_scan import scan_metadata
from tests.unit.detector.synthesized import (
    jpeg_bytes,
    photo_like,
    png_bytes,
    png_with_many_data_chunks,
    png_with_trailing_text,
    stealth_png,
)

A1111 = "a duck on a pond\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512"


def _scan(data: bytes):
    return scan_metadata(data, Image.open(io.BytesIO(data)))


def test_a1111_parameters_chunk_is_a_generator_trace() -> None:
    found = _scan(png_bytes(photo_like(64, 64), {"parameters": A1111}))
    assert found.generator_name == "Stable Diffusion"
    assert "AUTOMATIC1111" in found.generator_traces[0]


def test_text_chunk_after_image_data_is_found() -> None:
    found = _scan(png_with_trailing_text(photo_like(64, 64), "parameters", A1111))
    assert found.generator_traces


def test_text_chunk_after_thousands_of_data_chunks_is_found() -> None:
    data = png_with_many_data_chunks(photo_like(96, 96), 6000, "parameters", A1111)
    assert data.count(b"IDAT") > 5000
    assert scan_metadata(data, Image.open(io.BytesIO(data))).generator_traces


def test_compressed_itxt_chunk_is_inflated() -> None:
    found = _scan(png_bytes(photo_like(64, 64), {"parameters": A1111}, compressed=True))
    assert found.generator_name == "Stable Diffusion"


@pytest.mark.parametrize(
    ("texts", "generator"),
    [
        ({"prompt": '{"3": {"class_type": "KSampler"}}', "workflow": '{"nodes": []}'}, "ComfyUI"),
        ({"invokeai_metadata": '{"model": "sd-1.5"}'}, "InvokeAI"),
        ({"Dream": '"a cat" -s 50 -S 42'}, "InvokeAI"),
        ({"Software": "NovelAI", "Title": "AI generated image"}, "NovelAI"),
        ({"parameters": '{"prompt": "cat", "base_model": "juggernautXL"}', "fooocus_scheme": "fooocus"}, "Fooocus"),
        ({"Description": "a cat yawning --ar 2:3 --v 6 Job ID: 72c2e986"}, "Midjourney"),
    ],
)
def test_generator_text_chunks_name_their_generator(texts: dict[str, str], generator: str) -> None:
    assert _scan(png_bytes(photo_like(64, 64), texts)).generator_name == generator


def test_xmp_digital_source_type_is_read() -> None:
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:iptcExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'iptcExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
    found = _scan(png_bytes(photo_like(64, 64), {"XML:com.adobe.xmp": xmp}))
    assert found.xmp_source_type == "trainedAlgorithmicMedia"


def test_xmp_digital_source_type_as_element_and_resource() -> None:
    uri = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
    for body in (
        f"<Iptc4xmpExt:DigitalSourceType>{uri}</Iptc4xmpExt:DigitalSourceType>",
        f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{uri}"/>',
    ):
        xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description>{body}</rdf:Description></rdf:RDF>'
        xmp += "</x:xmpmeta>"
        found = _scan(png_bytes(photo_like(64, 64), {"XML:com.adobe.xmp": xmp}))
        assert found.xmp_source_type == "compositeWithTrainedAlgorithmicMedia"


def test_a1111_parameters_in_exif_user_comment() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[37510] = b"UNICODE\0" + A1111.encode("utf-16-be")
    found = _scan(jpeg_bytes(photo_like(64, 64), exif))
    assert "EXIF UserComment" in found.generator_traces[0]


def test_exif_software_naming_a_generator() -> None:
    exif = Image.Exif()
    exif[305] = "Midjourney v6"
    assert _scan(jpeg_bytes(photo_like(64, 64), exif)).generator_name == "Midjourney"


def test_camera_make_model_and_capture_fields() -> None:
    exif = Image.Exif()
    exif[271], exif[272] = "Canon", "Canon EOS R5"
    sub = exif.get_ifd(0x8769)
    sub[33434], sub[33437], sub[34855] = 0.01, 2.8, 200
    found = _scan(jpeg_bytes(photo_like(64, 64), exif))
    assert (found.camera_make, found.camera_model) == ("Canon", "Canon EOS R5")
    assert len(found.camera_capture_fields) >= 2 and found.has_exif and not found.generator_traces


def test_stealth_parameters_in_alpha_channel() -> None:
    found = _scan(stealth_png(photo_like(64, 64), A1111))
    assert "alpha channel" in found.generator_traces[0]


def test_plain_images_carry_no_traces() -> None:
    for data in (png_bytes(photo_like(64, 64)), jpeg_bytes(photo_like(64, 64)), png_bytes(photo_like(1, 1))):
        found = _scan(data)
        assert not found.generator_traces and not found.camera_make


def test_garbage_and_truncated_bytes_do_not_crash() -> None:
    data = png_bytes(photo_like(64, 64), {"parameters": A1111})
    for broken in (b"", b"\x89PNG\r\n\x1a\n", data[:40], data[:-30], b"\x89PNG\r\n\x1a\n" + b"\xff" * 64):
        scan_metadata(broken, None)
