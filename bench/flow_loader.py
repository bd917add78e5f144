"""Benchmark: how much CPU the flow loader spends refusing hostile or broken flow files.

    .venv/bin/python -m bench.flow_loader [--rounds 5]

The loader's limits (``ivr.flows.loader``: at most 1 MB, nesting depth 20, 500 nodes,
40,000 YAML values, 200 problems; no anchors, aliases, tags or merge keys) exist so that a
file uploaded by staff cannot make the service spend seconds, or gigabytes, parsing it. The
tests (tests/unit/test_flow_loader.py) check that each such file is refused with a clear
message; this prints what refusing it costs: the process's CPU time (not what else the
machine runs) per file, the fastest and the slowest of ``--rounds`` rounds, with libyaml's
parser (the default when PyYAML has it) and with the pure-Python one. A good-sized valid
flow (examples/flows/housing-line.yaml) is loaded too, for comparison.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ivr.flows import loader
from ivr.flows.loader import FlowError, parse_flow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flows" / "housing-line.yaml"


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        this, previous = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def hostile() -> dict[str, str]:
    """Files the loader must refuse, each aimed at one limit or one YAML feature."""
    return {
        "billion laughs (anchors)": billion_laughs(),
        "alias": "a: 1\nb: *x\n",
        "python tag": "id: !!python/object:os.system x\n",
        "deep flow nesting (50)": "a: " + "[" * 50 + "]" * 50 + "\n",
        "deep block nesting (50)": "".join("  " * i + f"k{i}:\n" for i in range(50))
        + "  " * 50
        + "v\n",
        "501 nodes": "nodes:\n" + "".join(f"  n{i}: {{kind: end}}\n" for i in range(501)),
        "200,000 values": "a: [" + ",".join(["1"] * 200_000) + "]\n",
        "15,000 unknown fields": "".join(f"field{i}: {i}\n" for i in range(15_000)),
        "over 1 MB": "# " + "x" * 2_000_000 + "\n",
        "NUL character": "id: a\x00\n",
    }


@contextmanager
def pure_python() -> Iterator[None]:
    """The loader without libyaml (its SafeLoader subclass), as on a PyYAML built without it."""
    saved = loader._LOADER
    loader._LOADER = loader._SafeFlowLoader
    try:
        yield
    finally:
        loader._LOADER = saved


def cpu_seconds(parse: Callable[[], object]) -> float:
    started = time.process_time()
    with suppress(FlowError):
        parse()
    return time.process_time() - started


def measure(text: str, rounds: int, expect_error: bool) -> tuple[float, float]:
    if expect_error:
        try:
            parse_flow(text, "bench.yaml")
        except FlowError:
            pass
        else:
            raise SystemExit("a hostile file was accepted: the benchmark's inputs are stale")
    times = [cpu_seconds(lambda: parse_flow(text, "bench.yaml")) for _ in range(rounds)]
    return min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    cases = hostile()
    valid = {f"valid: {EXAMPLE.name}": EXAMPLE.read_text(encoding="utf-8")}
    libyaml = loader._LOADER is not loader._SafeFlowLoader
    print(f"CPU milliseconds to refuse (or load) each file; fastest / slowest of {args.rounds}")
    print(f"{'file':<28} {'size':>10}  {'libyaml' if libyaml else '(no libyaml)':>17}  "
          f"{'pure Python':>17}")  # fmt: skip
    worst = 0.0
    for name, text in {**cases, **valid}.items():
        expect_error = name in cases
        fast = measure(text, args.rounds, expect_error) if libyaml else None
        with pure_python():
            slow = measure(text, args.rounds, expect_error)
        worst = max(worst, slow[1], fast[1] if fast else 0.0)
        shown = f"{fast[0] * 1e3:7.1f} / {fast[1] * 1e3:7.1f}" if fast else f"{'-':>17}"
        print(f"{name:<28} {len(text.encode()):>10,}  {shown}  "
              f"{slow[0] * 1e3:7.1f} / {slow[1] * 1e3:7.1f}")  # fmt: skip
    print(f"slowest file: {worst * 1e3:.1f} ms of CPU")


if __name__ == "__main__":
    main()
