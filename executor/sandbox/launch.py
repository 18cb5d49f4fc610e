"""Start the sandbox zygote: ``python3 -s -S -B launch.py [--socket PATH]``.

Loads the ``runtime`` package that sits beside this file without compiling it in the
process that becomes the zygote: compiling leaves freed-but-resident heap behind, and
every page the zygote holds is copied into each child's page tables at fork and torn
down at exit. So a throwaway child compiles the package's modules and hands the code
objects back marshalled over a pipe; this process only loads them. Standard library only.
"""

import marshal
import os
import sys

PACKAGE = "runtime"


def compiled(directory):
    """{module name: code} for every module of the package, compiled in a throwaway child."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            codes = {}
            for name in sorted(os.listdir(directory)):
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    with open(path, "rb") as handle:
                        codes[name[:-3]] = compile(handle.read(), path, "exec", dont_inherit=True)
            data = marshal.dumps(codes)
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view) :]
            status = 0
        except BaseException as exc:  # noqa: BLE001 - reported, then the child exits
            sys.stderr.write(f"launch: cannot compile {directory}: {type(exc).__name__}: {exc}\n")
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
        raise SystemExit(f"launch: cannot compile {directory}")
    return marshal.loads(b"".join(chunks))


class _Loader:
    """Serves the precompiled modules of the package to the import system."""

    def __init__(self, directory, codes):
        self.directory = directory
        self.codes = codes

    def find_spec(self, fullname, path=None, target=None):
        from _frozen_importlib import ModuleSpec

        if fullname == PACKAGE:
            spec = ModuleSpec(
                fullname, self, origin=os.path.join(self.directory, "__init__.py"), is_package=True
            )
            spec.submodule_search_locations = [self.directory]
            return spec
        prefix = PACKAGE + "."
        if fullname.startswith(prefix) and fullname[len(prefix) :] in self.codes:
            name = fullname[len(prefix) :]
            return ModuleSpec(fullname, self, origin=os.path.join(self.directory, name + ".py"))
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__name__
        key = "__init__" if name == PACKAGE else name[len(PACKAGE) + 1 :]
        module.__file__ = os.path.join(self.directory, key + ".py")
        exec(self.codes[key], module.__dict__)


def main():
    directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), PACKAGE)
    codes = compiled(directory)
    loader = _Loader(directory, codes)
    sys.meta_path.insert(0, loader)
    for name in sorted(codes):
        if name != "__init__":
            __import__(f"{PACKAGE}.{name}")
    sys.meta_path.remove(loader)  # every module is loaded; children import nothing from here
    del loader, codes
    sys.exit(sys.modules[f"{PACKAGE}.zygote"].main(sys.argv[1:]))


main()
