"""Forbidden modules refused at RUN TIME: an early filter, not a wall.

The static checks refuse ``import time``; a program can still reach ``time`` through
another module's attributes (``typing.sys.modules['time']``, ``statistics.random``).
``install(forbidden)`` (in the zygote, before it forks) replaces the callable attributes
of every loaded forbidden module with wrappers that first raise the audit event
``MODULE_EVENT`` (module name, attribute); the audit hook (``audit.py``) ignores it
until the child is armed, then records ``use of <module>.<attr> is forbidden`` and
raises. A ``sys.meta_path`` finder, first in the list, does the same to a forbidden
module imported later, once its own loader has run, so ``import statistics`` still
works (it imports ``random``) while ``statistics.random.random()`` is refused.

What is wrapped in a forbidden module (a policy entry, a submodule of one, or a C
accelerator of one, see ``IMPLIED``):

* functions, builtin functions and other callables: a wrapper function;
* classes: a subclass of the same name whose ``__new__`` and public classmethods and
  staticmethods audit first (``datetime.datetime.now``, ``datetime.date.today``,
  ``random.Random()``, ``random.SystemRandom()``);
* ``os.environ``, ``os.environb``, ``posix.environ``: a mapping whose every use audits;
* instances of a forbidden module's own classes (``random._inst``, whose bound methods
  are ``random.random`` & co.): a stand-in whose every attribute read audits.

A dotted policy entry (``os.path``, ``sys.exit``, ``os.environ``) names an attribute of
that module: it is guarded even where the module's table below keeps it, and when its
value is a module (``os.path`` is ``posixpath``) that module is guarded as a whole.

What stays unguarded, knowingly (the interpreter and the standard library's everyday
modules call these at run time; each entry says why):

* ``UNGUARDED_MODULES``: modules left alone entirely;
* ``GUARDED_ONLY``: modules of which only the listed attributes are guarded (``sys``:
  the interpreter and half the standard library use it);
* ``KEEP``: attributes left alone in an otherwise guarded module;
* ``PATH_CHECKED``: ``stat``/``lstat``/``listdir``/``scandir`` of ``os``/``posix``: the
  import system and linecache call them; allowed on the readable directories (the
  standard library), guarded for any other path (``os.stat('/proc/self')`` leaks time);
* classes that cannot be subclassed (``datetime.timezone``, ``time.struct_time``,
  ``os.stat_result``), exception classes, abstract classes and builtin types
  re-exported by a module (``os.error``): constructing them is deterministic, and an
  ``except``/``isinstance`` on a replaced class would stop matching;
* dunder attributes (``importlib.__import__``): the builtins are the language.

Limits (filters, not walls): a wrapper keeps the original in its closure (reachable
with ``__closure__``, which the static check refuses); a module that bound a forbidden
function before ``install`` keeps the original (``from time import monotonic`` in a
non-forbidden module: none of the standard library's everyday modules does); a
program can remove the finder from ``sys.meta_path``; and while a forbidden module is
being imported, the forbidden modules it imports are wrapped only when the outermost
import finishes (``random`` must instantiate its ``Random`` before ``_random`` is
wrapped). Clocks in particular have no kernel wall (the vDSO serves them without a
system call): this layer is what turns them into ``forbidden``.

The runtime's own code that runs in an armed child must not go through the wrappers:
bind what it calls before ``install`` (``from os import write, _exit``) or call it from
C. Standard library only; imports nothing but ``sys``.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: the zygote imports nothing it does not need
    from collections.abc import Callable, Iterable
    from typing import Any

MODULE_EVENT = "azr.sandbox.module"  # the same string as audit.MODULE_EVENT

# C accelerators and aliases of policy entries: forbidden with them.
IMPLIED: dict[str, tuple[str, ...]] = {
    "random": ("_random",),
    "datetime": ("_datetime",),
    "time": ("_strptime",),
    "hashlib": ("_hashlib", "_md5", "_sha1", "_sha256", "_sha512", "_sha3", "_blake2"),
    "threading": ("_thread", "_threading_local"),
    "queue": ("_queue",),
    "multiprocessing": ("_multiprocessing", "_posixshmem"),
    "uuid": ("_uuid",),
    "locale": ("_locale",),
    "socket": ("_socket",),
    "ssl": ("_ssl",),
    "signal": ("_signal",),
    "pickle": ("_pickle",),
    "subprocess": ("_posixsubprocess",),
    "ctypes": ("_ctypes",),
    "sqlite3": ("_sqlite3",),
    "zoneinfo": ("_zoneinfo",),
    "bz2": ("_bz2",),
    "lzma": ("_lzma",),
    "asyncio": ("_asyncio",),
    "tracemalloc": ("_tracemalloc",),
    "os": ("posix",),
}

# Modules never wrapped, whatever the policy says.
UNGUARDED_MODULES: dict[str, str] = {
    "builtins": "the language itself; its dangerous parts (open, exec, breakpoint, ...) are the audit hook's",
    "__builtin__": "an alias of builtins",
    "_frozen_importlib": "the import system: its functions call each other through module globals",
    "_frozen_importlib_external": "the import system (marshal, _io and posix calls included)",
    "importlib._bootstrap": "the same module object as _frozen_importlib once importlib is imported",
    "importlib._bootstrap_external": "the same module object as _frozen_importlib_external",
    "types": "type objects behind isinstance checks in typing, enum, dataclasses and functools; "
    "code and function constructors are refused by the audit hook",
    "copyreg": "object.__reduce_ex__ (copy.copy, copy.deepcopy) calls copyreg.__newobj__ and _reconstructor",
    "weakref": "functools.singledispatch, copy and typing use weak references at run time; deterministic",
    "_weakref": "see weakref",
    "_weakrefset": "see weakref (abc)",
    "_io": "the import system reads every module with _io.open_code, which looks up _io.open "
    "on the module; that is builtins.open, whose opens the audit hook checks",
    "linecache": "warnings and tracebacks read source lines through it; its opens pass the audit hook",
    "tokenize": "linecache opens source files with tokenize.open",
}

# Modules of which ONLY these attributes are guarded.
GUARDED_ONLY: dict[str, frozenset[str]] = {
    # sys: typing, collections, re, enum, warnings, functools and the interpreter itself
    # use sys.modules, sys.intern, sys.exc_info, sys._getframe (refused with a ValueError
    # by the audit hook), sys.getrecursionlimit, sys.audit (the guards' own call) and more.
    "sys": frozenset(
        {
            "exit",
            "settrace",
            "setprofile",
            "call_tracing",
            "_current_frames",
            "_current_exceptions",
            "getallocatedblocks",
            "getrefcount",
            "_debugmallocstats",
            "setswitchinterval",
            "setdlopenflags",
            "set_asyncgen_hooks",
            "set_coroutine_origin_tracking_depth",
        }
    ),
    # io: in-memory streams (pprint uses StringIO), TextIOWrapper (tokenize.open) and the
    # base classes (isinstance) stay; files are opened with open(), checked by the audit
    # hook. (_io, the same functions and classes, is the import system's.)
    "io": frozenset({"open", "open_code", "FileIO"}),
    # inspect: dataclasses calls inspect.signature (and so most of inspect) at class
    # creation; only frames, source files and module lookups are guarded.
    "inspect": frozenset(
        {
            "currentframe",
            "stack",
            "trace",
            "getouterframes",
            "getinnerframes",
            "getframeinfo",
            "getlineno",
            "getgeneratorlocals",
            "getcoroutinelocals",
            "getasyncgenlocals",
            "getclosurevars",
            "getsource",
            "getsourcelines",
            "getsourcefile",
            "getfile",
            "getabsfile",
            "findsource",
            "getcomments",
            "getmodule",
            "getmembers",
            "getmembers_static",
        }
    ),
    # ast: inspect.signature parses builtins' text signatures with ast.parse.
    "ast": frozenset({"dump", "walk", "iter_child_nodes", "get_source_segment", "unparse"}),
}

_STRING_PATH_FUNCTIONS = frozenset(
    {
        "join",
        "split",
        "splitext",
        "_splitext",
        "basename",
        "dirname",
        "normpath",
        "normcase",
        "isabs",
        "commonprefix",
        "commonpath",
        "splitdrive",
        "_get_sep",
        "_check_arg_types",
        "_path_normpath",
    }
)

# Attributes left alone in an otherwise guarded module.
KEEP: dict[str, frozenset[str]] = {
    # register_at_fork: random and threading call it at import; device_encoding: the C
    # TextIOWrapper calls os.device_encoding for every text open; fspath/fsencode/
    # fsdecode/strerror: pure; _check_methods: isinstance(x, os.PathLike).
    "os": frozenset(
        {
            "fspath",
            "fsencode",
            "fsdecode",
            "strerror",
            "register_at_fork",
            "device_encoding",
            "_check_methods",
        }
    ),
    # getcwd: the import system for '' and relative sys.path entries.
    "posix": frozenset(
        {"fspath", "strerror", "register_at_fork", "device_encoding", "getcwd", "_path_normpath"}
    ),
    # the import system takes a module lock (allocate_lock, get_ident) for every import;
    # dataclasses' and reprlib's recursive repr call get_ident; functools holds RLock.
    "_thread": frozenset({"allocate_lock", "allocate", "get_ident", "RLock", "LockType"}),
    # the import system loads every .pyc with marshal.loads
    "marshal": frozenset({"loads"}),
    # string operations only; the file-system queries (exists, getmtime, realpath,
    # expanduser, ...) are guarded
    "posixpath": _STRING_PATH_FUNCTIONS,
    "genericpath": _STRING_PATH_FUNCTIONS,
    "ntpath": _STRING_PATH_FUNCTIONS,
}

# Allowed on the readable directories only (a pure string check), guarded otherwise.
PATH_CHECKED: dict[str, frozenset[str]] = {
    "os": frozenset({"stat", "lstat", "listdir", "scandir"}),
    "posix": frozenset({"stat", "lstat", "listdir", "scandir"}),
}

# Mappings replaced by an auditing view.
GUARDED_MAPPINGS: dict[str, tuple[str, ...]] = {"os": ("environ", "environb"), "posix": ("environ",)}


class _Guard:
    """The state of ``install``: what is forbidden and what has been wrapped."""

    def __init__(self, readable: "list[str]") -> None:
        self.modules: set[str] = set()  # forbidden module names (and prefixes of submodules)
        self.attributes: dict[str, set[str]] = {}  # module -> attributes named by dotted entries
        self.exact = tuple(readable)
        self.beneath = tuple(path.rstrip("/") + "/" for path in readable)
        self.audit = sys.audit
        self.wrapper_ids: set[int] = set()
        self.keep_alive: list[object] = []  # wrappers and guarded modules: their ids stay unique
        self.active: set[int] = set()  # modules being guarded (dotted entries may cycle)
        self.depth = 0  # forbidden imports in progress
        self.pending: list[object] = []

    # ------------------------------------------------------------------ policy

    def add(self, entries: "Iterable[str]") -> None:
        for entry in entries:
            entry = str(entry).strip()
            if not entry:
                continue
            self.modules.add(entry)
            for implied in IMPLIED.get(entry, ()):
                self.modules.add(implied)
            if "." in entry:
                owner, _, attribute = entry.rpartition(".")
                self.attributes.setdefault(owner, set()).add(attribute)

    def forbidden(self, name: str) -> bool:
        if name in UNGUARDED_MODULES:
            return False
        if name in self.modules:
            return True
        index = name.find(".")
        while index != -1:
            if name[:index] in self.modules:
                return True
            index = name.find(".", index + 1)
        return False

    # ------------------------------------------------------------------ wrapping

    def guard_loaded(self) -> None:
        for key, module in list(sys.modules.items()):
            if module is None:
                continue
            name = _module_name(module) or key
            if name in UNGUARDED_MODULES or key in UNGUARDED_MODULES:
                continue
            if (
                self.forbidden(key)
                or self.forbidden(name)
                or key in self.attributes
                or name in self.attributes
            ):
                self.guard_module(module)

    def guard_module(self, module: object, whole: bool = False) -> None:
        """Wrap ``module``'s attributes: all of them (less the tables' exceptions) when the
        module is forbidden or ``whole``, else only those dotted entries name. Guarding a
        module again only adds (wrappers are never wrapped twice)."""
        name = _module_name(module)
        if type(name) is not str or name in UNGUARDED_MODULES or id(module) in self.active:
            return
        aliases = [key for key, other in list(sys.modules.items()) if other is module and key != name]
        whole = whole or self.forbidden(name) or any(self.forbidden(key) for key in aliases)
        self.keep_alive.append(module)
        self.active.add(id(module))
        try:
            self._guard_namespace(module, name, aliases, whole)
        finally:
            self.active.discard(id(module))

    def _guard_namespace(self, module: object, name: str, aliases: "list[str]", whole: bool) -> None:
        namespace = vars(module)
        named = set(self.attributes.get(name, ()))
        for key in aliases:
            named |= self.attributes.get(key, set())
        only = GUARDED_ONLY.get(name)
        keep = KEEP.get(name, frozenset())
        checked = PATH_CHECKED.get(name, frozenset())
        mappings = GUARDED_MAPPINGS.get(name, ())
        for attribute, value in list(namespace.items()):
            if type(attribute) is not str:
                continue
            if attribute in named:
                self.guard_attribute(module, name, attribute, value)
                continue
            if not whole or (attribute.startswith("__") and attribute.endswith("__")):
                continue
            if attribute in mappings:
                setattr(module, attribute, self.mapping(name, attribute, value))
            elif attribute in checked:
                setattr(module, attribute, self.path_checked(name, attribute, value))
            elif attribute in keep or (only is not None and attribute not in only):
                continue
            else:
                wrapped = self.wrap(name, attribute, value)
                if wrapped is not value:
                    setattr(module, attribute, wrapped)

    def guard_attribute(self, module: object, name: str, attribute: str, value: object) -> None:
        """An attribute a dotted policy entry names: always guarded."""
        if type(value) is type(sys):
            self.guard_module(value, whole=True)
        elif name in GUARDED_MAPPINGS and attribute in GUARDED_MAPPINGS[name]:
            setattr(module, attribute, self.mapping(name, attribute, value))
        else:
            wrapped = self.wrap(name, attribute, value)
            if wrapped is not value:
                setattr(module, attribute, wrapped)

    def wrap(self, name: str, attribute: str, value: object) -> object:
        if id(value) in self.wrapper_ids or type(value) is type(sys):
            return value
        if isinstance(value, type):
            return self.wrap_class(name, attribute, value)
        if callable(value):
            return self.wrap_callable(name, attribute, value)
        owner = getattr(type(value), "__module__", None)
        if type(owner) is str and self.forbidden(owner):
            return self.instance(name, attribute, value)  # random._inst, calendar.c, ...
        return value

    def _remember(self, wrapper: object) -> object:
        self.wrapper_ids.add(id(wrapper))
        self.keep_alive.append(wrapper)
        return wrapper

    def wrap_callable(self, name: str, attribute: str, function: "Callable[..., Any]") -> object:
        audit, event = self.audit, MODULE_EVENT

        def guarded(*args: "Any", **kwargs: "Any") -> "Any":
            audit(event, name, attribute)
            return function(*args, **kwargs)

        _describe(guarded, function, name, attribute)
        return self._remember(guarded)

    def wrap_class(self, name: str, attribute: str, cls: type) -> object:
        if (
            cls.__module__ == "builtins"
            or issubclass(cls, BaseException)
            or getattr(cls, "__abstractmethods__", None)
        ):
            return cls
        audit, event = self.audit, MODULE_EVENT
        base_new, object_new = cls.__new__, object.__new__
        holder: list[type] = []
        super_of, attribute_of = super, getattr

        def __new__(subclass: type, *args: "Any", **kwargs: "Any") -> "Any":
            audit(event, name, attribute)
            if base_new is object_new:
                return object_new(subclass)
            return base_new(subclass, *args, **kwargs)

        namespace: dict[str, object] = {
            "__slots__": (),
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "__new__": __new__,
        }
        for method_name, kind in _class_level_methods(cls):
            label = f"{attribute}.{method_name}"
            if kind == "static":
                original = getattr(cls, method_name)

                def static(
                    *args: "Any", _original: "Any" = original, _label: str = label, **kwargs: "Any"
                ) -> "Any":
                    audit(event, name, _label)
                    return _original(*args, **kwargs)

                namespace[method_name] = staticmethod(static)
            else:

                def bound(
                    subclass: type,
                    *args: "Any",
                    _name: str = method_name,
                    _label: str = label,
                    **kwargs: "Any",
                ) -> "Any":
                    audit(event, name, _label)
                    return attribute_of(super_of(holder[0], subclass), _name)(*args, **kwargs)

                namespace[method_name] = classmethod(bound)
        try:
            metaclass: Any = type(cls)
            wrapper = metaclass(cls.__name__, (cls,), namespace)
        except Exception:  # noqa: BLE001 - final types, enums with members: left as they are
            return cls
        holder.append(wrapper)
        return self._remember(wrapper)

    def path_checked(self, name: str, attribute: str, function: "Any") -> object:
        if id(function) in self.wrapper_ids or not callable(function):
            return function
        audit, event = self.audit, MODULE_EVENT
        exact, beneath = self.exact, self.beneath
        type_of, str_type, bytes_type = type, str, bytes
        startswith, split, decode = str.startswith, str.split, bytes.decode

        def guarded(*args: "Any", **kwargs: "Any") -> "Any":
            path: object = args[0] if args else kwargs.get("path")
            kind = type_of(path)
            text = ""
            if kind is bytes_type:
                text = decode(path, "utf-8", "surrogateescape")  # type: ignore[arg-type]
            elif kind is str_type:
                text = path  # type: ignore[assignment]
            if (
                "dir_fd" in kwargs
                or not startswith(text, "/")
                or ".." in split(text, "/")
                or not (text in exact or startswith(text, beneath))
            ):
                audit(event, name, attribute)
            return function(*args, **kwargs)

        _describe(guarded, function, name, attribute)
        return self._remember(guarded)

    def mapping(self, name: str, attribute: str, mapping: "Any") -> object:
        if id(mapping) in self.wrapper_ids:
            return mapping
        audit, event = self.audit, MODULE_EVENT

        def check() -> None:
            audit(event, name, attribute)

        class GuardedMapping:
            __slots__ = ()
            __hash__ = None  # type: ignore[assignment]

            def __getitem__(self, key: "Any") -> "Any":
                check()
                return mapping[key]

            def __setitem__(self, key: "Any", value: "Any") -> None:
                check()
                mapping[key] = value

            def __delitem__(self, key: "Any") -> None:
                check()
                del mapping[key]

            def __contains__(self, key: object) -> bool:
                check()
                return key in mapping

            def __iter__(self) -> "Any":
                check()
                return iter(mapping)

            def __len__(self) -> int:
                check()
                return len(mapping)

            def __eq__(self, other: object) -> bool:
                check()
                return mapping == other

            def __or__(self, other: "Any") -> "Any":
                check()
                return mapping | other

            def __repr__(self) -> str:
                check()
                return repr(mapping)

            def __getattr__(self, key: str) -> "Any":
                check()
                return getattr(mapping, key)

        GuardedMapping.__name__ = GuardedMapping.__qualname__ = type(mapping).__name__
        return self._remember(GuardedMapping())

    def instance(self, name: str, attribute: str, obj: object) -> object:
        """An object of a forbidden module's class (``random._inst``): a stand-in whose
        every attribute read audits first (its methods are the original's)."""
        audit, event = self.audit, MODULE_EVENT
        attribute_of, representation = getattr, repr

        class GuardedInstance:
            __slots__ = ()

            def __getattr__(self, key: str) -> "Any":
                audit(event, name, attribute)
                return attribute_of(obj, key)

            def __repr__(self) -> str:
                audit(event, name, attribute)
                return representation(obj)

        GuardedInstance.__name__ = GuardedInstance.__qualname__ = type(obj).__name__
        return self._remember(GuardedInstance())

    # ------------------------------------------------------------------ later imports

    def flush(self) -> None:
        """Wrap the forbidden modules imported since the outermost forbidden import began."""
        pending, self.pending = self.pending, []
        for module in pending:
            self.guard_module(module)


def _module_name(module: object) -> "str | None":
    """The name a module was imported under (``_io``, whose ``__name__`` is ``io``)."""
    name = getattr(getattr(module, "__spec__", None), "name", None)
    if type(name) is not str:
        name = getattr(module, "__name__", None)
    return name if type(name) is str else None


def _class_level_methods(cls: type) -> "list[tuple[str, str]]":
    """Public classmethods ("class") and staticmethods ("static") of ``cls`` and its
    bases (not ``object``'s)."""
    found: dict[str, str] = {}
    for klass in cls.__mro__:
        if klass is object:
            continue
        for method_name, descriptor in vars(klass).items():
            if method_name in found or (method_name.startswith("__") and method_name.endswith("__")):
                continue
            kind = type(descriptor).__name__
            if isinstance(descriptor, staticmethod):
                found[method_name] = "static"
            elif isinstance(descriptor, classmethod) or kind == "classmethod_descriptor":
                found[method_name] = "class"
            else:
                found[method_name] = ""  # shadows the same name further down the MRO
    return [(method_name, kind) for method_name, kind in found.items() if kind]


def _describe(wrapper: "Any", original: object, module_name: str, attribute: str) -> None:
    """Name the wrapper like the original. No ``__wrapped__`` (it would hand the original
    out) and no ``__doc__`` (a builtin's docstring is a new string per read: copying them
    all would cost the zygote ~160 KiB)."""
    for field in ("__name__", "__qualname__"):
        try:
            value = getattr(original, field, attribute)
        except Exception:  # noqa: BLE001
            value = attribute
        setattr(wrapper, field, value if type(value) is str else attribute)
    wrapper.__module__ = module_name


class _GuardLoader:
    """Runs the real loader, then has the new module wrapped."""

    def __init__(self, loader: "Any", guard: _Guard) -> None:
        self._loader = loader
        self._guard = guard

    def create_module(self, spec: "Any") -> "Any":
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: "Any") -> None:
        # A forbidden module imported while another is being imported is wrapped only
        # when the outermost one is done: random instantiates its Random at import,
        # a subclass of _random.Random, which must not be wrapped yet.
        guard = self._guard
        guard.depth += 1
        try:
            self._loader.exec_module(module)
            guard.pending.append(module)
        finally:
            guard.depth -= 1
            if guard.depth == 0:
                guard.flush()

    def __getattr__(self, name: str) -> "Any":
        return getattr(self._loader, name)


class _GuardFinder:
    """First on ``sys.meta_path``: finds forbidden modules through the other finders and
    puts their loader behind ``_GuardLoader``."""

    def __init__(self, guard: _Guard) -> None:
        self._guard = guard

    def find_spec(self, fullname: str, path: "Any" = None, target: "Any" = None) -> "Any":
        if not self._guard.forbidden(fullname):
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, _GuardFinder):
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _GuardLoader(spec.loader, self._guard)
        return spec

    def invalidate_caches(self) -> None:
        return None


def install(forbidden: "Iterable[str]", readable: "Iterable[str] | None" = None) -> None:
    """Guard the forbidden modules (policy entries, dotted ones included) that are loaded
    now, and every one imported later. In the zygote, before it forks, with the audit
    hook installed but not armed. ``readable``: the directories the ``PATH_CHECKED``
    calls may look at (the standard library, as in the Landlock rules); by default the
    absolute entries of ``sys.path``. Every directory left on ``sys.path`` must be
    beneath ``readable``: the import system stats its entries on every import, and a
    child would be refused its imports (take the runtime's own directory off sys.path
    before forking). Calling it again adds entries."""
    if readable is None:
        readable = [path for path in sys.path if type(path) is str and path.startswith("/")]
    for finder in sys.meta_path:
        if isinstance(finder, _GuardFinder):
            guard = finder._guard
            break
    else:
        guard = _Guard([str(path).rstrip("/") or "/" for path in readable])
        sys.meta_path.insert(0, _GuardFinder(guard))
    guard.add(list(forbidden))
    guard.guard_loaded()
