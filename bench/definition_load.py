"""Start-up cost of a large instance (issue 2, item 8): 200 generated entities of 25 fields.

Measures, in fresh processes: loading and checking the definitions, then building the app
(tables, validators, query builders, routes; SQL is compiled lazily per statement), and the
resident memory of a serving process after it has answered requests on every entity.

Run: ``.venv/bin/python -m bench.definition_load``
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._auth import bearer, bench_token

REPO = Path(__file__).resolve().parent.parent
ENTITIES = 200
FIELDS = 25
PORT = 8766
TYPES = (
    "string",
    "integer",
    "decimal",
    "date",
    "boolean",
    "text",
    "email",
    "datetime",
    "phone",
    "url",
    "json",
)

MEASURE = """
import json, re, sys, time
started = time.perf_counter()
import runtime.app
imported = time.perf_counter()
from runtime.settings import Settings
settings = Settings.load()
project = runtime.app.load_definitions(settings)
loaded = time.perf_counter()
app = runtime.app.build_app(settings, project)
built = time.perf_counter()
rss = int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported,
                  "build_s": built - loaded, "rss_kib": rss,
                  "entities": len(project.entities)}))
"""


def write_pack(root: Path) -> None:
    rng = random.Random(7)
    pack = root / "packs" / "generated"
    (pack / "entities").mkdir(parents=True)
    (pack / "module.yaml").write_text('name: generated\nversion: "1.0.0"\n')
    for e in range(ENTITIES):
        lines = [f"label: Entity {e}", "title: f00", "fields:"]
        for f in range(FIELDS):
            name = f"f{f:02d}"
            if f == 0:
                lines.append(f"  {name}: {{type: string, required: true, max_length: 120}}")
            elif f == 1 and e > 0:
                lines.append(
                    f"  {name}: {{type: reference, to: e{rng.randrange(e):03d}, "
                    "on_delete: set_null}"
                )
            elif f == 2:
                lines.append(
                    f"  {name}: {{type: enum, values: [new, open, won, lost], default: new}}"
                )
            else:
                kind = TYPES[(e + f) % len(TYPES)]
                extra = {
                    "string": ", max_length: 80",
                    "integer": ", min: 0",
                    "decimal": ", precision: 14, scale: 2",
                }.get(kind, "")
                lines.append(f"  {name}: {{type: {kind}{extra}}}")
        lines.append("indexes: [[f02, f00]]")
        (pack / "entities" / f"e{e:03d}.yaml").write_text("\n".join(lines) + "\n")
    (root / "tessera.yaml").write_text(
        f"database_url: sqlite:///{root / 'bench.db'}\nmodules: [generated]\n"
        f"module_paths: [{root / 'packs'}]\n"
    )


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_pack(root)
        env = {**os.environ, "PYTHONPATH": str(REPO), "TESSERA_CONFIG": str(root / "tessera.yaml")}
        runs = []
        for _ in range(3):
            output = subprocess.run(
                [sys.executable, "-c", MEASURE],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            runs.append(json.loads(output))
        subprocess.run(
            [sys.executable, "-m", "cli.main", "migrate"],
            env=env,
            cwd=root,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        token = bench_token(root, env)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "runtime.app:create_app",
                "--factory",
                "--port",
                str(PORT),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=REPO,
        )
        try:
            started = time.monotonic()
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{PORT}/healthz").raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() - started > 60:
                        raise
                    time.sleep(0.1)
            ready_s = time.monotonic() - started
            idle_rss = _rss_kib(server.pid)
            base = f"http://127.0.0.1:{PORT}"
            with httpx.Client(base_url=base, headers=bearer(token)) as client:
                for e in range(ENTITIES):
                    url = f"/api/v1/generated/e{e:03d}"
                    client.post(url, json={"f00": f"record {e}"}).raise_for_status()
                    client.get(url, params={"sort": "-f00", "f02": "new"}).raise_for_status()
                    client.get(f"{url}/1").raise_for_status()
            busy_rss = _rss_kib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=15)
    best = min(runs, key=lambda r: r["load_s"] + r["build_s"])
    print(f"{ENTITIES} entities x {FIELDS} fields (best of 3 fresh processes)\n")
    print("| measure | value | target |")
    print("|---|---:|---:|")
    print(f"| definition load | {best['load_s']:.2f} s | |")
    print(f"| app build | {best['build_s']:.2f} s | |")
    print(f"| load + build | {best['load_s'] + best['build_s']:.2f} s | < 2 s |")
    print(f"| Python imports before that | {best['import_s']:.2f} s | |")
    print(f"| RSS after build (in the measuring process) | {best['rss_kib'] / 1024:.0f} MiB | |")
    print(f"| server start to first /healthz answer | {ready_s:.2f} s | |")
    print(f"| server RSS, idle | {idle_rss / 1024:.0f} MiB | |")
    print(f"| server RSS after 600 requests on all 200 entities | {busy_rss / 1024:.0f} MiB | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
