"""A stand-in zygote for the pool's tests: the real wire protocol, trivial "programs".

Standard library only; it speaks exactly what ``executor/sandbox/runtime/wire.py``
documents (it loads that file for the byte layout):

* reads the hello frame (JSON), answers ``{"ready": {...}}`` (or ``{"error": ...}`` when
  ``STANDIN_FAIL_START`` is set);
* then forks one child process per job frame and sends one record per event, in the
  order the events happen: ``DEMOTED`` when a child has run ``demote_after_ms`` (it is
  reniced to 19 and its fast slot is free again), then one final record: ``RESULT``,
  ``TIMEOUT`` (the child's group is killed at the job's wall-clock limit), ``NO_RESULT``
  (it died without a report) or ``NOT_STARTED``;
* holds at most ``max_live`` children, at most ``fast_slots`` of them not demoted.

It reads its stdin at all times, so that a host that sends a job without credit is
caught: a job frame that arrives while the stand-in has no free fast slot or no room for
another child is a protocol violation; the stand-in says so on stderr (and in
``STANDIN_LOG``) and exits with status 3.

A program is statements separated by ``;``:

    sleep:<ms>       the child sleeps
    spin:<ms>        the child burns CPU (0: until it is killed)
    echo             output: the input text (the default output)
    hash             output: repr(hash('azr')) (differs between hash seeds)
    error            status runtime_error
    crash            the child dies of SIGSEGV (NO_RESULT)
    exit             the child exits without a report (NO_RESULT)
    notstart         the zygote answers NOT_STARTED
    die              the zygote exits at once
    die_once:<path>  the zygote exits, unless <path> exists (it creates it first)
    garbage          the zygote writes a record of an unknown kind (a corrupt stream)
    freeze           the zygote stops: reads nothing, writes nothing, until killed

``f`` is "called" ``calls`` times: the output list holds the output that many times.
``STANDIN_LOG``: a file to which every job frame received is appended as
``<pid> <program>`` (tests count re-sends with it).
"""

import ctypes
import importlib.util
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

_WIRE = Path(__file__).resolve().parents[3] / "executor" / "sandbox" / "runtime" / "wire.py"
_spec = importlib.util.spec_from_file_location("standin_wire", _WIRE)
wire = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wire)

LOG = os.environ.get("STANDIN_LOG", "")
ZYGOTE_ACTIONS = ("notstart", "die", "die_once", "garbage", "freeze")


def log_line(text):
    if LOG:
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (text.replace("\n", "\\n") + "\n").encode("utf-8", "backslashreplace"))
        finally:
            os.close(fd)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send(body):
    write_all(1, wire.FRAME.pack(len(body)) + body)


def send_record(job_id, kind, wait_status=0, wall_ms=0.0, cpu_ms=0.0, maxrss_kb=0, payload=b""):
    send(wire.RECORD.pack(job_id, kind, wait_status, wall_ms, cpu_ms, maxrss_kb) + payload)


def statements(program):
    for part in program.split(";"):
        name, _, argument = part.strip().partition(":")
        if name:
            yield name, argument


def child_payload(status, outputs, detail):
    parts = [wire.CHILD.pack(status, len(outputs))]
    for text in (*outputs, detail):
        data = text.encode("utf-8", "backslashreplace")
        parts.append(wire.LENGTH.pack(len(data)) + data)
    return b"".join(parts)


def run_child(program, argument, calls, report_fd, zygote_pid):
    """In the forked child: interpret the program, write the payload, exit."""
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the zygote
    except (OSError, AttributeError):
        pass
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # never hold the zygote's channel open
    output, status, detail = argument, 0, ""
    for name, value in statements(program):
        if name == "sleep":
            time.sleep(float(value or 0) / 1000)
        elif name == "spin":
            until = time.monotonic() + float(value or 0) / 1000 if float(value or 0) else None
            while until is None or time.monotonic() < until:
                for _ in range(20000):
                    pass
                if os.getppid() != zygote_pid:
                    os._exit(9)
        elif name == "hash":
            output = repr(hash("azr"))
        elif name == "echo":
            output = argument
        elif name == "error":
            status, detail = 1, "stand-in runtime error"
        elif name == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif name == "exit":
            os._exit(0)
    outputs = [] if status else [output] * calls
    write_all(report_fd, child_payload(status, outputs, detail))
    os._exit(0)


class Child:
    def __init__(self, job_id, pid, report_fd, timeout_s, demote_after_s):
        self.job_id = job_id
        self.pid = pid
        self.report_fd = report_fd
        self.started = time.monotonic()
        self.deadline = self.started + timeout_s
        self.demote_at = self.started + demote_after_s
        self.demoted = False
        self.chunks = []


def figures(child, rusage):
    wall_ms = (time.monotonic() - child.started) * 1000
    cpu_ms = (rusage.ru_utime + rusage.ru_stime) * 1000
    return wall_ms, cpu_ms, int(rusage.ru_maxrss)


def kill_group(pid):
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def violation(text):
    sys.stderr.write(f"standin: PROTOCOL VIOLATION: {text}\n")
    log_line(f"{os.getpid()} PROTOCOL VIOLATION: {text}")
    os._exit(3)


def main():
    hello_body = wire.read_frame(sys.stdin.buffer)
    if hello_body is None:
        return
    hello = json.loads(hello_body)
    if os.environ.get("STANDIN_FAIL_START"):
        send(json.dumps({"error": "stand-in told to fail at start"}).encode())
        return
    fast_slots = int(hello["fast_slots"])
    max_live = int(hello["max_live"])
    demote_after_s = float(hello["demote_after_ms"]) / 1000
    pid = os.getpid()
    ready = {
        "pid": pid,
        "spawn": "standin",
        "hash_seed": os.environ.get("PYTHONHASHSEED", ""),
        "sandbox_uid": hello.get("sandbox_uid"),
        "fast_slots": fast_slots,
        "max_live": max_live,
        "demote_after_ms": hello["demote_after_ms"],
    }
    send(json.dumps({"ready": ready}).encode())

    children = {}  # report fd -> Child
    buffer = bytearray()
    while True:
        now = time.monotonic()
        for child in list(children.values()):
            if now >= child.deadline:
                kill_group(child.pid)
                _, status, rusage = os.wait4(child.pid, 0)
                os.close(child.report_fd)
                del children[child.report_fd]
                send_record(child.job_id, wire.KIND_TIMEOUT, status, *figures(child, rusage))
            elif not child.demoted and now >= child.demote_at:
                child.demoted = True
                try:
                    os.setpriority(os.PRIO_PROCESS, child.pid, 19)
                except OSError:
                    pass
                send_record(child.job_id, wire.KIND_DEMOTED)

        # Job frames received: each needs a free fast slot and room for a child.
        while len(buffer) >= wire.FRAME.size:
            (size,) = wire.FRAME.unpack_from(buffer, 0)
            if len(buffer) < wire.FRAME.size + size:
                break
            body = bytes(buffer[wire.FRAME.size : wire.FRAME.size + size])
            del buffer[: wire.FRAME.size + size]
            fast = sum(1 for c in children.values() if not c.demoted)
            job_id, timeout_s, _cpu_s, _memory_mb, calls, program_len, code_len = wire.JOB.unpack_from(
                body, 0
            )
            program = body[wire.JOB.size : wire.JOB.size + program_len].decode("utf-8", "surrogatepass")
            argument = body[wire.JOB.size + program_len + code_len :].decode("utf-8", "surrogatepass")
            log_line(f"{pid} {program}")
            if fast >= fast_slots or len(children) >= max_live:
                violation(f"job {job_id} sent with {fast} fast / {len(children)} live children")
            actions = dict(statements(program))
            if "freeze" in actions:
                while True:
                    time.sleep(3600)
            if "die" in actions:
                os._exit(1)
            if "die_once" in actions:
                marker = actions["die_once"]
                if not os.path.exists(marker):
                    open(marker, "w").close()
                    os._exit(1)
            if "garbage" in actions:
                send_record(job_id, 99)
                continue
            if "notstart" in actions:
                send_record(job_id, wire.KIND_NOT_STARTED, payload=b"stand-in refused to start it")
                continue
            read_fd, write_fd = os.pipe()
            child_pid = os.fork()
            if child_pid == 0:
                try:
                    os.close(read_fd)
                    run_child(program, argument, calls, write_fd, pid)
                finally:
                    os._exit(70)
            os.close(write_fd)
            children[read_fd] = Child(job_id, child_pid, read_fd, timeout_s, demote_after_s)

        timers = [c.deadline for c in children.values()]
        timers += [c.demote_at for c in children.values() if not c.demoted]
        timeout = max(0.0, min(timers) - time.monotonic()) if timers else None
        readable, _, _ = select.select([0, *children], [], [], timeout)
        for fd in readable:
            if fd == 0:
                data = os.read(0, 1 << 16)
                if not data:  # the host is gone: so are we, and our children
                    for child in children.values():
                        kill_group(child.pid)
                    return
                buffer += data
                continue
            child = children.get(fd)
            if child is None:
                continue
            data = os.read(fd, 1 << 16)
            if data:
                child.chunks.append(data)
                continue
            os.close(fd)
            del children[fd]
            _, status, rusage = os.wait4(child.pid, 0)
            payload = b"".join(child.chunks)
            kind = wire.KIND_RESULT if payload else wire.KIND_NO_RESULT
            send_record(child.job_id, kind, status, *figures(child, rusage), payload=payload)


if __name__ == "__main__":
    main()
