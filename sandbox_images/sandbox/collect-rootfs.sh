#!/bin/bash
# Copy the python3.11 interpreter, its standard library and every shared library they
# need into $1, as the root filesystem of a FROM-scratch sandbox image.
set -euo pipefail
out=$1
mkdir -p "$out"/{usr/bin,usr/lib,usr/lib64,etc,opt/azr,run/azr,tmp,proc,dev,sys}
# usr-merge, as in Debian: /lib -> usr/lib, /lib64 -> usr/lib64, /bin -> usr/bin.
for d in lib lib64 bin; do
    if [[ -L /$d ]]; then ln -s "$(readlink /$d)" "$out/$d"; else mkdir -p "$out/$d"; fi
done
copy() { cp -a --parents "$@" "$out"/; }

copy /usr/bin/python3.11
ln -s python3.11 "$out/usr/bin/python3"
# The standard library without the parts no program can use here.
copy /usr/lib/python3.11
rm -rf "$out"/usr/lib/python3.11/{ensurepip,idlelib,tkinter,lib2to3,pydoc_data,test,turtledemo,venv,config-3.11-x86_64-linux-gnu}
find "$out/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} +
# Byte-compile once so imports never try to write (the root fs is read-only anyway).
/usr/bin/python3.11 -m compileall -q -j0 "$out/usr/lib/python3.11" >/dev/null || true

# Shared libraries: the interpreter's and every extension module's closure.
libs=$( { ldd /usr/bin/python3.11; find /usr/lib/python3.11/lib-dynload -name '*.so' -exec ldd {} \; ; } \
        | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | sort -u)
for lib in $libs; do
    [[ -e $lib ]] || continue
    copy "$lib"
    real=$(readlink -f "$lib"); [[ $real == "$lib" ]] || copy "$real"
done
copy /lib64/ld-linux-x86-64.so.2 "$(readlink -f /lib64/ld-linux-x86-64.so.2)"
# ctypes.CDLL(None) / find_library need libc by soname only; also libgcc_s for threads.
for extra in /lib/x86_64-linux-gnu/libgcc_s.so.1; do [[ -e $extra ]] && copy "$extra"; done

cat >"$out/etc/passwd" <<'P'
root:x:0:0:root:/nonexistent:/usr/sbin/nologin
sandbox:x:60999:60999:sandbox:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
P
cat >"$out/etc/group" <<'G'
root:x:0:
sandbox:x:60999:
nogroup:x:65534:
G
: >"$out/etc/shadow"; chmod 0600 "$out/etc/shadow"
cp /etc/ld.so.cache "$out/etc/" 2>/dev/null || true
# The runtime: launch.py with the runtime package beside it (its Python files; the C
# source stays in the build stage) and the fork loop built from it.
cp /opt/azr/launch.py /opt/azr/_azr_spawn.so "$out/opt/azr/"
(cd /opt/azr && find runtime -name __pycache__ -prune -o -type f ! -name '*.c' ! -name '*.pyc' -print \
    | while read -r file; do copy_to="$out/opt/azr/$file"; mkdir -p "$(dirname "$copy_to")"; cp "$file" "$copy_to"; done)
find "$out/opt/azr" -type f -exec chmod 0444 {} +
find "$out/opt/azr" -type d -exec chmod 0555 {} +
chmod 0755 "$out/opt/azr"; chmod 0700 "$out/run/azr"; chmod 1777 "$out/tmp"

# Smoke test inside the collected tree: everything the runtime imports must load.
chroot "$out" /usr/bin/python3 -s -S -B -c "import ctypes, json, resource, select, socket, struct; ctypes.CDLL(None).prctl"
chroot "$out" /usr/bin/python3 -s -S -B -c "import sys; sys.path.insert(0, '/opt/azr'); import _azr_spawn, runtime.wire"
