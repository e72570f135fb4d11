"""Upload rules: the type is sniffed from the bytes, the image must decode fully within the size limits.

`sniff_content_type` (pixelcheck.image_formats) is re-exported here: it is the first upload rule.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from pixelcheck.animation_formats import (
    GIF_TYPE,
    AnimationFacts,
    AnimationMalformed,
    scan_animation,
    sniff_animation_type,
)
from pixelcheck.errors import InvalidInput, TooLarge
from pixelcheck.ids import EXTERNAL_ID, EXTERNAL_ID_RULE
from pixelcheck.image_formats import (
    ACCEPTED_NAMES,
    PILLOW_FORMATS,
    SNIFF_BYTES,
    enable_decoders,
    sniff_content_type,
    tiff_tag,
)
from pixelcheck.ingestion.video_rules import check_video
from pixelcheck.video_formats import ACCEPTED_VIDEO_NAMES, VIDEO_TYPES, read_head, sniff_video_type

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_FILENAME_MAX = 255
_TIFF_REDUCED_RESOLUTION = 0b001  # bits of the NewSubfileType tag (254)
_TIFF_PART_OF_PICTURE = 0b101  # a reduced-resolution copy or a transparency mask
_MAX_TIFF_DIRECTORIES = 16  # more than any single picture's previews and masks
_ISO_VIDEO_TYPES = {"video/mp4", "video/quicktime"}


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_chunk_bytes: int
    max_side: int
    max_pixels: int
    max_frames: int = 10_000  # frames in an animated GIF, WebP or PNG
    max_duration_ms: int = 600_000  # an animation's running time
    max_animation_pixels: int = 2_000_000_000  # frames x canvas pixels: what decoding every frame costs
    analysed_frames: int = 60  # frames of an animation the pixel model reads, at most (its fair-queue cost)
    video_max_bytes: int = 200 * 1024 * 1024  # a video clip's bytes (max_bytes is the limit of everything else)
    video_max_duration_ms: int = 600_000  # a clip's running time, as its container declares it
    video_max_side: int = 8192  # a clip's frame size: pixels per side ...
    video_max_pixels: int = 8192 * 4320  # ... and pixels per frame (8K)
    video_max_frames: int = 36_000  # frames in a clip (declared), and frames decoded from one, at most
    video_max_decoded_pixels: int = 150_000_000_000  # frames x frame pixels: what decoding a whole clip costs

    def byte_limit(self, declared_type: str, head: bytes = b"") -> int:
        """The most bytes an upload may have: a clip's limit when its metadata declares a video type and its first
        bytes (once SNIFF_BYTES of them arrived) are a clip, else an image's. Undeclared clips get the image limit,
        so that every image upload is refused at the same point as before clips were accepted."""
        if not declares_video(declared_type) or (len(head) >= SNIFF_BYTES and not sniff_video_type(head)):
            return self.max_bytes
        return self.video_max_bytes


def declares_video(content_type: str) -> bool:
    """Whether an upload's advisory content_type names one of the accepted video types."""
    return content_type.split(";")[0].strip().lower() in (*VIDEO_TYPES, "video/x-m4v")


@dataclass(frozen=True)
class UploadMetadata:
    filename: str
    size_bytes: int
    content_type: str
    sha256: str
    request_id: str
    external_id: str = ""


@dataclass(frozen=True)
class DecodedImage:
    content_type: str
    width: int
    height: int
    frame_count: int = 1  # more than one: an animation
    duration_ms: int = 0  # an animation's running time


def clean_filename(name: str) -> str:
    """The base name without path components or control characters."""
    base = re.split(r"[\\/]", name)[-1]
    return "".join(ch for ch in base if ch.isprintable()).strip()


def identifier_violations(prefix: str, *, filename: str, request_id: str, external_id: str,
                          filename_required: bool = True) -> list[tuple[str, str]]:
    """What is wrong with the names an upload or import carries (filename already cleaned)."""
    violations: list[tuple[str, str]] = []
    if not filename and filename_required:
        violations.append((f"{prefix}filename", "is required (a file name, without a path)"))
    elif len(filename) > _FILENAME_MAX:
        violations.append((f"{prefix}filename", f"must be at most {_FILENAME_MAX} characters"))
    if len(request_id) > 128 or (request_id and not request_id.isprintable()):
        violations.append((f"{prefix}request_id", "must be at most 128 printable characters"))
    if external_id and not EXTERNAL_ID.match(external_id):
        violations.append((f"{prefix}external_id", EXTERNAL_ID_RULE))
    return violations


def validate_metadata(meta: UploadMetadata, limits: UploadLimits) -> UploadMetadata:
    """Checks the first message of an upload. Raises InvalidInput listing every bad field, or TooLarge."""
    filename = clean_filename(meta.filename)
    violations = identifier_violations("metadata.", filename=filename, request_id=meta.request_id,
                                       external_id=meta.external_id)
    if meta.size_bytes <= 0:
        violations.append(("metadata.size_bytes", "is required and must be positive"))
    sha = meta.sha256.lower()
    if sha and not SHA256_HEX.match(sha):
        violations.append(("metadata.sha256", "must be 64 hexadecimal characters"))
    if len(meta.content_type) > 100:
        violations.append(("metadata.content_type", "must be at most 100 characters"))
    if violations:
        raise InvalidInput("The upload metadata is invalid: " + "; ".join(f"{f} {d}" for f, d in violations),
                           reason="INVALID_METADATA", violations=violations)
    limit = limits.byte_limit(meta.content_type)
    if meta.size_bytes > limit:
        raise too_large(meta.size_bytes, limit, video=declares_video(meta.content_type))
    return UploadMetadata(filename=filename, size_bytes=meta.size_bytes, content_type=meta.content_type,
                          sha256=sha, request_id=meta.request_id, external_id=meta.external_id)


def too_large(size: int, limit: int, *, video: bool) -> TooLarge:
    """The refusal of an upload of `size` bytes over `limit` (a clip's limit when `video`)."""
    if video:
        return TooLarge(f"The video is {size} bytes; the limit for video clips is {limit} bytes (video_max_bytes)",
                        reason="VIDEO_TOO_LARGE", metadata={"limit_bytes": str(limit)})
    return TooLarge(f"The image is {size} bytes; the limit is {limit} bytes", reason="UPLOAD_TOO_LARGE",
                    metadata={"limit_bytes": str(limit)})


def decode_image(source: bytes | str, limits: UploadLimits) -> DecodedImage:
    """Sniffs the type and decodes every pixel, within the dimension limits; a video clip is probed instead
    (check_video: VIDEO_* reasons), its frames decoded by the analysis. `source` is the bytes, or the path of
    the temporary file a clip was received into (anything else there is refused as UNSUPPORTED_TYPE).

    An animated GIF, WebP or PNG is measured from its structure first (check_animation); its first frame is
    decoded here, the others by the analysis. Raises InvalidInput (UNSUPPORTED_TYPE, UNDECODABLE_IMAGE,
    ANIMATED_IMAGE for other multi-picture files, MULTI_PAGE_IMAGE, ANIMATION_FRAME_OUTSIDE_CANVAS) or TooLarge
    (IMAGE_DIMENSIONS_TOO_LARGE, DECOMPRESSION_BOMB, ANIMATION_TOO_MANY_FRAMES, ANIMATION_TOO_LONG,
    ANIMATION_TOO_LARGE) before any large allocation.
    """
    if isinstance(source, str):
        return _decode_clip(source, sniff_video_type(read_head(source, SNIFF_BYTES)), os.path.getsize(source),
                            limits)
    data = source
    content_type = sniff_content_type(data[:SNIFF_BYTES]) or sniff_animation_type(data[:SNIFF_BYTES])
    if content_type is None:
        return _decode_clip(data, sniff_video_type(data[:SNIFF_BYTES]), len(data), limits)
    try:
        animation = scan_animation(data, content_type, limits.max_frames)
    except AnimationMalformed as exc:
        raise InvalidInput(f"The animation could not be decoded: {exc}", reason="UNDECODABLE_IMAGE") from exc
    if content_type == GIF_TYPE and (animation is None or animation.frame_count < 2):
        raise InvalidInput(f"A GIF is accepted only as an animation; save a still picture as one of "
                           f"{ACCEPTED_NAMES}", reason="UNSUPPORTED_TYPE")
    if animation is not None:
        check_animation(animation, limits)
    expected_format = PILLOW_FORMATS.get(content_type) or "GIF"
    enable_decoders()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[expected_format]) as image:
                width, height = image.size
                _check_dimensions(width, height, limits)
                image.load()  # decodes every pixel: a truncated or corrupt file fails here
                if expected_format == "TIFF":
                    _check_tiff_pages(image)
                    frames = 1
                elif animation is not None:
                    frames = animation.frame_count  # GIF's n_frames would walk every frame
                else:
                    frames = getattr(image, "n_frames", 1)
    except TooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge("The image decompresses to more pixels than allowed", reason="DECOMPRESSION_BOMB") from exc
    # Beyond OSError and friends, Pillow's plugins raise these for malformed headers and TIFF directories.
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError,
            struct.error) as exc:
        raise InvalidInput(f"The {expected_format} image could not be decoded: it is truncated or corrupt",
                           reason="UNDECODABLE_IMAGE") from exc
    if animation is not None:
        return DecodedImage(content_type=content_type, width=width, height=height,
                            frame_count=animation.frame_count, duration_ms=animation.duration_ms)
    if frames > 1 and content_type != "image/jpeg":  # MPO-style JPEGs carry previews; HEIF sequences are out
        raise InvalidInput("Image sequences are accepted as animated GIF, WebP or PNG only; this file holds "
                           "several pictures", reason="ANIMATED_IMAGE")
    return DecodedImage(content_type=content_type, width=width, height=height)


def _decode_clip(source: bytes | str, video_type: str | None, size: int, limits: UploadLimits) -> DecodedImage:
    if video_type is None:
        raise InvalidInput(f"Only {ACCEPTED_NAMES} images and {ACCEPTED_VIDEO_NAMES} video clips are accepted; "
                           "these bytes are none of them", reason="UNSUPPORTED_TYPE")
    if size > limits.video_max_bytes:
        raise too_large(size, limits.video_max_bytes, video=True)
    clip = check_video(source, video_type, limits)
    return DecodedImage(content_type=video_type, width=clip.width, height=clip.height,
                        frame_count=clip.frame_count, duration_ms=clip.duration_ms)


# Pixels FFmpeg decodes in about the time the pixel model reads one picture: ~300 MP/s of H.264 on one core here
# (scripts/bench/video.py) against ~150 ms a picture.
DECODED_PIXELS_PER_TURN = 45_000_000


def analysis_cost(decoded: DecodedImage, limits: UploadLimits) -> int:
    """The turns an upload's analysis takes in the fair queue: 1 for a still picture; for an animation the
    frames the pixel model reads (one a second, at most analysed_frames; scene cuts are not known yet); for a
    video clip those plus decoding every frame, in turns of DECODED_PIXELS_PER_TURN (a minute of 1080p at 30 fps:
    60 + 83 turns), so one account's long clips take as many turns as the photos they cost the workers."""
    if decoded.frame_count < 2:
        return 1
    read = max(1, min(limits.analysed_frames, -(-decoded.duration_ms // 1000), decoded.frame_count))
    if not decoded.content_type.startswith("video/"):
        return read
    return read + -(-decoded.frame_count * decoded.width * decoded.height // DECODED_PIXELS_PER_TURN)


def check_animation(animation: AnimationFacts, limits: UploadLimits) -> None:
    """Refuses an animation over the frame, duration or size limits, or whose frames leave the canvas, from its
    structure alone (nothing decoded). Raises TooLarge or InvalidInput naming the limit."""
    if animation.frame_count > limits.max_frames:
        raise TooLarge(f"The animation has more than {limits.max_frames} frames, the limit",
                       reason="ANIMATION_TOO_MANY_FRAMES", metadata={"max_frames": str(limits.max_frames)})
    if animation.duration_ms > limits.max_duration_ms:
        raise TooLarge(f"The animation runs {animation.duration_ms / 1000:g} s; the limit is "
                       f"{limits.max_duration_ms / 1000:g} s", reason="ANIMATION_TOO_LONG",
                       metadata={"max_duration_ms": str(limits.max_duration_ms)})
    _check_dimensions(animation.width, animation.height, limits)
    for index, frame in enumerate(animation.frames):
        try:
            _check_dimensions(frame.width, frame.height, limits)
        except InvalidInput as exc:
            raise InvalidInput(f"Frame {index} of the animation has no pixels", reason="UNDECODABLE_IMAGE") from exc
        except TooLarge as exc:
            raise TooLarge(f"Frame {index} of the animation: {exc}", reason=exc.reason,
                           metadata=exc.metadata) from exc
        outside = frame.left + frame.width > animation.width or frame.top + frame.height > animation.height
        if outside and animation.content_type != GIF_TYPE:  # GIF decoders widen the canvas; WebP and APNG forbid it
            raise InvalidInput(
                f"Frame {index} of the animation ({frame.width}x{frame.height} at {frame.left},{frame.top}) does "
                f"not fit its {animation.width}x{animation.height} canvas", reason="ANIMATION_FRAME_OUTSIDE_CANVAS")
    if animation.frame_count * animation.width * animation.height > limits.max_animation_pixels:
        raise TooLarge(f"The animation's {animation.frame_count} frames of {animation.width}x{animation.height} "
                       f"pixels are more than the {limits.max_animation_pixels / 1e6:g} megapixels decoded for one "
                       "animation", reason="ANIMATION_TOO_LARGE",
                       metadata={"max_animation_pixels": str(limits.max_animation_pixels)})


def _check_tiff_pages(image: Image.Image) -> None:
    """Refuses a TIFF whose first image is only a preview (camera raw files) or that holds several pages.

    Reduced-resolution copies and transparency masks after the picture are part of it, as a JPEG's
    previews are; a second full page is another picture, and judging one page of a scanned batch would
    claim more than was looked at. At most _MAX_TIFF_DIRECTORIES directories are read.
    """
    if tiff_tag(image, 254, 0) & _TIFF_REDUCED_RESOLUTION:
        raise InvalidInput("The TIFF's first image is a reduced-resolution preview, as in camera raw files "
                           "(DNG, NEF ...); export the picture as TIFF, JPEG or PNG", reason="UNSUPPORTED_TYPE")
    for index in range(1, _MAX_TIFF_DIRECTORIES + 1):
        try:
            image.seek(index)
        except EOFError:
            return
        if index == _MAX_TIFF_DIRECTORIES or not tiff_tag(image, 254, 0) & _TIFF_PART_OF_PICTURE:
            raise InvalidInput("The TIFF holds several pages; only single-page images are accepted: save the "
                               "page to check as a file of its own", reason="MULTI_PAGE_IMAGE")


def _check_dimensions(width: int, height: int, limits: UploadLimits) -> None:
    if width <= 0 or height <= 0:
        raise InvalidInput("The image has no pixels", reason="UNDECODABLE_IMAGE")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise TooLarge(
            f"The image is {width}x{height} pixels; the limits are {limits.max_side} pixels per side and "
            f"{limits.max_pixels / 1e6:g} megapixels", reason="IMAGE_DIMENSIONS_TOO_LARGE",
            metadata={"max_side": str(limits.max_side), "max_pixels": str(limits.max_pixels)})


def check_declared_type(declared: str, sniffed: str) -> None:
    """An advisory content_type that contradicts the bytes is a client error worth reporting."""
    declared = declared.split(";")[0].strip().lower()
    aliases = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/heif": "image/heic",
               "image/heic-sequence": "image/heic", "image/heif-sequence": "image/heic",
               "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp", "image/x-tiff": "image/tiff",
               "image/tif": "image/tiff", "video/x-m4v": "video/mp4"}
    declared = aliases.get(declared, declared)
    if {declared, sniffed} <= _ISO_VIDEO_TYPES:  # the same box format: clients name either for either
        return
    if declared and declared != "application/octet-stream" and declared != sniffed:
        raise InvalidInput(f"The bytes are {sniffed} but the metadata declares {declared}",
                           reason="CONTENT_TYPE_MISMATCH",
                           violations=[("metadata.content_type", f"declared {declared}, bytes are {sniffed}")])
