"""The sandbox runtime: the warm fork server ("zygote") that runs untrusted programs.

Standard library only: the same package runs in the sandbox interpreter (Debian's
``python3``, locally or in a sandbox container) and is imported by the host side for
its wire constants. One module per mechanism, in the way nsjail keeps one file per
confinement mechanism:

* ``wire``      the byte layout of every message between host and zygote;
* ``landlock``  read-only filesystem view (kernel, inherited by every child);
* ``seccomp``   the zygote's denylist stage and the child's allowlist (kernel);
* ``audit``     the Python audit hook (an early filter, not a wall);
* ``guards``    forbidden modules refused at run time (an early filter, not a wall);
* ``zygote``    start-up: reads the hello, applies the layers, hands over to the C loop;
* ``spawn.c``   the C loop: fork per job, confine, run ``f`` and report, in C.
"""

RUNTIME_VERSION = "5"
