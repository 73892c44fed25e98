"""A long-lived process that runs fusionlab command lines one after another (tests only).

``tests/conftest.py:run_cli_shared`` starts it once per test process with ``sys.executable`` and sends it
one JSON request per line: ``{"script", "args", "cwd", "env"}``. Each request runs the script as
``__main__`` (``runpy``; ``script: "-m"`` runs the module named by the first argument, as ``python -m``)
with that argv, working directory and environment, its stdout and stderr captured and its ``SystemExit``
status as the exit code; the reply is one JSON line on the channel (a duplicate of the original stdout;
file descriptor 1 itself goes to /dev/null so that no stray write corrupts the channel). The imports a
command line pays (torch, Lightning) are paid once, so the many tests of command lines that stop before
training (config and data errors) each take well under a second instead of a fresh interpreter's start-up.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
import traceback
import warnings
from typing import Any


def run_one(request: dict[str, Any]) -> dict[str, Any]:
    """Run one command line; ``{"returncode", "stdout", "stderr"}``."""
    saved_env, saved_argv, saved_cwd, saved_path = dict(os.environ), list(sys.argv), os.getcwd(), list(sys.path)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    module = request["args"][0] if request["script"] == "-m" else None
    script = os.path.join(request["cwd"], request["script"])
    sys.argv = [module, *request["args"][1:]] if module else [script, *request["args"]]
    # as `python script` sets it (the repository's hydra_plugins, ...); `python -m` puts the working directory first
    sys.path[0] = request["cwd"] if module else os.path.dirname(script)
    out, err, code = io.StringIO(), io.StringIO(), 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if module:
                    with warnings.catch_warnings():  # the module may be imported already: runpy runs it afresh
                        warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")
                        runpy.run_module(module, run_name="__main__", alter_sys=True)
                else:
                    runpy.run_path(script, run_name="__main__")
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
            except BaseException:  # what the interpreter would print before exiting with status 1
                traceback.print_exc()
                code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.path[:] = saved_path
    return {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def main() -> None:
    channel = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    for line in sys.stdin:
        channel.write(json.dumps(run_one(json.loads(line))) + "\n")
        channel.flush()


if __name__ == "__main__":
    main()
