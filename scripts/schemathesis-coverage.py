#!/usr/bin/env python3
"""How deep a schemathesis run reached: per operation of the OpenAPI document, the statuses
of the answers recorded in the run's HAR file (`schemathesis run --report har`).

    scripts/schemathesis-coverage.py openapi.json run.har [more.har …] [--list]

Several HAR files (the stateless and the stateful runs) count together. Prints, for the
operations that were called: how many got at least one 2xx, how many answered
404 to most of their requests (the fuzzer's ids name nothing), and with `--list` each
operation's counts. Only the standard library: it runs with any python3.
"""

import json
import sys
from collections import Counter, defaultdict
from urllib.parse import urlparse

METHODS = ("get", "post", "put", "patch", "delete")


def templates(doc):
    """(method, segments, operationId) of every operation, literal segments counted."""
    out = []
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            out.append((method.upper(), path.strip("/").split("/"), op.get("operationId", f"{method} {path}")))
    return out


def match(ops, method, path):
    """The operation of a request: same method, same number of segments, every literal
    segment equal; the one with the most literal segments wins (`export.csv` over `{id}`)."""
    segments = path.strip("/").split("/")
    best, best_literals = None, -1
    for m, tpl, op_id in ops:
        if m != method or len(tpl) != len(segments):
            continue
        literals = 0
        for t, s in zip(tpl, segments):
            if t.startswith("{") and t.endswith("}"):
                continue
            if t != s:
                break
            literals += 1
        else:
            if literals > best_literals:
                best, best_literals = op_id, literals
    return best


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) < 2:
        sys.exit(__doc__)
    with open(args[0]) as f:
        doc = json.load(f)
    entries = []
    for name in args[1:]:
        with open(name) as f:
            entries.extend(json.load(f, strict=False)["log"]["entries"])
    ops = templates(doc)
    statuses = defaultdict(Counter)
    unmatched = Counter()
    for entry in entries:
        request = entry["request"]
        path = urlparse(request["url"]).path
        op_id = match(ops, request["method"], path)
        status = entry["response"]["status"]
        if op_id is None:
            unmatched[(request["method"], path)] += 1
            continue
        statuses[op_id][status] += 1

    def ok(c):
        return any(200 <= s < 300 for s in c)

    def mostly_404(c):
        return c[404] * 2 > sum(c.values())

    called = len(statuses)
    with_2xx = sum(1 for c in statuses.values() if ok(c))
    m404 = sum(1 for c in statuses.values() if mostly_404(c))
    server_errors = sum(c[s] for c in statuses.values() for s in c if s >= 500)
    print(f"requests: {sum(sum(c.values()) for c in statuses.values())} ({sum(unmatched.values())} of no operation)")
    print(f"operations: {len(ops)} documented, {called} called")
    print(f"  with a 2xx answer:           {with_2xx}")
    print(f"  mostly 404:                  {m404}")
    print(f"5xx answers: {server_errors}")
    never = sorted(op for _, _, op in ops if op not in statuses)
    if never:
        print(f"never called: {', '.join(never)}")
    if "--list" in sys.argv:
        for op_id in sorted(statuses):
            c = statuses[op_id]
            flags = ("2xx " if ok(c) else "    ") + ("404! " if mostly_404(c) else "     ")
            counts = " ".join(f"{s}:{n}" for s, n in sorted(c.items()))
            print(f"{flags}{op_id}: {counts}")


if __name__ == "__main__":
    main()
