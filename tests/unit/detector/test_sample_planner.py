"""Which frames a timeline reads: SamplePlanner decides frame by frame while the frames are decoded once, and is
held against the plan the two-pass reader made after a survey of every frame (two_pass_plan, kept here as the
reference): the same frames, except that the room for scene cuts is counted from the grid points, so fewer cuts
may be read when grid points share a frame or have none."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from pixelcheck.analysis.detector.timeline import Pick, SamplePlanner, SamplingPolicy

POLICY = SamplingPolicy(max_frames=60)


def two_pass_plan(times_ms: Sequence[int], duration_ms: int, readable: Sequence[bool], cuts: Sequence[int],
                  policy: SamplingPolicy) -> list[tuple[int, bool]]:
    """The plan of the two-pass reader (its plan_samples, unchanged): (frame index, read as a scene cut)."""
    chosen: dict[int, bool] = {}
    interval = policy.interval_for(duration_ms)
    for grid_ms in range(0, max(duration_ms, 1), interval):
        index = max(bisect.bisect_right(times_ms, grid_ms) - 1, 0)
        while index < len(readable) and not readable[index]:
            index += 1
        if index < len(readable):
            chosen.setdefault(index, False)
    for index in cuts:
        if len(chosen) >= policy.max_frames:
            break
        if readable[index]:
            chosen.setdefault(index, True)
    return sorted(chosen.items())[: policy.max_frames]


def online_plan(times_ms: Sequence[int], duration_ms: int, readable: Sequence[bool], cuts: Sequence[int],
                policy: SamplingPolicy, totals: list[int] | None = None) -> list[tuple[int, bool]]:
    """The frames SamplePlanner reads when fed the frames in order; `totals` gets the progress total after each."""
    planner = SamplePlanner(duration_ms, policy)
    chosen = []
    for index in range(len(times_ms)):
        next_start = times_ms[index + 1] if index + 1 < len(times_ms) else None
        pick = planner.choose(readable[index], index in cuts, next_start)
        if pick is not None:
            chosen.append((index, pick is Pick.SCENE_CUT))
            if totals is not None:
                totals.append(planner.expected_frames)
    if totals is not None:
        totals.append(planner.expected_frames)  # once every frame is seen
    return chosen


def times(count: int, every_ms: int) -> list[int]:
    return [i * every_ms for i in range(count)]


def test_one_frame_per_second_always_starting_with_the_first() -> None:
    plan = online_plan(times(40, 250), 10_000, [True] * 40, [], POLICY)
    assert plan == [(i * 4, False) for i in range(10)]


def test_a_frame_shown_across_a_second_mark_is_read_once() -> None:
    plan = online_plan([0, 1500, 2600], 3000, [True] * 3, [], POLICY)
    assert plan == [(0, False), (1, False)]  # frame 0 shows at 0 s and 1 s, frame 1 at 2 s, frame 2 at no mark


def test_scene_cuts_between_seconds_are_read_too_and_marked() -> None:
    plan = online_plan(times(40, 250), 10_000, [True] * 40, [6, 8], POLICY)
    assert (6, True) in plan and (8, False) in plan and len(plan) == 11


def test_a_corrupt_frame_is_replaced_by_the_next_readable_one() -> None:
    readable = [False, False, True] + [True] * 9
    plan = online_plan(times(12, 500), 6000, readable, [], POLICY)
    assert plan[0] == (2, False) and all(readable[i] for i, _ in plan)


def test_long_animations_are_spaced_wider_and_capped() -> None:
    policy = SamplingPolicy(max_frames=10)
    plan = online_plan(times(600, 100), 60_000, [True] * 600, list(range(5, 600, 7)), policy)
    assert len(plan) == 10 and plan[0] == (0, False) and plan[-1][0] >= 540
    assert policy.interval_for(60_000) == 6000 and "6 s" in policy.describe(60_000)
    assert "no scene cuts" in policy.describe(60_000) and "up to 50 frames" in POLICY.describe(10_000)


def test_cut_room_is_counted_from_grid_points_even_when_they_share_a_frame() -> None:
    # Frame 0 shows at 0, 1 and 2 s: the two-pass plan, knowing it, read two cuts in the room left; one pass
    # meets the cuts before it can know, and keeps the room the 4 grid points take.
    starts, cuts, policy = [0, 2500, 2600, 2700, 3000], [1, 3], SamplingPolicy(max_frames=4)
    assert two_pass_plan(starts, 4000, [True] * 5, cuts, policy) == [(0, False), (1, True), (3, True), (4, False)]
    totals: list[int] = []
    assert online_plan(starts, 4000, [True] * 5, cuts, policy, totals) == [(0, False), (4, False)]
    assert totals == [2, 2, 2]  # the grid points known to share frame 0 are not counted in progress


def test_grid_times_after_the_last_frame_that_decodes_are_dropped_from_progress() -> None:
    totals: list[int] = []
    plan = online_plan(times(6, 500), 3000, [True] * 4 + [False] * 2, [], POLICY, totals)
    assert plan == [(0, False), (2, False)] and totals == [3, 3, 2]  # 2 s falls on frame 4, which is broken


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[int], int, list[bool], list[int], SamplingPolicy]:
    """Frames of mixed lengths (none, shorter and longer than a second), a first frame that may start late, a
    declared duration that may fall short of the frames or run past them, broken frames and scene cuts."""
    count = draw(st.integers(1, 90))
    lengths = draw(st.lists(st.sampled_from([0, 33, 40, 100, 250, 999, 1000, 1500, 4000]), min_size=count,
                            max_size=count))
    start = draw(st.sampled_from([0, 0, 0, 40, 1200]))
    starts = [start + sum(lengths[:i]) for i in range(count)]
    end = starts[-1] + lengths[-1]
    duration = draw(st.sampled_from([end, end, max(end - 700, 0), end + 2500, 0]))
    readable = draw(st.lists(st.integers(0, 9).map(lambda n: n > 1), min_size=count, max_size=count))
    cuts = [i for i in range(count) if readable[i] and draw(st.integers(0, 3)) == 0]
    policy = SamplingPolicy(max_frames=draw(st.sampled_from([1, 3, 5, 10, 60])))
    return starts, duration, readable, cuts, policy


@given(timelines())
def test_the_online_plan_reads_the_two_pass_plans_frames_within_the_grid_points_room(
        timeline: tuple[list[int], int, list[bool], list[int], SamplingPolicy]) -> None:
    starts, duration, readable, cuts, policy = timeline
    before = two_pass_plan(starts, duration, readable, cuts, policy)
    totals: list[int] = []
    now = online_plan(starts, duration, readable, cuts, policy, totals)
    grid_points = policy.grid_points(duration)
    grid_frames = [index for index, cut in before if not cut]
    assert [index for index, cut in now if not cut] == grid_frames  # every grid frame, the same ones
    if len(grid_frames) == grid_points:  # no grid point shares a frame or lacks one: the very same plan
        assert now == before
    else:  # the cuts read are the earliest of the two-pass plan's, as many as the grid points leave room for
        cuts_now, cuts_before = [i for i, cut in now if cut], [i for i, cut in before if cut]
        assert cuts_now == cuts_before[: policy.max_frames - grid_points]
    assert len(now) <= policy.max_frames
    assert all(total >= done for done, total in enumerate(totals[:-1], start=1)) and totals[-1] == len(now)
