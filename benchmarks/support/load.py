"""HTTP load with ``wrk`` (Debian's package): requests/s and latency percentiles as JSON.

wrk is C and event-driven: on this 2-core machine it spends a few percent of a core where the
server spends both cores, which :func:`run_wrk` reports (``client_cpu``) so a reader can check that
the load generator is not the bottleneck. Per-request bodies come from a file of lines
``path<TAB>cookie<TAB>body`` (an empty body: a GET), split between wrk's threads, each line sent once: when a thread has
sent all its lines it sends the last one again, which the server answers with an error (so an
under-provisioned run shows up as errors, never as inflated figures).

A bare reference measured against such lines is run ``scripted``: wrk calls the same two Lua
functions per request (``request`` hands over a request made once, ``response`` checks the
status), so both sides of a ratio pay the same client. wrk's plain mode served the same bare view
4-6% faster at one connection than with those calls (4 alternating runs of 3 s, eleventh
session): a difference of the client's, not the server's, which the ratio of a scripted
measurement to a plain one counted against the scripted side.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrkResult", "line_was_sent", "require_wrk", "run_wrk"]

_REPORT = r"""
done = function(summary, latency, requests)
  local bad, sent = 0, {}
  for _, t in ipairs(threads) do
    bad = bad + (t:get("bad") or 0)
    sent[#sent + 1] = tostring(t:get("index") or 0)
  end
  io.write(string.format(
    '\nWRKJSON {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, ' ..
    '"socket_errors": %d, "non_2xx_3xx": %d, "unexpected_status": %d, "sent": [%s]}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, bad, table.concat(sent, ", ")))
end
"""

_THREADS = r"""
threads = {}
local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
"""

_SAME = r"""
-- the URL's GET every time, through the same Lua calls per request as the lines below
local expected, req = tonumber(os.getenv("WRK_EXPECT") or "0"), nil
index = 0
init = function(args)
  req = wrk.format(nil, nil)
  bad = 0
end
request = function()
  index = index + 1
  return req
end
response = function(status, headers, body)
  if expected > 0 and status ~= expected then bad = bad + 1 end
end
"""

_LINES = r"""
-- index is global: done() reads each thread's (how many of its lines it sent)
local lines, expected = {}, tonumber(os.getenv("WRK_EXPECT") or "0")
index = 0
init = function(args)
  local n, i = tonumber(os.getenv("WRK_THREADS")), 0
  for line in io.lines(os.getenv("WRK_LINES")) do
    if i % n == id then
      local path, cookie, body = line:match("([^\t]*)\t([^\t]*)\t(.*)")
      if body == "" then  -- a GET (the path holds its query), as a browser sends it
        lines[#lines + 1] = wrk.format("GET", path, {["Cookie"] = cookie})
      else
        lines[#lines + 1] = wrk.format("POST", path, {
          ["Cookie"] = cookie, ["Content-Type"] = "application/x-www-form-urlencoded",
          ["Accept"] = "application/json"}, body)
      end
    end
    i = i + 1
  end
  bad = 0
end
request = function()
  index = index + 1
  return lines[math.min(index, #lines)]
end
response = function(status, headers, body)
  if expected > 0 and status ~= expected then bad = bad + 1 end
end
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx_3xx: int
    #: responses whose status was not the expected one (per-line runs only)
    unexpected_status: int
    #: per wrk thread, how many of its lines it took (thread ``t`` has lines ``t``, ``t + n``,
    #: ... of ``n`` threads); 0 without lines
    sent: tuple[int, ...]
    #: CPU seconds wrk used, as a share of the run's wall time (1.0 = one core busy)
    client_cpu: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx_3xx + self.unexpected_status


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk not found: apt-get install wrk (Debian's package)")
    return path


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    workdir: Path,
    lines: Path | None = None,
    expect_status: int = 0,
    scripted: bool = False,
) -> WrkResult:
    """``wrk`` against ``url`` (GET), or the POST lines of ``lines`` when given; ``scripted``:
    the GET through the same Lua calls per request as lines are (the module's docstring)."""
    threads = min(connections, 2)
    script = workdir / "wrk.lua"
    body = _LINES if lines else _SAME if scripted else ""
    script.write_text(_THREADS + body + _REPORT)
    env = {"WRK_THREADS": str(threads), "WRK_EXPECT": str(expect_status)}
    if lines:
        env["WRK_LINES"] = str(lines)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [require_wrk(), "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
         "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60, env=env, check=True,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(report.removeprefix("WRKJSON "))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    data["sent"] = tuple(data["sent"])
    return WrkResult(**data, client_cpu=cpu / data["seconds"])


def line_was_sent(result: WrkResult, line: int) -> bool:
    """Whether wrk took line ``line`` (0-based) of its lines file."""
    threads = len(result.sent)
    return line // threads < result.sent[line % threads]
