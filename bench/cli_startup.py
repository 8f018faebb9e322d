"""How long the ``tessera`` command takes to answer (issue 15, item 7).

Times, in fresh processes, ``tessera --help``, ``tessera validate`` of the demo instance
(``tessera init --modules contacts``, as ``make run`` makes it) and ``tessera validate`` of
an instance with a broken definition (the path that loads jsonschema for positioned errors).
With ``--before REV`` the same commands of that revision run in the same run, from a
temporary ``git worktree`` (the checkout itself is not touched), alternating with this
checkout's so that the machine's drift spreads over both. Besides the wall-clock time it
prints the CPU time (user + system) of the process, which other load on the machine inflates
much less.

Run: ``.venv/bin/python -m bench.cli_startup [--before REV] [--runs 7]``
Targets: ``--help`` under 0.3 s, ``validate`` of the demo under 1 s (medians).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"--help": 0.3, "validate (demo)": 1.0}
BROKEN_ENTITY = """\
label: Thing
fields:
  name: {type: string, required: true, lenght: 10}
"""


def tessera(checkout: Path, *args: str, cwd: Path) -> tuple[float, float]:
    """Seconds one ``tessera`` process of ``checkout`` takes, start to exit, and its CPU
    seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    # PYTHONPATH wins over the editable install's finder, which points at this checkout
    env["PYTHONPATH"] = str(checkout)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def instances(root: Path) -> tuple[Path, Path]:
    """The demo instance, and one whose pack has an entity with a misspelt key."""
    demo = root / "demo"
    subprocess.run(
        [sys.executable, "-m", "cli.main", "init", str(demo), "--modules", "contacts"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        check=True,
    )
    broken = root / "broken"
    entities = broken / "packs" / "things" / "entities"
    entities.mkdir(parents=True)
    (broken / "packs" / "things" / "module.yaml").write_text(
        "name: things\nversion: 1.0.0\nlabel: Things\n", encoding="utf-8"
    )
    (entities / "thing.yaml").write_text(BROKEN_ENTITY, encoding="utf-8")
    (broken / "tessera.yaml").write_text(
        "database_url: sqlite:///x.db\nmodules: [things]\nmodule_paths: [./packs]\n",
        encoding="utf-8",
    )
    return demo, broken


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tessera-before-"))
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(path), revision],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False
        )


def measure(checkouts: dict[str, Path], runs: int) -> dict[str, dict[str, tuple[float, float]]]:
    """Median (wall, CPU) seconds by command and checkout."""
    with tempfile.TemporaryDirectory(prefix="tessera-cli-") as tmp:
        demo, broken = instances(Path(tmp))
        commands = {
            "--help": (("--help",), demo),
            "validate (demo)": (("validate",), demo),
            "validate (broken)": (("validate",), broken),
        }
        times: dict[str, dict[str, list[tuple[float, float]]]] = {
            name: {label: [] for label in checkouts} for name in commands
        }
        for checkout in checkouts.values():  # warm the file cache and .pyc files
            for args, cwd in commands.values():
                tessera(checkout, *args, cwd=cwd)
        for _ in range(runs):
            for name, (args, cwd) in commands.items():
                for label, checkout in checkouts.items():
                    times[name][label].append(tessera(checkout, *args, cwd=cwd))
    return {
        name: {
            label: (
                statistics.median(wall for wall, _ in values),
                statistics.median(cpu for _, cpu in values),
            )
            for label, values in by_label.items()
        }
        for name, by_label in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="also time this git revision")
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    with contextlib.ExitStack() as stack:
        checkouts = {}
        if options.before:
            checkouts["before"] = stack.enter_context(worktree(options.before))
        checkouts["now"] = REPO
        results = measure(checkouts, options.runs)
    labels = list(checkouts)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"median of {options.runs} runs, seconds; {os.cpu_count()} CPUs, load {load}")
    header = f"{'command':<20}" + "".join(
        f"{label + ' wall':>12}{label + ' cpu':>12}" for label in labels
    )
    print(header + f"{'target':>10}{'met':>6}")
    for name, by_label in results.items():
        target = TARGETS.get(name)
        cells = "".join(
            f"{by_label[label][0]:>12.3f}{by_label[label][1]:>12.3f}" for label in labels
        )
        verdict = "" if target is None else ("yes" if by_label["now"][0] < target else "NO")
        target_cell = "" if target is None else f"< {target}"
        print(f"{name:<20}{cells}{target_cell:>10}{verdict:>6}")


if __name__ == "__main__":
    main()
