# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Calls with a time limit, for system calls that a dead mount can block.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

A ``stat()`` through a link into a stopped NFS or FUSE server, or a read of
``/proc/PID/maps`` while that process faults on such a mount, waits in the
kernel until the server answers: no signal of ours interrupts it and no
timeout exists for it.  ``BoundedCaller`` runs such calls in a worker thread
and waits at most ``timeout`` seconds.  A worker that does not come back is
abandoned (it is a daemon thread, and the kernel ends it with the process:
these waits are killable) and the next call gets a fresh worker.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable


class TimedOut(Exception):
    """The call did not return within its time limit; its worker was abandoned."""


class _Call(object):
    __slots__ = ('function', 'args', 'done', 'value', 'error')

    def __init__(self, function: Callable[..., Any], args: tuple) -> None:
        self.function = function
        self.args = args
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class _Worker(object):
    """One daemon thread that runs the calls handed to it, in order."""

    def __init__(self) -> None:
        self._calls: deque[_Call] = deque()
        self._ready = threading.Condition()
        thread = threading.Thread(target=self._loop, name='sre.cmemgzip-bounded')
        thread.daemon = True
        thread.start()

    def submit(self, call: _Call) -> None:
        with self._ready:
            self._calls.append(call)
            self._ready.notify()

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not self._calls:
                    self._ready.wait()
                call = self._calls.popleft()
            try:
                call.value = call.function(*call.args)
            except BaseException as exc:  # handed to the caller, who re-raises it
                call.error = exc
            call.done.set()


class BoundedCaller(object):
    """``call(function, *args)``: its value, or TimedOut after ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.abandoned = 0
        self._worker: _Worker | None = None

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        if self._worker is None:
            self._worker = _Worker()
        call = _Call(function, args)
        self._worker.submit(call)
        if not call.done.wait(self.timeout):
            self._worker = None
            self.abandoned += 1
            raise TimedOut('no answer within %g s' % self.timeout)
        if call.error is not None:
            raise call.error
        return call.value
