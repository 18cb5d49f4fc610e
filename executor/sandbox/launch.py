"""Start the sandbox runtime without compiling it in the process that becomes the zygote.

    python3 -s -S -B launch.py /path/to/runtime.py [runtime arguments...]

Compiling a module of runtime.py's size leaves a few MB of freed-but-resident heap
behind, and every page the zygote holds is copied into each child's page table on
fork and torn down again on exit (about 0.1 ms per execution for those few MB on a
2-core VM). So a throwaway child compiles the file and hands the code object back
marshalled over a pipe; this process only loads it (compact, no compiler garbage)
and runs it as ``__main__``. Standard library only, like the runtime itself.
"""

import marshal
import os
import sys


def compiled(path):
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            with open(path, "rb") as handle:
                data = marshal.dumps(compile(handle.read(), path, "exec", dont_inherit=True))
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view) :]
            status = 0
        except BaseException as exc:  # noqa: BLE001 - reported, then the child exits
            sys.stderr.write(f"launch: cannot compile {path}: {type(exc).__name__}: {exc}\n")
        finally:
            os._exit(status)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit(f"launch: cannot compile {path}")
    return marshal.loads(b"".join(chunks))


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: launch.py RUNTIME [ARGUMENTS...]")
    path = sys.argv[1]
    code = compiled(path)
    sys.argv = sys.argv[1:]
    namespace = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}
    exec(code, namespace)


main()
