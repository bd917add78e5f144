"""Every test that needs Asterisk carries the ``pbx`` marker, so ``-m pbx`` / ``-m "not pbx"``
choose truthfully (and the README's count of such tests is the marker's count).

Two checks share the work. tests/conftest.py refuses, at collection, a test that requests a
fixture of the shared Asterisk (``PBX_FIXTURES``, directly or through other fixtures) without
the marker. This file reads the test files (``ast``) for what a fixture list cannot show: an
Asterisk a test or one of its module's fixtures or helpers starts itself (``make_instance``,
``start_or_fail``, ``ServiceThread``, ``Baresip``, a telephony ``Worker``, ``ivr pbx build``,
``ivr demo``, ``ivr telephony``).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PBX_FIXTURES

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"

# Names whose use means a real Asterisk: the shared one's fixtures and the helpers that start
# (or call through) one of their own.
PBX_NAMES = PBX_FIXTURES | {
    "make_instance",
    "running_instance",
    "start_or_fail",
    "build_or_fail",
    "ServiceThread",
    "Baresip",
}
# `ivr` commands that build or start Asterisk (``pbx start`` alone can stop at a check
# before it, as the tests of its errors do).
PBX_COMMANDS = (("pbx", "build"), ("demo",), ("telephony",))
CLI_RUNNERS = {"ivr", "run_ivr"}


def _is_pbx_mark(node: ast.expr) -> bool:
    """``pytest.mark.pbx`` (or ``pytest.mark.pbx(...)``)."""
    if isinstance(node, ast.Call):
        node = node.func
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "pbx"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "mark"
    )


def _module_marked(tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets
        ):
            value = stmt.value
            marks = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
            if any(_is_pbx_mark(m) for m in marks):
                return True
    return False


def _cli_words(call: ast.Call) -> tuple[str, ...]:
    """The string arguments of ``ivr(env, "pbx", "build", ...)``."""
    return tuple(
        a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
    )


def _starts_asterisk(call: ast.Call) -> bool:
    func = call.func
    name = (
        func.id
        if isinstance(func, ast.Name)
        else func.attr
        if isinstance(func, ast.Attribute)
        else ""
    )
    if name in CLI_RUNNERS:
        words = _cli_words(call)
        return any(words[: len(command)] == command for command in PBX_COMMANDS)
    if name == "Worker":  # `ivr telephony` unless command="worker" (the job consumer)
        command = next((k.value for k in call.keywords if k.arg == "command"), None)
        positional = call.args[2] if len(call.args) > 2 else None
        chosen = command or positional
        return not (isinstance(chosen, ast.Constant) and chosen.value != "telephony")
    return False


def _direct_and_refs(func: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[bool, set[str]]:
    """Whether ``func`` uses Asterisk itself, and the names it refers to (fixtures it requests
    by parameter, functions it calls or passes on)."""
    refs = {a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)}
    direct = False
    for node in ast.walk(func):
        if isinstance(node, ast.Name):
            refs.add(node.id)
        elif isinstance(node, ast.Call) and _starts_asterisk(node):
            direct = True
    return direct or bool(refs & PBX_NAMES), refs


def unmarked_pbx_tests(source: str) -> list[str]:
    """The test functions in ``source`` that need Asterisk and carry no ``pbx`` marker."""
    tree = ast.parse(source)
    module_marked = _module_marked(tree)
    functions = {
        stmt.name: stmt
        for stmt in tree.body
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    direct: dict[str, bool] = {}
    refs: dict[str, set[str]] = {}
    for name, func in functions.items():
        direct[name], refs[name] = _direct_and_refs(func)
    needs = {name for name, yes in direct.items() if yes}
    changed = True
    while changed:  # through the module's fixtures and helpers, however deep
        changed = False
        for name in functions.keys() - needs:
            if refs[name] & needs:
                needs.add(name)
                changed = True
    return [
        name
        for name in sorted(needs)
        if name.startswith("test")
        and not module_marked
        and not any(_is_pbx_mark(d) for d in functions[name].decorator_list)
    ]


def _test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if p.is_file())


def test_every_test_that_needs_asterisk_carries_the_pbx_marker() -> None:
    files = _test_files()
    assert len(files) > 30  # the scan found the suite
    missing = [
        f"{path.relative_to(ROOT)}::{name}"
        for path in files
        for name in unmarked_pbx_tests(path.read_text(encoding="utf-8"))
    ]
    assert missing == [], (
        "add @pytest.mark.pbx (or pytestmark = pytest.mark.pbx) to:\n" + "\n".join(missing)
    )


def test_every_shared_fixture_that_starts_asterisk_is_one_the_collection_check_knows() -> None:
    """A conftest fixture that starts Asterisk must be in PBX_FIXTURES, or the collection
    check in tests/conftest.py would let an unmarked test that requests it through."""
    for conftest in sorted(TESTS.rglob("conftest.py")):
        tree = ast.parse(conftest.read_text(encoding="utf-8"))
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef) and stmt.name not in PBX_FIXTURES:
                uses, _ = _direct_and_refs(stmt)
                assert not uses, f"{conftest.relative_to(ROOT)}: add {stmt.name} to PBX_FIXTURES"


# --- the checks themselves catch what they are for ------------------------------------------

UNMARKED = """
import pytest
from tests.support.instance import make_instance

@pytest.fixture()
def node():
    app, env = make_instance()
    yield app

def _helper(app):
    return app

def test_own_instance():
    make_instance()

def test_through_a_fixture(node):
    pass

def test_through_a_helper():
    _helper(ServiceThread)

def test_cli_build(env):
    ivr(env, "pbx", "build")

def test_demo(env):
    run_ivr(env, "demo", "--once")

def test_telephony_worker(env, log):
    Worker(env, log)

@pytest.mark.pbx
def test_marked(node):
    pass

def test_job_worker(env, log):
    Worker(env, log, command="worker")

def test_pbx_start_refused(env):
    ivr(env, "pbx", "start")

def test_plain():
    assert 1 + 1 == 2
"""


def test_the_scan_names_each_unmarked_test_that_needs_asterisk() -> None:
    assert unmarked_pbx_tests(UNMARKED) == [
        "test_cli_build",
        "test_demo",
        "test_own_instance",
        "test_telephony_worker",
        "test_through_a_fixture",
        "test_through_a_helper",
    ]
    marked = "import pytest\npytestmark = [pytest.mark.pbx]\n" + UNMARKED
    assert unmarked_pbx_tests(marked) == []


def test_collection_refuses_an_unmarked_test_that_requests_the_shared_asterisk(
    tmp_path: Path,
) -> None:
    """The hook in tests/conftest.py, in a real pytest run (collection only: nothing starts)."""
    (tmp_path / "conftest.py").write_text(
        "import pytest\n"
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n\n"
        "@pytest.fixture()\ndef pbx_instance():\n    return None\n\n"
        "@pytest.fixture()\ndef pbx_app(pbx_instance):\n    return pbx_instance\n\n"
        "@pytest.fixture()\ndef service(pbx_app):\n    return pbx_app\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    pbx: needs Asterisk\n")
    test_file = tmp_path / "test_sample.py"
    body = "def test_direct(pbx_app):\n    pass\n\ndef test_through_a_fixture(service):\n    pass\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def collect(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
            + ["-p", "no:xdist", *options, str(tmp_path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    test_file.write_text("import pytest\n\n" + body)
    for options in ((), ("-m", "pbx"), ("-m", "not pbx")):  # deselection does not hide it
        refused = collect(*options)
        assert refused.returncode == 4, (options, refused.stdout, refused.stderr)
        assert "have no pbx marker" in refused.stderr, refused.stderr
        assert "test_sample.py::test_direct (uses pbx_app, pbx_instance)" in refused.stderr
        assert "test_sample.py::test_through_a_fixture (uses" in refused.stderr

    test_file.write_text("import pytest\n\npytestmark = pytest.mark.pbx\n\n" + body)
    accepted = collect()
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "2 tests collected" in accepted.stdout
