"""Test-session setup shared by tests/ and the notebooks run by nbval.

Notebooks in smoke mode make their run folders with ``tempfile.mkdtemp(prefix="resnet-...")``. So
that the test suite leaves nothing in the system's temporary folder, the session points ``TMPDIR``
(inherited by the notebook kernels nbval starts) at a folder of its own and deletes it at the end.
"""

import os
import shutil
import tempfile

_session_tmp: str | None = None


def pytest_configure(config):
    global _session_tmp
    _session_tmp = tempfile.mkdtemp(prefix="resnet-test-session-")
    os.environ["TMPDIR"] = _session_tmp
    tempfile.tempdir = _session_tmp


def pytest_unconfigure(config):
    if _session_tmp:
        shutil.rmtree(_session_tmp, ignore_errors=True)
