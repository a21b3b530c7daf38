"""Worker processes from the forkserver that never import the parent's ``__main__``.

``multiprocessing`` makes every spawned or forkserver child re-import the parent's main
module (``lossserve``'s console script, pytest's, a user's script) before it runs its
target: slow, and wrong for a script without an ``if __name__ == "__main__":`` guard. A
worker needs none of it: its target and its jobs live in importable modules. So its
launcher is the standard library's forkserver launcher with the main-module entries left
out of the preparation data (the rest is the same code).
"""

from __future__ import annotations

import io
import os
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from typing import Any

__all__ = ["WorkerProcess"]

_MAIN_ENTRIES = ("init_main_from_name", "init_main_from_path")


class _Popen(popen_forkserver.Popen):
    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        for entry in _MAIN_ENTRIES:
            prep_data.pop(entry, None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        # As the standard library: the data pipe's write end, duplicated, tells the child
        # that its parent is alive.
        parent_w = os.dup(w)
        self.finalizer = util.Finalize(
            self,
            util.close_fds,  # type: ignore[attr-defined]
            (parent_w, self.sentinel),
        )
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class WorkerProcess(ForkServerProcess):
    """A forkserver process that skips the parent's ``__main__``."""

    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:  # noqa: N802 - the standard library's name
        return _Popen(process_obj)
