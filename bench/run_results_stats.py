#!/usr/bin/env python3
"""run_results_stats.py - numbers from one dbt/sluice target/run_results.json (+ manifest.json).

Usage:  run_results_stats.py RUN_RESULTS.json [MANIFEST.json]

Prints one line, space-separated:
    nodes ok sum_exec busy critical_path
  nodes          results in the file
  ok             results with status success/pass
  sum_exec       sum of execution_time over the results, seconds
  busy           length of the union of the results' `execute` intervals (timing[] entries named
                 "execute", started_at..completed_at), seconds: wall-clock time during which at
                 least one node was executing. dbt also records a `compile` interval per node;
                 it is tool work, so it is left out.
  critical_path  longest chain of execution_time through depends_on in MANIFEST (only nodes in
                 this run count), seconds: the wall time with unlimited threads and no tool
                 overhead; "n/a" without a manifest.
Standard library only; works on dbt-core's and sluice's files alike.
"""
import datetime
import json
import sys


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main():
    rr = json.load(open(sys.argv[1]))["results"]
    ok = sum(1 for r in rr if r.get("status") in ("success", "pass"))
    sum_exec = sum(float(r.get("execution_time") or 0) for r in rr)
    spans = []
    for r in rr:
        for t in r.get("timing") or []:
            if t.get("name") == "execute" and t.get("started_at") and t.get("completed_at"):
                spans.append((ts(t["started_at"]), ts(t["completed_at"])))
    spans.sort()
    busy, cur = 0.0, None
    for a, b in spans:
        if cur is None or a > cur[1]:
            if cur:
                busy += cur[1] - cur[0]
            cur = [a, b]
        else:
            cur[1] = max(cur[1], b)
    if cur:
        busy += cur[1] - cur[0]

    crit = "n/a"
    if len(sys.argv) > 2:
        nodes = json.load(open(sys.argv[2])).get("nodes", {})
        cost = {r["unique_id"]: float(r.get("execution_time") or 0) for r in rr}
        memo = {}

        def longest(uid):  # iterative DFS: projects are deep enough to hit the recursion limit
            stack = [uid]
            while stack:
                u = stack[-1]
                parents = [p for p in nodes.get(u, {}).get("depends_on", {}).get("nodes", []) if p in cost]
                todo = [p for p in parents if p not in memo]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                memo[u] = cost[u] + max((memo[p] for p in parents), default=0.0)
            return memo[uid]

        crit = f"{max((longest(u) for u in cost), default=0.0):.3f}"
    print(f"{len(rr)} {ok} {sum_exec:.3f} {busy:.3f} {crit}")


if __name__ == "__main__":
    main()
