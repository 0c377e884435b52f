"""Loopback HTTP load for the benchmarks: closed-loop (``wrk``) and open-loop at a constant rate.

Every request carries a new body: ``prefix + <unique id> + suffix``, so a receiver that
deduplicates sees only new events.

* ``closed_loop`` runs ``wrk`` with one connection per wrk thread. Each thread stops itself
  right after a response once its time is up, so no request is left in flight when wrk
  exits: the server has answered exactly the requests counted here (which lets a caller
  compare answers with what the server stored). The script times each request itself
  (from building it to its answer) so that several runs' latencies can be pooled.
* ``constant_rate`` is open-loop: request *i* is due at ``start + i / rate`` whatever the
  earlier ones are doing, and its latency counts from that due time, so a slow server
  cannot hide its queueing (no coordinated omission). Keep-alive connections are reused,
  and more are opened (up to a cap) when all are busy. It waits for every request to end.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

IDLE_REUSE = 2.0  # seconds a keep-alive connection may sit idle and still be reused (gunicorn keeps 5)


@dataclass(frozen=True)
class LoadResult:
    """What one or more load runs saw."""

    sent: int
    ok: int  # 200 answers
    accepted: int  # 200 answers whose body says "accepted"
    failed: int  # other statuses, socket errors and timeouts
    seconds: float
    latencies: tuple[float, ...] = field(repr=False)  # milliseconds, ascending

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, pct: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        if not self.latencies:
            return 0.0
        rank = max(1, math.ceil(len(self.latencies) * pct / 100))
        return self.latencies[rank - 1]

    @property
    def p50_ms(self) -> float:
        return self.percentile(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile(99)

    @property
    def max_ms(self) -> float:
        return self.latencies[-1] if self.latencies else 0.0


def merge(results: list[LoadResult]) -> LoadResult:
    """Several runs as one: counts and seconds added, latencies pooled."""
    return LoadResult(
        sent=sum(r.sent for r in results),
        ok=sum(r.ok for r in results),
        accepted=sum(r.accepted for r in results),
        failed=sum(r.failed for r in results),
        seconds=sum(r.seconds for r in results),
        latencies=tuple(sorted(x for r in results for x in r.latencies)),
    )


# -- closed loop: wrk ----------------------------------------------------------------------

_WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local prefix = [==[@PREFIX@]==]
local suffix = [==[@SUFFIX@]==]
local headers = @HEADERS@
local path = "@PATH@"
local latfile = [==[@LATFILE@]==]
local tag, deadline, sent_at = "", 0, 0
local latencies = {}
sent, ok, accepted, failed, started, stopped = 0, 0, 0, 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  tag = args[1] .. "-" .. tid .. "-"
  started = now()
  deadline = started + tonumber(args[2])
end

function request()
  sent = sent + 1
  sent_at = now()
  return wrk.format("POST", path, headers, prefix .. tag .. sent .. suffix)
end

function response(status, hdrs, body)
  local t = now()
  latencies[#latencies + 1] = t - sent_at
  if status == 200 then
    ok = ok + 1
    if string.find(body, '"accepted"', 1, true) then accepted = accepted + 1 end
  else
    failed = failed + 1
  end
  if t >= deadline then
    stopped = t
    local out = io.open(latfile .. "-" .. tid, "w")
    for _, seconds in ipairs(latencies) do out:write(string.format("%.7f\n", seconds)) end
    out:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local s, o, a, f, first, last, unstopped = 0, 0, 0, 0, math.huge, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    o = o + thread:get("ok")
    a = a + thread:get("accepted")
    f = f + thread:get("failed")
    first = math.min(first, thread:get("started"))
    local stop = thread:get("stopped")
    if stop == 0 then unstopped = unstopped + 1 else last = math.max(last, stop) end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH-RESULT sent=%d ok=%d accepted=%d failed=%d seconds=%.6f unstopped=%d socket_errors=%d\n",
    s, o, a, f, last - first, unstopped, e.connect + e.read + e.write + e.timeout))
end
"""


def _lua_table(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}"


def closed_loop(
    url: str,
    path: str,
    headers: dict[str, str],
    prefix: str,
    suffix: str,
    *,
    tag: str,
    connections: int,
    seconds: float,
    workdir: Path,
) -> LoadResult:
    """Drive ``url + path`` with ``connections`` back-to-back clients for ``seconds``."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    for text in (prefix, suffix):
        if "]==]" in text or "\n" in text:
            raise ValueError("the body template must be one line without ']==]'")
    script = workdir / f"wrk-{tag}.lua"
    script.write_text(
        _WRK_SCRIPT.replace("@PREFIX@", prefix)
        .replace("@SUFFIX@", suffix)
        .replace("@HEADERS@", _lua_table(headers))
        .replace("@PATH@", path)
        .replace("@LATFILE@", str(workdir / f"latency-{tag}"))
    )
    margin = 2  # seconds wrk runs past the threads' own deadline; they stop themselves before it
    command = [
        wrk,
        f"-t{connections}",
        f"-c{connections}",
        f"-d{math.ceil(seconds) + margin}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        tag,
        str(seconds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + margin + 30, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    fields = dict(item.split("=") for item in line.split()[1:])
    if int(fields["unstopped"]):
        raise RuntimeError(f"{fields['unstopped']} wrk thread(s) did not stop by themselves: requests may be lost")
    latencies = []
    for part in workdir.glob(f"latency-{tag}-*"):
        latencies += [float(x) * 1000 for x in part.read_text().split()]
        part.unlink()
    return LoadResult(
        sent=int(fields["sent"]),
        ok=int(fields["ok"]),
        accepted=int(fields["accepted"]),
        failed=int(fields["failed"]) + int(fields["socket_errors"]),
        seconds=float(fields["seconds"]),
        latencies=tuple(sorted(latencies)),
    )


# -- open loop: constant rate ----------------------------------------------------------------


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class _Pool:
    """Keep-alive connections to one server; the most recently used is reused first."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[_Connection] = []
        self.opened = 0
        self.peak = 0
        self.free = asyncio.Condition()

    async def acquire(self) -> _Connection:
        async with self.free:
            while True:
                while self.idle:
                    conn = self.idle.pop()
                    if time.monotonic() - conn.last_used < IDLE_REUSE:
                        return conn
                    conn.close()
                    self.opened -= 1
                if self.opened < self.limit:
                    self.opened += 1
                    self.peak = max(self.peak, self.opened)
                    break
                await self.free.wait()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            await self.discard()
            raise
        return _Connection(reader, writer)

    async def release(self, conn: _Connection) -> None:
        conn.last_used = time.monotonic()
        async with self.free:
            self.idle.append(conn)
            self.free.notify()

    async def discard(self, conn: _Connection | None = None) -> None:
        if conn is not None:
            conn.close()
        async with self.free:
            self.opened -= 1
            self.free.notify()

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


async def _exchange(conn: _Connection, payload: bytes) -> tuple[int, bytes, bool]:
    """Send one request; return (status, body, keep the connection)."""
    conn.writer.write(payload)
    await conn.writer.drain()
    head = await conn.reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, keep = 0, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    body = await conn.reader.readexactly(length) if length else b""
    return status, body, keep


async def _constant_rate(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    make_body: Callable[[int], bytes],
    rate: float,
    seconds: float,
    max_connections: int,
    drain_seconds: float,
) -> LoadResult:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    pool = _Pool(host, port, max_connections)
    latencies: list[float] = []
    counts = {"ok": 0, "accepted": 0, "failed": 0}

    async def one(index: int, due: float) -> None:
        body = make_body(index)
        payload = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        conn: _Connection | None = None
        try:
            conn = await pool.acquire()
            status, answer, keep = await _exchange(conn, payload)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            counts["failed"] += 1
            if conn is not None:
                await pool.discard(conn)
            return
        latencies.append(time.monotonic() - due)
        if status == 200:
            counts["ok"] += 1
            counts["accepted"] += b'"accepted"' in answer
        else:
            counts["failed"] += 1
        await (pool.release(conn) if keep else pool.discard(conn))

    total = int(rate * seconds)
    start = time.monotonic() + 0.05
    tasks = []
    for index in range(total):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    _, pending = await asyncio.wait(tasks, timeout=drain_seconds)
    for task in pending:
        task.cancel()
    counts["failed"] += len(pending)
    elapsed = time.monotonic() - start
    pool.close()
    return LoadResult(
        sent=total,
        ok=counts["ok"],
        accepted=counts["accepted"],
        failed=counts["failed"],
        seconds=elapsed,
        latencies=tuple(sorted(x * 1000 for x in latencies)),
    )


def constant_rate(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    make_body: Callable[[int], bytes],
    *,
    rate: float,
    seconds: float,
    max_connections: int = 256,
    drain_seconds: float = 10.0,
) -> LoadResult:
    """Send ``rate`` requests a second for ``seconds`` (open loop); wait up to ``drain_seconds``
    for the last answers. ``seconds`` in the result is the send time plus the drain."""
    return asyncio.run(
        _constant_rate(host, port, path, headers, make_body, rate, seconds, max_connections, drain_seconds)
    )
