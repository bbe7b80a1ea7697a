"""The arithmetic reference: a bare numpy ``users @ items.T`` of a given shape.

In process when OpenBLAS runs with its own kernel choice; when
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` are set (they slow a current numpy),
the reference runs in a worker process without them (``python -m bench.numpy_ref``
reads ``m n dim seed`` lines and answers the seconds of one product), so that it
still alternates with the measured code in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from bench.common import OPENBLAS_VARS, REPO, blas_info, reference_env


def _matmul_seconds(u: np.ndarray, v: np.ndarray) -> float:
    start = time.perf_counter()
    u @ v.T
    return time.perf_counter() - start


class NumpyReference:
    """``seconds(users, items)``: one bare product, in process or in the clean worker."""

    def __init__(self):
        self.isolated = any(k in os.environ for k in OPENBLAS_VARS)
        self.proc = None
        self.info = blas_info()
        if self.isolated:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.numpy_ref"], cwd=REPO, env=reference_env(),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.info = self._ask({"cmd": "info"})

    def _ask(self, msg: dict):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def load(self, users: np.ndarray, items: np.ndarray, key: str) -> None:
        """Give the worker the same arrays (through a temporary .npy file) under ``key``."""
        self._arrays = (users, items)
        if self.isolated:
            path = f"/tmp/recsys-bench-ref-{os.getpid()}-{key}.npz"
            np.savez(path, u=users, v=items)
            self._ask({"cmd": "load", "path": path})
            os.unlink(path)

    def seconds(self) -> float:
        if self.isolated:
            return float(self._ask({"cmd": "time"}))
        return _matmul_seconds(*self._arrays)

    def describe(self) -> dict:
        return {"process": "worker without OpenBLAS overrides" if self.isolated else "same process",
                "blas": self.info}

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _serve() -> None:
    arrays = None
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "info":
            out = blas_info()
        elif msg["cmd"] == "load":
            with np.load(msg["path"]) as npz:
                arrays = (npz["u"], npz["v"])
            out = True
        else:
            out = _matmul_seconds(*arrays)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    _serve()
