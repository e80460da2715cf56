#!/usr/bin/env python3
"""Gives the demo tenant entities of every type before scripts/schemathesis.sh fuzzes it.

    schemathesis-seed.py BASE_URL TENANT PACKAGE_DIR SWITCHYARD_BIN

The demo's sample data has customers, products, warehouses, … but no orders, trips, payments
or adjustments, and a fuzzer's random data rarely makes one (their references must name real
rows, their guards pass). So the list pages it reads have nothing to link to. This replays the
package's own test scenarios (PACKAGE_DIR/tests/*.yaml: `given` rows, `create`, `transition` and
`edit` steps, each as its step's user, with a token from `switchyard token`) against the running
server, through the public API: afterwards every type has entities, in several states. A step
that fails ends its scenario (what it made so far stays); nothing here is checked: the package
tests do that. Needs PyYAML (the schemathesis venv has it).
"""

import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import yaml


class Seeder:
    def __init__(self, base, tenant, binary):
        self.base = f"{base}/api/v1/t/{tenant}"
        self.tenant = tenant
        self.binary = binary
        self.tokens = {}
        admin = self.token("admin@chemichemi.test")
        me = self.call("GET", "/api/v1/auth/me", admin, None, absolute=base)
        # Sample rows' ids are `uuid5(tenant id, key)` (tenants::apply::sample_id).
        self.tenant_id = uuid.UUID(me["tenant_id"])
        self.admin = admin

    def token(self, email):
        if email not in self.tokens:
            out = subprocess.run(
                [self.binary, "token", "--tenant", self.tenant, "--user", email, "--ttl", "2h"],
                capture_output=True, text=True, check=True,
            )
            self.tokens[email] = out.stdout.strip().splitlines()[-1]
        return self.tokens[email]

    def call(self, method, path, token, body, absolute=None):
        url = f"{absolute}{path}" if absolute else f"{self.base}{path}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read()
            return json.loads(text) if text else None

    def resolve(self, value, keys):
        """`"@key"`: an entity a step made, else a sample row's id."""
        if isinstance(value, str) and value.startswith("@"):
            key = value[1:]
            return keys.get(key) or str(uuid.uuid5(self.tenant_id, key))
        if isinstance(value, list):
            return [self.resolve(v, keys) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, keys) for k, v in value.items()}
        return value

    def scenario(self, scenario):
        keys, types = {}, {}
        made = 0
        for row in scenario.get("given") or []:
            data = self.resolve(row.get("data", {}), keys)
            created = self.call("POST", f"/entities/{row['type']}", self.admin, {"data": data})
            keys[row["key"]] = created["id"]
            types[row["key"]] = row["type"]
            made += 1
        for step in scenario.get("steps") or []:
            try:
                made += self.step(step, keys, types)
            except urllib.error.HTTPError:
                # A step the scenario expects to be refused is refused; any other ends it.
                if "error" not in (step.get("expect") or {}):
                    raise
        return made

    def step(self, step, keys, types):
        token = self.token(step["as"]) if "as" in step else self.admin
        if "create" in step:
            body = {"data": self.resolve(step.get("data", {}), keys)}
            if "input" in step:
                body["input"] = self.resolve(step["input"], keys)
            created = self.call("POST", f"/entities/{step['create']}", token, body)
            if "key" in step:
                keys[step["key"]] = created["id"]
                types[step["key"]] = step["create"]
            return 1
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        on = step.get("on", step.get(True)) if "transition" in step else step.get("edit")
        if on is None:
            return 0  # `check`, `advance`: nothing to make
        ty = types.get(on.lstrip("@"))
        if ty is None:
            return 0  # a sample row: its type is not in the step
        target = self.resolve(on, keys)
        if "transition" in step:
            body = {"input": self.resolve(step.get("input", {}), keys)}
            self.call("POST", f"/entities/{ty}/{target}/transitions/{step['transition']}", token, body)
        else:
            self.call("PATCH", f"/entities/{ty}/{target}", token, {"data": self.resolve(step.get("data", {}), keys)})
        return 1


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    base, tenant, package, binary = sys.argv[1:]
    seeder = Seeder(base, tenant, binary)
    done = failed = 0
    for path in sorted(Path(package, "tests").glob("*.yaml")):
        for scenario in (yaml.safe_load(path.read_text()) or {}).get("scenarios") or []:
            try:
                done += seeder.scenario(scenario)
            except (urllib.error.HTTPError, KeyError, TypeError, subprocess.CalledProcessError):
                failed += 1
    print(f"seeded: {done} steps replayed; {failed} scenarios stopped at a refused step")


if __name__ == "__main__":
    main()
