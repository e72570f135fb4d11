"""Provenance in a video container's metadata (as FFmpeg reads it): the phone that filmed it, the tool that wrote
it, when, and generators that name themselves. The counterpart of metadata_scan for still pictures: it yields the
same MetadataFindings, so fusion weighs a clip's tags as it weighs a photo's EXIF and XMP.

QuickTime files from iPhones carry com.apple.quicktime.make/model/software/creationdate; Android phones write
com.android.manufacturer/model/version. Encoders leave `encoder` (e.g. Lavf62.12.102, the FFmpeg library) and
each track a `handler_name`. Generators that sign their clips say so in a comment, title or encoder tag.
"""

from __future__ import annotations

from collections.abc import Mapping

from pixelcheck.analysis.detector.metadata_scan import MetadataFindings, generator_in

_MAKE_TAGS = ("com.apple.quicktime.make", "com.android.manufacturer", "make", "manufacturer")
_MODEL_TAGS = ("com.apple.quicktime.model", "com.android.model", "model")
_SOFTWARE_TAGS = ("com.apple.quicktime.software", "com.android.version", "software", "encoder", "ENCODER",
                  "stream:encoder", "stream:handler_name")
_CAPTURE_TAGS = {"com.apple.quicktime.creationdate": "capture date", "creation_time": "creation time",
                 "com.apple.quicktime.location.ISO6709": "location", "location": "location",
                 "com.android.capture.fps": "capture frame rate"}
_TEXT_TAGS = ("comment", "description", "title", "synopsis", "artist", "copyright", "encoder", "ENCODER",
              "com.apple.quicktime.software", "software", "stream:handler_name", "stream:encoder")
# Tools that write every file they touch: a generic encoder says nothing about the camera.
_GENERIC_WRITERS = ("lavf", "lavc", "videohandler", "soundhandler", "core media", "handbrake")


def scan_container_tags(tags: Mapping[str, str]) -> MetadataFindings:
    """Camera, software and generator traces in a clip's container and video-stream tags."""
    make = _first(tags, _MAKE_TAGS)
    model = _first(tags, _MODEL_TAGS)
    software = _first(tags, _SOFTWARE_TAGS)
    traces: list[tuple[str, str]] = []
    for key in _TEXT_TAGS:
        value = tags.get(key, "")
        name = generator_in(value)
        if name:
            traces.append((f"container tag {key.removeprefix('stream:')} names a generator ({value.strip()[:60]})",
                           name.title()))
    capture = [label for key, label in _CAPTURE_TAGS.items() if tags.get(key)]
    if not make and software.lower().startswith(_GENERIC_WRITERS):
        capture = [label for label in capture if label != "creation time"]  # set by every muxer
    return MetadataFindings(
        generator_traces=tuple(dict.fromkeys(trace for trace, _ in traces)),
        generator_name=traces[0][1] if traces else "",
        camera_make=make,
        camera_model=model,
        camera_capture_fields=tuple(dict.fromkeys(capture)) if make or model else (),
        software=software,
        has_exif=False,
    )


def _first(tags: Mapping[str, str], keys: tuple[str, ...]) -> str:
    return next((tags[key].strip() for key in keys if tags.get(key, "").strip()), "")
