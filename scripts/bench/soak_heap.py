"""Heap readings of the soak's server processes. Every server child runs a sitecustomize.py (in a folder of its
own, put on PYTHONPATH of the server processes only; the server's code stays untouched) that, in the supervised
children (not their supervisor):

- every few seconds writes its heap in use to usage/PID.json: glibc's malloc in use (mallinfo2: uordblks +
  hblkhd) and the bytes in pymalloc's allocated blocks (Python's small objects, which live in arenas mapped
  outside malloc), beside its RSS. The soak judges the servers' memory by this sum over the children
  (soak_checks.heap_rows): connections move between sibling processes as they age or as one restarts, and glibc
  keeps the pages a child touched at its busiest, so a child's RSS steps up with load that came once, while a
  leak shows as heap in use that grows with the work done.
- with `scripts/soak --trace-memory`, installs a SIGUSR2 handler: the first signal starts tracemalloc (tracing
  from the start slows imports ~40x, past the soak's start timeout), each one dumps a snapshot. The soak signals
  every child when traffic starts and every few minutes after, and at the end prints, per child, the allocation
  sites (tracebacks) that grew most between its second snapshot and its last, with their size in every snapshot
  (plateau or growth), and malloc's totals beside each: memory the allocator holds but nothing uses (freed chunks
  kept in per-thread arenas) shows as RSS far above "in use", with the traced Python heap far below both.
"""

from __future__ import annotations

import json
import os
import signal
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import TextIO

SITECUSTOMIZE = '''\
"""Written by scripts/bench/soak_heap.py: a supervised server child writes its heap in use every few seconds and,
when tracing was asked for, dumps a tracemalloc snapshot on SIGUSR2 (the first one starts tracing)."""
import ctypes
import json
import os
import re
import signal
import threading
import time
import tracemalloc

_FOLDER = {folder!r}
_USAGE = {usage!r}
_FRAMES = {frames!r}
_EVERY = {every!r}
_MALLINFO_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                    "keepcost")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO_FIELDS]


def _malloc_totals() -> dict:
    """glibc's totals over all arenas (mallinfo2), and the RSS: what the allocator holds against what is in use."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):  # not glibc >= 2.33
        return {{}}
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    totals = {{name: getattr(info, name) for name in _MALLINFO_FIELDS}}
    with open("/proc/self/status") as status:
        totals["rss"] = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
    return totals


def _pymalloc_bytes() -> int:
    """Bytes in pymalloc's allocated blocks, as sys._debugmallocstats() counts them, read into memory
    (open_memstream) instead of onto the process's stderr; it takes well under a millisecond."""
    libc = ctypes.CDLL(None)
    libc.open_memstream.restype = ctypes.c_void_p
    libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.free.argtypes = [ctypes.c_void_p]
    stats = ctypes.pythonapi._PyObject_DebugMallocStats
    stats.argtypes = [ctypes.c_void_p]
    text, size = ctypes.c_char_p(), ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(text), ctypes.byref(size))
    try:
        stats(stream)
    finally:
        libc.fclose(stream)
    printed = ctypes.string_at(text, size.value).decode()
    libc.free(ctypes.cast(text, ctypes.c_void_p))
    found = re.search(r"# bytes in allocated blocks\\s*=\\s*([\\d,]+)", printed)
    return int(found.group(1).replace(",", "")) if found else 0


def _usage() -> None:
    """Every _EVERY seconds: usage/PID.json with the heap in use (malloc + pymalloc) and the RSS, replaced whole."""
    path = os.path.join(_USAGE, f"{{os.getpid()}}.json")
    while True:
        totals = _malloc_totals()
        if totals:
            totals["pymalloc"] = _pymalloc_bytes()
            totals["time"] = time.time()
            with open(path + ".part", "w") as part:
                json.dump(totals, part)
            os.replace(path + ".part", path)
        time.sleep(_EVERY)


def _write() -> None:
    if not tracemalloc.is_tracing():  # the first request starts tracing: its snapshot is (nearly) empty
        tracemalloc.start(_FRAMES)
    snapshot = tracemalloc.take_snapshot()
    path = os.path.join(_FOLDER, f"{{os.getpid()}}-{{time.time_ns()}}.snapshot")
    with open(path[:-len(".snapshot")] + ".malloc.json", "w") as totals:
        json.dump(_malloc_totals(), totals)
    snapshot.dump(path + ".part")
    os.replace(path + ".part", path)  # whole files only: the soak waits for this name


def _on_signal(_signum, _frame) -> None:
    threading.Thread(target=_write, name="heap-snapshot", daemon=True).start()


with open("/proc/self/cmdline", "rb") as _cmdline:
    if b"--supervised" in _cmdline.read().split(b"\\0"):
        threading.Thread(target=_usage, name="heap-usage", daemon=True).start()
        if _FRAMES:
            signal.signal(signal.SIGUSR2, _on_signal)
'''


def server_env(folder: Path, frames: int, every: float) -> dict[str, str]:
    """Environment for the server supervisor (inherited by its children): the sitecustomize folder on
    PYTHONPATH. Heap usage is written to folder/usage every `every` seconds; with frames > 0, SIGUSR2 snapshots
    (tracemalloc with that many frames) to folder/snapshots."""
    for sub in ("snapshots", "usage"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(
        folder=str(folder / "snapshots"), usage=str(folder / "usage"), frames=frames, every=every))
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def heap_in_use(folder: Path, pid: int, fresh_after: float) -> tuple[int, int] | None:
    """(malloc in use, pymalloc's allocated blocks) in bytes, as server child pid last wrote them, or None where
    it wrote nothing since wall time fresh_after."""
    try:
        totals = json.loads((folder / "usage" / f"{pid}.json").read_text())
    except (OSError, ValueError):
        return None
    if totals.get("time", 0) < fresh_after:
        return None
    return totals["uordblks"] + totals["hblkhd"], totals["pymalloc"]


def request_snapshots(folder: Path, pids: list[int], timeout: float = 120.0) -> dict[int, Path]:
    """SIGUSR2 to each pid; waits (up to timeout) for their new snapshot files. Returns pid -> file."""
    snapshots = folder / "snapshots"
    before = set(snapshots.glob("*.snapshot"))
    asked = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGUSR2)
            asked.append(pid)
        except ProcessLookupError:
            pass
    found: dict[int, Path] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(asked) and time.monotonic() < deadline:
        time.sleep(0.5)
        for path in set(snapshots.glob("*.snapshot")) - before:
            pid = int(path.name.split("-", 1)[0])
            if pid in asked:
                found[pid] = path
    return found


_IGNORED = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<unknown>"), tracemalloc.Filter(False, "*/sitecustomize.py", all_frames=True))


def _malloc_line(snapshot: Path) -> str:
    path = snapshot.with_name(snapshot.name[:-len(".snapshot")] + ".malloc.json")
    totals = json.loads(path.read_text()) if path.exists() else {}
    if not totals:
        return "? / ? / ?"
    held, used = totals["arena"] + totals["hblkhd"], totals["uordblks"] + totals["hblkhd"]
    return f"{totals['rss'] / 2**20:.0f} / {held / 2**20:.0f} / {used / 2**20:.0f}"


def report(folder: Path, out: TextIO, top: int = 10, frames_shown: int = 10) -> None:
    """Per server child with three snapshots or more: traced totals over time, and the `top` tracebacks that grew
    most from its second snapshot (the first is taken as tracing starts) to its last, each with its size in
    every snapshot."""
    by_pid: dict[int, list[Path]] = defaultdict(list)
    for path in sorted((folder / "snapshots").glob("*.snapshot"), key=lambda p: int(p.stem.split("-")[1])):
        by_pid[int(path.name.split("-", 1)[0])].append(path)
    for pid, paths in sorted(by_pid.items()):
        if len(paths) < 3:
            out.write(f"\nserver child pid {pid}: {len(paths)} snapshots only\n")
            continue
        snapshots = [tracemalloc.Snapshot.load(str(p)).filter_traces(_IGNORED) for p in paths]
        first_ns = int(paths[0].stem.split("-")[1])
        minutes = [(int(p.stem.split("-")[1]) - first_ns) / 60e9 for p in paths]
        totals = [sum(t.size for t in s.traces) / 2**20 for s in snapshots]
        out.write(f"\nserver child pid {pid}, MiB at each snapshot (minutes after its first): RSS / malloc holds "
                  "(arenas + mmap) / malloc in use / traced by tracemalloc\n")
        for m, path, traced in zip(minutes, paths, totals, strict=True):
            out.write(f"  {m:5.1f}: {_malloc_line(path)} / {traced:.1f}\n")
        out.write("  by line (the allocating line, whatever called it):\n")
        for stat in snapshots[-1].compare_to(snapshots[1], "lineno")[:top]:
            out.write(f"    {stat.size_diff / 2**20:+8.2f} MiB {stat.count_diff:+8d} blocks  {stat.traceback[0]}\n")
        sizes = [{stat.traceback: stat.size for stat in s.statistics("traceback")} for s in snapshots]
        diff = snapshots[-1].compare_to(snapshots[1], "traceback")
        for stat in diff[:top]:
            series = ", ".join(f"{size.get(stat.traceback, 0) / 2**20:.2f}" for size in sizes)
            out.write(f"\n  {stat.size_diff / 2**20:+.2f} MiB ({stat.count_diff:+d} blocks; "
                      f"now {stat.size / 2**20:.2f} MiB in {stat.count} blocks); MiB per snapshot: {series}\n")
            for line in stat.traceback.format(limit=frames_shown, most_recent_first=True):
                out.write(f"    {line}\n")
