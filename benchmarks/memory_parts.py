"""Where a process's resident memory is: one sample of each allocator's own figures.

A Python process running arroyo-lite has (at least) four allocators, each holding pages the
others cannot see, so one RSS figure cannot say which grows:

* **glibc malloc** (``mallinfo2``): C and C++ code's ``malloc``/``new``, DuckDB's catalog,
  plans and other C++ objects included, and Python objects larger than 512 bytes. ``in
  use`` is what is handed out; ``held`` is what its arenas took from the system
  (``arena + hblkhd``), freed chunks inside them included (fragmentation, or pages not
  trimmed yet); ``arenas`` counts its arenas (a thread that allocates gets one of its own,
  up to 8 per core).
* **DuckDB's jemalloc** (``duckdb_je_mallctl``, exported by the ``_duckdb`` module; its
  own prefixed copy, not the process's malloc): DuckDB's ``Allocator`` (table data, hash
  tables, vectors of query results). ``allocated`` is in use, ``resident`` the pages it
  holds.
* **Arrow's default pool** (mimalloc, jemalloc or the system one,
  ``ARROW_DEFAULT_MEMORY_POOL``): ``pa.total_allocated_bytes()`` is what is in use.
* **pymalloc** (Python objects up to 512 bytes, in 1 MiB arenas mapped directly):
  ``sys.getallocatedblocks()`` counts its live blocks (not bytes).

:func:`sample` returns them all (MB, or counts), with RSS and its anonymous part
(``/proc/self/smaps_rollup``). Linux only; a figure that cannot be read is ``nan``.
"""

from __future__ import annotations

import ctypes
import math
import re
import sys
from typing import Any

import pyarrow as pa

_MB = 1e6


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                  "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def _jemalloc() -> Any:
    """DuckDB's ``duckdb_je_mallctl``, or ``None``."""
    try:
        import _duckdb  # type: ignore[import-not-found]

        fn = ctypes.CDLL(_duckdb.__file__).duckdb_je_mallctl
    except (ImportError, OSError, AttributeError):
        return None
    fn.argtypes = [
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.c_void_p,
        ctypes.c_size_t,
    ]
    fn.restype = ctypes.c_int
    return fn


_MALLCTL = _jemalloc()


def glibc() -> dict[str, float]:
    """glibc malloc: ``in use``, ``held`` (from the system), ``free`` (held, not in use) and
    ``mmap`` (the part of held and in use that is chunks mapped on their own, above the mmap
    threshold), MB, and ``arenas``."""
    nan = {"in_use": math.nan, "held": math.nan, "free": math.nan, "mmap": math.nan,
           "arenas": math.nan}  # fmt: skip
    mallinfo2 = getattr(_LIBC, "mallinfo2", None) if _LIBC is not None else None
    if mallinfo2 is None:
        return nan
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {
        "in_use": (info.uordblks + info.hblkhd) / _MB,
        "held": (info.arena + info.hblkhd) / _MB,
        "free": info.fordblks / _MB,
        "mmap": info.hblkhd / _MB,
        "arenas": float(_arena_count()),
    }


def _arena_count() -> int:
    """How many arenas glibc has (``malloc_info``'s ``<heap nr=...>`` elements)."""
    text = malloc_info_xml()
    return len(re.findall(r"<heap nr=", text)) if text is not None else -1


_HEAP = re.compile(r'<heap nr="(\d+)">(.*?)</heap>', re.S)
_TOTAL = re.compile(r'<total type="(fast|rest)" count="(\d+)" size="(\d+)"/>')
_SYSTEM = re.compile(r'<system type="current" size="(\d+)"/>')


def arenas() -> list[dict[str, float]]:
    """Each glibc arena's figures from ``malloc_info``: ``nr``, ``held`` (its heaps' system
    memory), ``free`` (its free chunks, fast bins and the rest, the top chunk included),
    ``chunks`` (how many free chunks), MB; the main arena is ``nr`` 0. Empty without glibc."""
    text = malloc_info_xml()
    if text is None:
        return []
    out = []
    for nr, body in _HEAP.findall(text):
        totals = _TOTAL.findall(body)
        system = _SYSTEM.search(body)
        out.append({
            "nr": float(nr),
            "held": int(system.group(1)) / _MB if system else math.nan,
            "free": sum(int(size) for _, _, size in totals) / _MB,
            "chunks": float(sum(int(count) for _, count, _ in totals)),
        })  # fmt: skip
    return out


def malloc_info_xml() -> str | None:
    """glibc's ``malloc_info(0)`` report (XML), or ``None`` without glibc."""
    if _LIBC is None:
        return None
    libc = _LIBC
    libc.open_memstream.restype = ctypes.c_void_p
    libc.open_memstream.argtypes = [
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.POINTER(ctypes.c_size_t),
    ]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.free.argtypes = [ctypes.c_void_p]
    buf = ctypes.c_char_p()
    size = ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    if not stream:
        return None
    try:
        libc.malloc_info(0, stream)
    finally:
        libc.fclose(stream)
    text = ctypes.string_at(buf, size.value).decode() if buf else ""
    libc.free(buf)
    return text


def jemalloc() -> dict[str, float]:
    """DuckDB's jemalloc: ``allocated`` (in use) and ``resident`` (pages it holds), MB."""
    if _MALLCTL is None:
        return {"allocated": math.nan, "resident": math.nan}
    epoch = ctypes.c_uint64(1)
    length = ctypes.c_size_t(ctypes.sizeof(epoch))
    _MALLCTL(b"epoch", ctypes.byref(epoch), ctypes.byref(length), ctypes.byref(epoch), length)
    out: dict[str, float] = {}
    for name in ("allocated", "resident"):
        value = ctypes.c_size_t(0)
        length = ctypes.c_size_t(ctypes.sizeof(value))
        rc = _MALLCTL(f"stats.{name}".encode(), ctypes.byref(value), ctypes.byref(length), None, 0)
        out[name] = value.value / _MB if rc == 0 else math.nan
    return out


def smaps_rollup() -> dict[str, float]:
    """``Rss`` and ``Anonymous`` of ``/proc/self/smaps_rollup``, MB."""
    out = {"rss": math.nan, "anon": math.nan}
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Anonymous"):
                    out["rss" if key == "Rss" else "anon"] = int(rest.split()[0]) * 1024 / _MB
    except OSError:
        pass
    return out


def sample() -> dict[str, float]:
    """Every figure at once (see the module docstring), flattened: ``rss``, ``anon``,
    ``glibc_in_use``, ``glibc_held``, ``glibc_free``, ``glibc_mmap``, ``glibc_arenas``,
    ``je_allocated``, ``je_resident``, ``arrow`` (MB) and ``py_blocks`` (count)."""
    out = smaps_rollup()
    out.update({f"glibc_{k}": v for k, v in glibc().items()})
    out.update({f"je_{k}": v for k, v in jemalloc().items()})
    out["arrow"] = pa.total_allocated_bytes() / _MB
    out["py_blocks"] = float(sys.getallocatedblocks())
    return out


#: jemalloc's ``MALLCTL_ARENAS_ALL``: ``arena.<this>.purge`` purges every arena.
_ARENAS_ALL = 4096


def purge_jemalloc() -> bool:
    """DuckDB's jemalloc gives back the freed pages it keeps for its decay, in every arena
    (``arena.<all>.purge``; diagnosis: its resident memory then follows what it has
    allocated, not the moment a sample falls in the decay)."""
    if _MALLCTL is None:
        return False
    return _MALLCTL(f"arena.{_ARENAS_ALL}.purge".encode(), None, None, None, 0) == 0


def trim() -> bool:
    """``malloc_trim(0)``: glibc gives back the free pages of every arena (diagnosis)."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))
