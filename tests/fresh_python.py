"""Run code in a fresh interpreter that imports the same dwconv as the tests (a checkout's, or an
installed one), with tests/ on its path."""

import os
import signal
import subprocess
import sys
from collections import namedtuple

import dwconv

TESTS = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(dwconv.__file__)))

Finished = namedtuple("Finished", "finished returncode stdout stderr")


def fresh_python(code, *args, timeout=300, **env):
    """Run `code` with `args` as sys.argv[1:] and `env` added to the environment. When it has not
    finished after `timeout` seconds, it and every process it started (it runs in a session of its
    own) are killed: `finished` is then False, and the output is what it printed before."""
    env = dict(os.environ, **env, PYTHONPATH=os.pathsep.join(
        [PACKAGE_PARENT, TESTS] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=TESTS, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        return Finished(True, proc.returncode, stdout, stderr)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        return Finished(False, None, stdout, stderr)
