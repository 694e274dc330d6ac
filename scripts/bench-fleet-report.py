#!/usr/bin/env python3
"""Per-stage figures of a bench-fleet run (scripts/bench-fleet.sh).

Usage: bench-fleet-report.py CAMPAIGN_DIR [PEER_DIR]
Each directory holds one `summary.K.json` and one `timeline.K.jsonl` per ota-fleet process
(shard K); shard 0's timeline also samples the broker and (for the campaign) the platform.
Stage boundaries come from the summaries (the fleet's monotonic clock, shared by the
processes); counters and process figures from the timelines (every 500 ms). One line per
stage: wall time, MQTT messages/s the fleet sent and received, CPU seconds, CPU % and peak RSS
of the broker, the platform and the fleet (all its processes).
"""
import glob
import json
import os
import sys


def load(directory):
    shards = []
    for path in sorted(glob.glob(os.path.join(directory, "summary.*.json"))):
        k = path.split(".")[-2]
        with open(path) as f:
            summary = json.load(f)
        with open(os.path.join(directory, f"timeline.{k}.jsonl")) as f:
            timeline = [json.loads(line) for line in f if line.strip()]
        shards.append((summary, timeline))
    return shards


def at(samples, t, key, proc=None):
    """A counter at time t, interpolated between the samples that have it."""
    def value(s):
        if proc is None:
            return s.get(key)
        return s.get("procs", {}).get(proc, {}).get(key)

    points = [(s["t_ms"], value(s)) for s in samples if value(s) is not None]
    if not points:
        return None
    if t <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def peak(samples, a, b, proc):
    inside = [s["procs"][proc]["rss_mb"] for s in samples
              if a <= s["t_ms"] <= b and proc in s.get("procs", {})]
    if not inside:  # a stage shorter than the sampling period: the nearest sample
        near = min(samples, key=lambda s: abs(s["t_ms"] - b))
        inside = [near.get("procs", {}).get(proc, {}).get("rss_mb", 0)]
    return max(inside)


def stage_line(name, shards, a, b, extra=""):
    wall = max((b - a) / 1000.0, 1e-3)
    timelines = [t for _, t in shards]
    msgs = sum((at(t, b, k) or 0) - (at(t, a, k) or 0)
               for t in timelines for k in ("published", "received"))
    parts = [f"stage={name}", f"wall_s={wall:.1f}", f"msgs_per_s={msgs / wall:.0f}"]
    for proc in ("broker", "platform", "fleet"):
        cpu, rss, seen = 0.0, 0.0, False
        for t in timelines:
            c0, c1 = at(t, a, "cpu_s", proc), at(t, b, "cpu_s", proc)
            if c0 is None or c1 is None:
                continue
            seen = True
            cpu += c1 - c0
            rss += peak(t, a, b, proc)
        if seen:
            parts += [f"{proc}_cpu_s={cpu:.1f}", f"{proc}_cpu_pct={100 * cpu / wall:.0f}",
                      f"{proc}_peak_rss_mb={rss:.0f}"]
    print("bench-fleet: " + " ".join(parts) + extra)


def window(shards, start_key, a_of, b_of):
    """The union over the processes of [clock[start_key] + a, clock[start_key] + b] (ms)."""
    lo, hi = None, None
    for summary, _ in shards:
        base = summary["clock"].get(start_key)
        a, b = a_of(summary), b_of(summary)
        if base is None or a is None or b is None or a < 0 or b < 0:
            continue
        lo = base + a * 1000 if lo is None else min(lo, base + a * 1000)
        hi = base + b * 1000 if hi is None else max(hi, base + b * 1000)
    return lo, hi


def main():
    shards = load(sys.argv[1])
    if not shards:
        sys.exit("bench-fleet-report: no summaries in " + sys.argv[1])
    online = sum(s["boards"] - s["result"]["offline"] for s, _ in shards)
    st = lambda key: (lambda s: s["stages"][key])
    a, b = window(shards, "start_ms", lambda s: 0, st("connect_storm_s"))
    if a is not None:
        stage_line("connect_storm", shards, a, b, f" logins_per_s={online / ((b - a) / 1000):.0f}")
    for name, first, last in [
        ("version_round", lambda s: 0, st("version_round_s")),
        ("command_fanout", lambda s: 0, st("command_fanout_s")),
        ("downloads", lambda s: s["stages"]["downloads_s"]["first_start"],
         lambda s: s["stages"]["downloads_s"]["last_end"]),
        ("reports", lambda s: s["stages"]["reports_s"]["first"],
         lambda s: s["stages"]["reports_s"]["last"]),
        ("completion", lambda s: 0, lambda s: s["stages"]["completion_s"]),
    ]:
        a, b = window(shards, "task_ms", first, last)
        if a is None or b <= a:
            continue
        extra = ""
        if name == "downloads":
            wall = (b - a) / 1000.0
            req = sum((at(t, b, "http_requests") or 0) - (at(t, a, "http_requests") or 0)
                      for _, t in shards)
            byt = sum((at(t, b, "bytes") or 0) - (at(t, a, "bytes") or 0) for _, t in shards)
            extra = f" requests_per_s={req / wall:.0f} mb_per_s={byt / wall / 1e6:.1f}"
        stage_line(name, shards, a, b, extra)
    a, _ = window(shards, "start_ms", lambda s: 0, lambda s: 0)
    _, b = window(shards, "task_ms", lambda s: 0, st("completion_s"))
    if a is not None and b is not None:
        stage_line("whole_campaign", shards, a, b)

    if len(sys.argv) > 2:
        peer = load(sys.argv[2])
        peer_online = sum(s["boards"] - s["mix"]["offline"] for s, _ in peer)
        a, b = window(peer, "start_ms", lambda s: 0, lambda s: s.get("connect_only_storm_s"))
        if peer and a is not None and all(s.get("connect_only_storm_s") is not None
                                          for s, _ in peer):
            stage_line("connect_storm_peer_password_file", peer, a, b,
                       f" logins_per_s={peer_online / ((b - a) / 1000):.0f}")
        else:
            print("bench-fleet: stage=connect_storm_peer_password_file did not complete")


if __name__ == "__main__":
    main()
