"""Small video clips made with PyAV for tests (never committed as files): MP4, MOV and WebM in the codecs the
service accepts, with audio, tags, damage or lying headers on request."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction

import av
import numpy as np
from hypothesis import strategies as st

from tests import images

# (container format, codec, pixel format) of each accepted kind of clip.
KINDS: dict[str, tuple[str, str, str]] = {
    "mp4-h264": ("mp4", "libx264", "yuv420p"),
    "mp4-hevc": ("mp4", "libx265", "yuv420p"),
    "mov-h264": ("mov", "libx264", "yuv420p"),
    "mov-hevc": ("mov", "libx265", "yuv420p"),
    "webm-vp8": ("webm", "libvpx", "yuv420p"),
    "webm-vp9": ("webm", "libvpx-vp9", "yuv420p"),
    "webm-av1": ("webm", "libsvtav1", "yuv420p"),
    "mp4-mpeg4": ("mp4", "mpeg4", "yuv420p"),  # MPEG-4 Part 2: a codec the service does not accept
}
_QUIET = {"x265-params": "log-level=none"}


def clip(kind: str = "mp4-h264", *, seconds: float = 2.0, fps: int = 10, width: int = 160, height: int = 120,
         scenes: Sequence[float] = (0.0,), audio: bool = False, tags: Mapping[str, str] | None = None,
         pictures: Sequence[np.ndarray] | None = None, crf: int | None = None) -> bytes:
    """A clip of `seconds` at `fps` (x265 aborts the process below 64x48): a textured picture drifting a pixel
    per frame, a new picture from each time in `scenes` on (or the given RGB `pictures`, one per frame). `tags`
    go into the container's metadata; `crf` sets the H.264/HEVC quality (lower is better; the encoder's default
    when None)."""
    container_format, codec, pixel_format = KINDS[kind]
    count = len(pictures) if pictures is not None else round(seconds * fps)
    frames = pictures if pictures is not None else _drifting(count, fps, width, height, scenes)
    buffer = io.BytesIO()
    keep_tags = {"movflags": "use_metadata_tags"} if tags and container_format in ("mp4", "mov") else {}
    with av.open(buffer, "w", format=container_format, options=keep_tags) as out:
        for key, value in (tags or {}).items():
            out.metadata[key] = value
        options = {**(_QUIET if codec == "libx265" else {}), **({"crf": str(crf)} if crf is not None else {})}
        stream = out.add_stream(codec, rate=fps, options=options)
        stream.thread_count = 1  # encoders' worker threads hung now and then on a busy machine
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = pixel_format
        sound = out.add_stream("aac", rate=16000) if audio else None
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            _add_silence(out, sound, count / fps)
    return buffer.getvalue()


def _drifting(count: int, fps: int, width: int, height: int, scenes: Sequence[float]) -> list[np.ndarray]:
    starts = [round(s * fps) for s in scenes]
    pictures = [np.asarray(images.picture(width + count, height, seed=7 + 13 * n)) for n in range(len(starts))]
    frames = []
    for index in range(count):
        scene = max(n for n, start in enumerate(starts) if start <= index) if index >= starts[0] else 0
        frames.append(np.ascontiguousarray(pictures[scene][:, index : index + width]))
    return frames


def _add_silence(out: av.container.OutputContainer, sound: av.AudioStream, seconds: float) -> None:
    samples = int(16000 * seconds)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), dtype=np.float32), format="fltp", layout="mono")
    frame.sample_rate = 16000
    frame.pts, frame.time_base = 0, Fraction(1, 16000)
    for packet in sound.encode(frame):
        out.mux(packet)
    for packet in sound.encode():
        out.mux(packet)


def boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the top-level boxes of an MP4 or MOV file."""
    found, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        size = size or len(data) - at
        found.append((kind, at, size))
        if size < 8:
            break
        at += size
    return found


def without_box(data: bytes, kind: bytes) -> bytes:
    """The MP4 with one top-level box (e.g. its moov index) cut out."""
    for name, at, size in boxes(data):
        if name == kind:
            return data[:at] + data[at + size :]
    raise ValueError(f"no {kind!r} box")


def with_declared_size(data: bytes, width: int, height: int) -> bytes:
    """The MP4 with its track header claiming width x height (the picture itself is unchanged)."""
    at = data.index(b"tkhd")
    version = data[at + 4]
    field = at + 4 + (88 if version == 1 else 76)  # the 16.16 width and height end the track header
    patched = bytearray(data)
    struct.pack_into(">II", patched, field, width << 16, height << 16)
    return bytes(patched)


def with_declared_duration(data: bytes, seconds: int) -> bytes:
    """The MP4 whose first (video) track's time-to-sample table spaces its frames out over `seconds`, and whose
    movie, track and media headers say so: a short clip whose container claims to run for hours."""
    patched = bytearray(data)
    at = patched.index(b"stts")
    entries = struct.unpack_from(">I", patched, at + 8)[0]
    frames = sum(struct.unpack_from(">I", patched, at + 12 + 8 * n)[0] for n in range(entries))
    scale = struct.unpack_from(">I", patched, patched.index(b"mdhd") + 16)[0]
    for n in range(entries):
        struct.pack_into(">I", patched, at + 16 + 8 * n, seconds * scale // frames)
    movie_scale = struct.unpack_from(">I", data, data.index(b"mvhd") + 16)[0]
    for name, field in ((b"mvhd", 20), (b"tkhd", 24), (b"mdhd", 20), (b"elst", 12)):
        where = patched.index(name)
        units = scale if name == b"mdhd" else movie_scale
        struct.pack_into(">I", patched, where + field, min(seconds * units, 0xFFFFFFFF))
    return bytes(patched)


def with_corrupt_frames(data: bytes, first: int, count: int) -> bytes:
    """The clip with the coded data of `count` frames from frame `first` on overwritten by noise (the
    container is left intact, so a reader meets broken frames in the middle and good ones after)."""
    with av.open(io.BytesIO(data)) as container:
        spans = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    patched = bytearray(data)
    noise = np.random.default_rng(3)
    for position, size in sorted(spans)[first : first + count]:
        patched[position + 4 : position + size] = noise.integers(0, 256, size - 4, dtype=np.uint8).tobytes()
    return bytes(patched)


def clip_frames(count: int, width: int, height: int) -> list[av.VideoFrame]:
    """`count` drifting RGB frames as PyAV frames, for writing containers by hand."""
    return [av.VideoFrame.from_ndarray(rgb, format="rgb24") for rgb in _drifting(count, 10, width, height, (0.0,))]


def empty_mp4() -> bytes:
    """An MP4 whose H.264 track holds no frame at all."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    return buffer.getvalue()


def mutated(data: bytes, edits: Sequence[tuple[str, float, bytes]]) -> bytes:
    """The clip with each (edit, where 0-1, bytes) applied in turn: flip a byte, truncate, insert or delete."""
    mutable = bytearray(data)
    for edit, where, payload in edits:
        at = int(where * max(len(mutable) - 1, 0))
        if edit == "flip" and mutable:
            mutable[at] ^= payload[0] or 1
        elif edit == "truncate":
            del mutable[at:]
        elif edit == "insert":
            mutable[at:at] = payload
        else:
            del mutable[at : at + len(payload)]
    return bytes(mutable)


EDITS = st.lists(st.tuples(st.sampled_from(["flip", "truncate", "insert", "delete"]), st.floats(0, 1),
                           st.binary(min_size=1, max_size=32)), max_size=4)


def with_h264_frame_size(data: bytes, width: int, height: int) -> bytes:
    """The H.264 MP4 (made by clip(), frames of whole macroblocks) with its sequence parameter set rewritten to
    declare width x height pixels (multiples of 16): a tiny file claiming enormous frames, as a decoder reads it."""
    at = data.index(b"avcC") - 4
    sps_length = struct.unpack_from(">H", data, at + 14)[0]
    old = data[at + 16 : at + 16 + sps_length]
    new = _escape(_resized_sps(_unescape(old), width // 16 - 1, height // 16 - 1))
    delta = len(new) - len(old)
    patched = bytearray(data[: at + 14] + struct.pack(">H", len(new)) + new + data[at + 16 + sps_length :])
    for start in _ancestors(data, at):  # every box that holds the avcC grows with it
        struct.pack_into(">I", patched, start, struct.unpack_from(">I", data, start)[0] + delta)
    return bytes(patched)


_CHILDREN_AT = {b"moov": 8, b"trak": 8, b"mdia": 8, b"minf": 8, b"stbl": 8, b"stsd": 16, b"avc1": 86}


def _ancestors(data: bytes, target: int, start: int = 0, end: int | None = None) -> list[int]:
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        if start <= target < start + size:
            if start == target:
                return []
            return [start, *_ancestors(data, target, start + _CHILDREN_AT.get(kind, size), start + size)]
        start += max(size, 8)
    return []


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _resized_sps(sps: bytes, width_mbs_minus1: int, height_units_minus1: int) -> bytes:
    """A High-profile SPS (as x264 writes it: no scaling matrices, picture order count type 0) with new sizes."""
    bits = "".join(f"{byte:08b}" for byte in sps[4:])  # after the NAL header, profile, constraints and level
    position = 0

    def ue() -> None:
        nonlocal position
        zeros = bits.index("1", position) - position
        position += 2 * zeros + 1

    ue()  # seq_parameter_set_id
    ue()  # chroma_format_idc (1: 4:2:0)
    ue()  # bit_depth_luma_minus8
    ue()  # bit_depth_chroma_minus8
    position += 2  # qpprime_y_zero_transform_bypass_flag, seq_scaling_matrix_present_flag (0)
    ue()  # log2_max_frame_num_minus4
    ue()  # pic_order_cnt_type (0)
    ue()  # log2_max_pic_order_cnt_lsb_minus4
    ue()  # max_num_ref_frames
    position += 1  # gaps_in_frame_num_value_allowed_flag
    kept = bits[:position]
    ue()
    ue()
    rest = bits[position:].rstrip("0")[:-1]  # without the trailing stop bit and its padding
    rebuilt = kept + _ue_bits(width_mbs_minus1) + _ue_bits(height_units_minus1) + rest + "1"
    rebuilt += "0" * (-len(rebuilt) % 8)
    return sps[:4] + int(rebuilt, 2).to_bytes(len(rebuilt) // 8, "big")


def _ue_bits(value: int) -> str:
    code = f"{value + 1:b}"
    return "0" * (len(code) - 1) + code


def padded_chunks(data: bytes, size: int, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """An MP4 or MOV clip made `size` bytes long by a `free` box after its other boxes (players and FFmpeg skip
    it), in chunks of at most chunk_bytes; the padding is one reused chunk of zeros, so that a clip of hundreds
    of megabytes costs the test no memory."""
    header = struct.pack(">I4s", size - len(data), b"free")
    start = data + header
    yield from (start[at : at + chunk_bytes] for at in range(0, len(start), chunk_bytes))
    zeros = bytes(chunk_bytes)
    left = size - len(start)
    while left > 0:
        yield zeros[: min(chunk_bytes, left)]
        left -= chunk_bytes


def padded(data: bytes, size: int) -> bytes:
    """padded_chunks joined: the whole padded clip in memory (for clips of tens of megabytes)."""
    return b"".join(padded_chunks(data, size))
