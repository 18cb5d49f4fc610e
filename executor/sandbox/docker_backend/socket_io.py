"""The wire to a containerised zygote: blocking reads and writes on its non-blocking unix socket."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable

from executor.sandbox.docker_backend.health import ContainerWatch


class SocketIO:
    """Blocking file-like reads/writes on a non-blocking unix socket, with a watchdog.

    One thread reads (the pool's reader: it waits here whenever the zygote is quiet) and
    one writes. While a read or write waits, `watch.check_during_wait()` runs every
    ``watch.watchdog_s``: if the container stopped, was removed or is paused, the wait ends
    with an OSError (the pool then replaces the container and re-sends its jobs).
    """

    def __init__(
        self, sock: socket.socket, watch: ContainerWatch, closed: Callable[[], bool], name: str
    ) -> None:
        self.sock = sock
        self.watch = watch
        self.closed = closed
        self.name = name
        self._buffer = b""
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        self._out_poller = select.poll()
        self._out_poller.register(sock.fileno(), select.POLLOUT | select.POLLHUP | select.POLLERR)
        self._hangup_poller = select.poll()
        self._hangup_poller.register(sock.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)

    # reader side ---------------------------------------------------------------
    def read(self, size: int) -> bytes:
        if self._buffer:
            chunk, self._buffer = self._buffer[:size], self._buffer[size:]
            return chunk
        while True:
            events = self._poller.poll(self.watch.watchdog_s * 1000)
            if self.closed():
                raise ConnectionError(f"sandbox container {self.name}: channel closed")
            if events:
                try:
                    data = self.sock.recv(max(size, 1 << 16))
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self.watch.mark_dead(f"socket error: {exc}")
                    raise
                if not data:
                    self.watch.mark_dead("the zygote closed its socket")
                    return b""
                self.watch.received()
                if len(data) > size:
                    self._buffer = data[size:]
                    data = data[:size]
                return data
            self.watch.check_during_wait()

    # writer side ---------------------------------------------------------------
    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.watch.sent()
        while view:
            if self.closed():
                raise ConnectionError(f"sandbox container {self.name}: channel closed")
            try:
                sent = self.sock.send(view)
                view = view[sent:]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                self.watch.mark_dead(f"socket error: {exc}")
                raise
            if not self._out_poller.poll(self.watch.watchdog_s * 1000):
                self.watch.check_during_wait()
        return len(data)

    def flush(self) -> None:
        return None

    def hung_up(self) -> bool:
        """True when the zygote's end of the socket is closed (readable data is not a hang-up:
        a streaming zygote writes whenever a job has news)."""
        return bool(self._hangup_poller.poll(0))
