"""Run several ``ivr`` commands in one Python process, one after the other (``ivr demo``'s
set-up: one interpreter start and one round of imports instead of one per command).

    python -m ivr.demo_batch < commands.json

The input is a JSON list of argument lists (``[["org", "add", "X", "--json"], ...]``). For
each command one JSON line is printed as it ends: ``{"args", "code", "stdout", "stderr"}``.
The batch stops at the first command that fails, with its exit status.
"""

from __future__ import annotations

import io
import json
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout


def main() -> int:
    from ivr.cli import main as ivr

    commands = json.load(sys.stdin)
    result = sys.stdout
    for args in commands:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = ivr([str(a) for a in args])
            except SystemExit as exc:  # argparse refused the arguments
                code = exc.code if isinstance(exc.code, int) else 2
            except Exception:  # noqa: BLE001 - reported like the command's own failure
                traceback.print_exc()
                code = 1
        line = {"args": args, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
        result.write(json.dumps(line, ensure_ascii=False) + "\n")
        result.flush()
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
