"""A timeline read in one pass: each frame decoded once, an RGB picture made only for the frames read, each of
them judged as soon as it is chosen, and no earlier frame held while the next one decodes."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pytest
from PIL import Image

from pixelcheck.analysis.detector.animation import read_timeline
from pixelcheck.analysis.detector.frame_reader import THUMBNAIL_SIZE, StreamedFrame
from pixelcheck.analysis.detector.image_facts import ImageUnreadable
from pixelcheck.analysis.detector.pixel_model import PixelReading
from pixelcheck.analysis.detector.timeline import SamplingPolicy
from pixelcheck.analysis.detector.verdict import Timeline


class CountingSource:
    """Frames starting at `starts`, a new flat scene from each index in `scenes` on, those in `broken` undecodable.
    Records how many frames it made, which were made RGB, and which earlier frames were alive at each new one."""

    media_kind = "VIDEO"
    has_audio = False

    def __init__(self, starts: Sequence[int], duration_ms: int, scenes: Sequence[int] = (),
                 broken: Sequence[int] = ()) -> None:
        self.duration_ms = duration_ms
        self._starts, self._scenes, self._broken = starts, scenes, broken
        self.made = 0
        self.made_rgb: list[int] = []
        self.held_at_each_frame: list[list[int]] = []
        self._frames: list[weakref.ref[StreamedFrame]] = []

    def stream(self) -> Iterator[StreamedFrame]:
        for index, start in enumerate(self._starts):
            self.held_at_each_frame.append([i for i, frame in enumerate(self._frames) if frame() is not None])
            self.made += 1
            if index in self._broken:
                frame = StreamedFrame.undecodable(index, start)
            else:
                level = 40.0 * sum(1 for scene in self._scenes if scene <= index)
                frame = StreamedFrame(index, start, np.full(THUMBNAIL_SIZE, level, np.float32),
                                      partial(self._rgb, index))
            self._frames.append(weakref.ref(frame))
            yield frame

    def _rgb(self, index: int) -> Image.Image:
        self.made_rgb.append(index)
        return Image.new("RGB", (64, 64), (index % 256, 0, 0))


class JudgingModel:
    """A pixel model that notes how many frames its source had made when it was given each frame."""

    def __init__(self, source: CountingSource) -> None:
        self._source = source
        self.judged: list[tuple[int, int]] = []  # (frame, frames made by then)

    def run(self, picture: Image.Image) -> PixelReading:
        self.judged.append((picture.getpixel((0, 0))[0], self._source.made))  # type: ignore[index]
        return PixelReading(0.2, (), 1.0, 0.1)


@dataclass
class Pass:
    model: JudgingModel
    timeline: Timeline
    progress: list[tuple[int, int]] = field(default_factory=list)
    firsts: list[Image.Image] = field(default_factory=list)


def read(source: CountingSource) -> Pass:
    model = JudgingModel(source)
    progress: list[tuple[int, int]] = []
    firsts: list[Image.Image] = []
    _, timeline = read_timeline(source, model, 0.5, SamplingPolicy(),  # type: ignore[arg-type]
                                lambda done, total: progress.append((done, total)), on_first=firsts.append)
    return Pass(model, timeline, progress, firsts)


def test_only_the_frames_read_are_made_rgb_and_each_is_judged_once_the_next_frame_starts() -> None:
    source = CountingSource([i * 100 for i in range(50)], 5000, scenes=[23])
    reading = read(source)
    read_frames = [0, 10, 20, 23, 30, 40]
    assert source.made == 50 and source.made_rgb == read_frames
    assert [frame for frame, _ in reading.model.judged] == read_frames
    assert all(made == frame + 2 for frame, made in reading.model.judged)  # it, and the next (whose start decided)
    assert [(f.index, f.scene_cut) for f in reading.timeline.frames] == [(i, i == 23) for i in read_frames]
    assert reading.progress == [(1, 5), (2, 5), (3, 5), (4, 6), (5, 6), (6, 6)]  # 5 grid points, then the cut
    assert len(reading.firsts) == 1 and reading.firsts[0].getpixel((0, 0)) == (0, 0, 0)


def test_no_earlier_frame_is_held_while_the_next_one_decodes_but_the_one_being_decided() -> None:
    source = CountingSource([i * 100 for i in range(40)], 4000, scenes=[5, 17], broken=[9, 10])
    read(source)
    assert all(held in ([], [index - 1]) for index, held in enumerate(source.held_at_each_frame))


def test_a_broken_grid_frame_is_stood_in_for_by_the_next_that_decodes_and_skipped_frames_are_counted() -> None:
    source = CountingSource([i * 100 for i in range(30)], 3000, broken=[10, 11])
    timeline = read(source).timeline
    assert source.made_rgb == [0, 12, 20]
    assert (timeline.frames_in_file, timeline.frames_skipped, timeline.frames_read) == (30, 2, 3)


def test_progress_ends_exact_when_grid_times_turn_out_to_have_no_frame() -> None:
    source = CountingSource([0, 1000, 2000, 3000], 6000, broken=[3])  # 3 s, 4 s and 5 s: only frame 3, broken
    assert read(source).progress == [(1, 6), (2, 6), (3, 6), (3, 3)]


def test_a_source_none_of_whose_frames_decode_is_unreadable() -> None:
    with pytest.raises(ImageUnreadable, match="None of the clip's frames could be decoded"):
        read(CountingSource([0, 100, 200], 300, broken=[0, 1, 2]))
