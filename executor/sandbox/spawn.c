/*
 * _azr_spawn: the zygote's fork-and-collect loop in C.
 *
 * Why C: a forked CPython process pays a copy-on-write page fault for every memory page
 * it writes, and interpreted Python writes many (reference counts, frames, small
 * allocations). Doing the per-child bookkeeping in Python cost about 100 faults in the
 * zygote and 100 more in each child before the program even ran. Here the zygote's loop
 * (pipe, fork, process group, deadline, read, kill, reap) and the child's confinement
 * (closing inherited descriptors, uid/gid, rlimits, seccomp) touch only a C stack and a
 * few buffers; the child calls back into Python only to run the job itself.
 *
 * One function:
 *
 *   run_batch(jobs, child, drop_to, seccomp_filter, no_new_privs, marker_prefix, max_bytes)
 *       jobs            list of (timeout_s: float, rlimits: tuple of (resource, value))
 *       child           callable(index) -> bytes, the job's encoded result; runs in the
 *                       confined child
 *       drop_to         (gid, uid) or None
 *       seccomp_filter  raw struct sock_filter bytes to attach in each child, or None
 *       no_new_privs    set PR_SET_NO_NEW_PRIVS in the child first (full filter per child)
 *       marker_prefix   bytes; the child writes prefix + 32 random hex digits + "\n"
 *                       before its payload, and only C code ever holds the digits
 *       max_bytes       more than this on the result channel is a flood: stop and kill
 *   returns a list, per job, of (kind, data, wait_status, wall_ms, maxrss_kb, cpu_ms):
 *       kind 0: a result; data is the payload after the marker
 *       kind 1: the wall-clock deadline passed (or the channel flooded); data is raw
 *       kind 2: no valid result (crash, exit, bad marker); data is raw
 *       kind 3: the zygote could not start the child; data is the error text
 *
 * Linux only. Behaviour matches the pure-Python loop in runtime.py (Zygote.run).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RLIMITS 16
#define MARKER_MAX 128
#define READ_CHUNK 65536

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

typedef struct {
    double timeout_s;
    int n_rlimits;
    int resources[MAX_RLIMITS];
    rlim_t values[MAX_RLIMITS];
} job_spec;

typedef struct {
    int kind;
    char *data;
    size_t size;
    int wait_status;
    double wall_ms;
    long maxrss_kb;
    double cpu_ms;
} job_outcome;

static double
monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6;
}

static int
write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += written;
        size -= (size_t)written;
    }
    return 0;
}

static void
close_inherited(int keep)
{
    if (keep > 3 && syscall(SYS_close_range, 3, keep - 1, 0) != 0) {
        for (int fd = 3; fd < keep; fd++)
            close(fd);
    }
    if (syscall(SYS_close_range, keep + 1, ~0U, 0) != 0) {
        for (int fd = keep + 1; fd < 65536; fd++)
            close(fd);
    }
}

/* The forked child: confine, run the job in Python, write marker + payload, exit. */
static void
child_main(PyObject *child, Py_ssize_t index, const job_spec *spec, int result_fd,
           const char *marker, size_t marker_size, long drop_gid, long drop_uid,
           const struct sock_fprog *filter, int no_new_privs)
{
    close_inherited(result_fd);
    if (drop_uid >= 0) {
        if (setgid((gid_t)drop_gid) != 0 || setuid((uid_t)drop_uid) != 0)
            _exit(71);
    }
    for (int i = 0; i < spec->n_rlimits; i++) {
        struct rlimit limit = {spec->values[i], spec->values[i]};
        setrlimit(spec->resources[i], &limit); /* an unknown resource is not fatal */
    }
    if (filter != NULL) {
        if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            _exit(71);
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, filter, 0, 0) != 0)
            _exit(71);
    }
    PyObject *argument = PyLong_FromSsize_t(index);
    PyObject *payload = argument ? PyObject_CallOneArg(child, argument) : NULL;
    if (payload == NULL || !PyBytes_Check(payload))
        _exit(71);
    if (write_all(result_fd, marker, marker_size) != 0 ||
        write_all(result_fd, PyBytes_AS_STRING(payload), (size_t)PyBytes_GET_SIZE(payload)) != 0)
        _exit(71);
    _exit(0);
}

static int
append(job_outcome *out, size_t *capacity, const char *chunk, size_t size)
{
    if (out->size + size > *capacity) {
        size_t wanted = *capacity ? *capacity : 4096;
        while (wanted < out->size + size)
            wanted *= 2;
        char *grown = realloc(out->data, wanted);
        if (grown == NULL)
            return -1;
        out->data = grown;
        *capacity = wanted;
    }
    memcpy(out->data + out->size, chunk, size);
    out->size += size;
    return 0;
}

/* Kind 3: the zygote could not start the child; the data says why. */
static void
not_started(job_outcome *out, const char *what, int error)
{
    size_t capacity = 0;
    const char *text = strerror(error);
    out->kind = 3;
    append(out, &capacity, what, strlen(what));
    append(out, &capacity, text, strlen(text));
}

/* Wait until the child's result channel closes and the child has exited (not reaped),
   or until the deadline. Returns 1 if the deadline passed or the channel flooded. */
static int
collect(pid_t pid, int read_fd, double deadline_ms, size_t max_bytes, job_outcome *out)
{
    size_t capacity = 0;
    char chunk[READ_CHUNK];
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int reading = 1;
    int timed_out = 0;
    for (;;) {
        double remaining = deadline_ms - monotonic_ms();
        if (remaining <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd watch = {.fd = reading ? read_fd : pidfd, .events = POLLIN};
        if (!reading && pidfd < 0) {
            /* No pidfd (an old kernel or a seccomp profile without it): poll the exit. */
            siginfo_t info;
            memset(&info, 0, sizeof info);
            if (waitid(P_PID, pid, &info, WEXITED | WNOWAIT | WNOHANG) == 0 && info.si_pid == pid)
                break;
            struct timespec pause = {0, 200000};
            nanosleep(&pause, NULL);
            continue;
        }
        struct timespec wait = {(time_t)(remaining / 1000.0),
                                (long)((remaining - 1000.0 * (time_t)(remaining / 1000.0)) * 1e6)};
        int ready = ppoll(&watch, 1, &wait, NULL);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            timed_out = 1;
            break;
        }
        if (ready == 0)
            continue; /* the loop head sees the deadline */
        if (!reading)
            break; /* the pidfd is readable: the child has exited */
        ssize_t got = read(read_fd, chunk, sizeof chunk);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            reading = 0;
            continue;
        }
        if (got == 0) {
            reading = 0;
            continue;
        }
        if (out->size + (size_t)got > max_bytes) {
            out->size = 0; /* a flood on the result channel: stop it now */
            timed_out = 1;
            break;
        }
        if (append(out, &capacity, chunk, (size_t)got) != 0) {
            timed_out = 1;
            break;
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return timed_out;
}

static void
run_one(PyObject *child, Py_ssize_t index, const job_spec *spec, const char *prefix,
        size_t prefix_size, long drop_gid, long drop_uid, const struct sock_fprog *filter,
        int no_new_privs, size_t max_bytes, job_outcome *out)
{
    char marker[MARKER_MAX];
    unsigned char random_bytes[16];
    static const char hex[] = "0123456789abcdef";
    size_t filled = 0;
    while (filled < sizeof random_bytes) {
        ssize_t got = getrandom(random_bytes + filled, sizeof random_bytes - filled, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        filled += (size_t)got;
    }
    memcpy(marker, prefix, prefix_size);
    for (int i = 0; i < 16; i++) {
        marker[prefix_size + 2 * i] = hex[random_bytes[i] >> 4];
        marker[prefix_size + 2 * i + 1] = hex[random_bytes[i] & 15];
    }
    marker[prefix_size + 32] = '\n';
    size_t marker_size = prefix_size + 33;

    int fds[2];
    if (filled < sizeof random_bytes || pipe2(fds, O_CLOEXEC) != 0) {
        not_started(out, filled < sizeof random_bytes ? "getrandom failed: " : "pipe failed: ", errno);
        return;
    }
    double started = monotonic_ms();
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        PyOS_AfterFork_Child();
        close(fds[0]);
        child_main(child, index, spec, fds[1], marker, marker_size, drop_gid, drop_uid, filter,
                   no_new_privs);
    }
    int fork_errno = errno;
    PyOS_AfterFork_Parent();
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        not_started(out, "fork failed: ", fork_errno);
        return;
    }
    setpgid(pid, pid); /* before any kill: the whole group is what gets SIGKILL */
    int timed_out = collect(pid, fds[0], started + spec->timeout_s * 1000.0, max_bytes, out);
    close(fds[0]);
    /* The child is a zombie now (or past its deadline): SIGKILL its whole group while the
       group still exists, then reap it. */
    if (kill(-pid, SIGKILL) != 0)
        kill(pid, SIGKILL);
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR)
        ;
    out->wall_ms = monotonic_ms() - started;
    out->wait_status = status;
    out->maxrss_kb = usage.ru_maxrss;
    out->cpu_ms = (double)usage.ru_utime.tv_sec * 1000.0 + (double)usage.ru_utime.tv_usec / 1000.0 +
                  (double)usage.ru_stime.tv_sec * 1000.0 + (double)usage.ru_stime.tv_usec / 1000.0;
    if (timed_out) {
        out->kind = 1;
    } else if (status == 0 && out->size >= marker_size && memcmp(out->data, marker, marker_size) == 0) {
        out->kind = 0;
        memmove(out->data, out->data + marker_size, out->size - marker_size);
        out->size -= marker_size;
    } else {
        out->kind = 2;
    }
}

static int
parse_job(PyObject *item, job_spec *spec)
{
    PyObject *rlimits;
    if (!PyArg_ParseTuple(item, "dO!", &spec->timeout_s, &PyTuple_Type, &rlimits))
        return -1;
    Py_ssize_t count = PyTuple_GET_SIZE(rlimits);
    if (count > MAX_RLIMITS) {
        PyErr_SetString(PyExc_ValueError, "too many rlimits");
        return -1;
    }
    spec->n_rlimits = (int)count;
    for (Py_ssize_t i = 0; i < count; i++) {
        long long value;
        int resource;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(rlimits, i), "iL", &resource, &value))
            return -1;
        spec->resources[i] = resource;
        spec->values[i] = value < 0 ? RLIM_INFINITY : (rlim_t)value;
    }
    if (!(spec->timeout_s > 0))
        spec->timeout_s = 0.001;
    return 0;
}

static PyObject *
run_batch(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *jobs, *child, *drop_to, *filter_bytes;
    int no_new_privs;
    const char *prefix;
    Py_ssize_t prefix_size, max_bytes;
    if (!PyArg_ParseTuple(args, "O!OOOpy#n", &PyList_Type, &jobs, &child, &drop_to, &filter_bytes,
                          &no_new_privs, &prefix, &prefix_size, &max_bytes))
        return NULL;
    if (!PyCallable_Check(child)) {
        PyErr_SetString(PyExc_TypeError, "child must be callable");
        return NULL;
    }
    if (prefix_size + 33 > MARKER_MAX) {
        PyErr_SetString(PyExc_ValueError, "marker prefix too long");
        return NULL;
    }
    long drop_gid = -1, drop_uid = -1;
    if (drop_to != Py_None && !PyArg_ParseTuple(drop_to, "ll", &drop_gid, &drop_uid))
        return NULL;
    struct sock_fprog filter;
    struct sock_fprog *filter_pointer = NULL;
    if (filter_bytes != Py_None) {
        if (!PyBytes_Check(filter_bytes) || PyBytes_GET_SIZE(filter_bytes) % sizeof(struct sock_filter)) {
            PyErr_SetString(PyExc_ValueError, "seccomp_filter must be struct sock_filter bytes");
            return NULL;
        }
        filter.len = (unsigned short)(PyBytes_GET_SIZE(filter_bytes) / sizeof(struct sock_filter));
        filter.filter = (struct sock_filter *)PyBytes_AS_STRING(filter_bytes);
        filter_pointer = &filter;
    }

    Py_ssize_t count = PyList_GET_SIZE(jobs);
    job_spec *specs = PyMem_Calloc((size_t)(count ? count : 1), sizeof(job_spec));
    job_outcome *outcomes = PyMem_Calloc((size_t)(count ? count : 1), sizeof(job_outcome));
    if (specs == NULL || outcomes == NULL) {
        PyMem_Free(specs);
        PyMem_Free(outcomes);
        return PyErr_NoMemory();
    }
    /* Everything is parsed before the first fork: between forks, nothing but C runs here. */
    for (Py_ssize_t i = 0; i < count; i++) {
        if (parse_job(PyList_GET_ITEM(jobs, i), &specs[i]) != 0) {
            PyMem_Free(specs);
            PyMem_Free(outcomes);
            return NULL;
        }
    }
    Py_INCREF(child);
    Py_INCREF(filter_bytes);
    for (Py_ssize_t i = 0; i < count; i++)
        run_one(child, i, &specs[i], prefix, (size_t)prefix_size, drop_gid, drop_uid, filter_pointer,
                no_new_privs, (size_t)max_bytes, &outcomes[i]);
    Py_DECREF(filter_bytes);
    Py_DECREF(child);

    PyObject *results = PyList_New(count);
    for (Py_ssize_t i = 0; results != NULL && i < count; i++) {
        job_outcome *out = &outcomes[i];
        PyObject *record = Py_BuildValue("iy#iddd", out->kind, out->data ? out->data : "",
                                         (Py_ssize_t)out->size, out->wait_status, out->wall_ms,
                                         (double)out->maxrss_kb, out->cpu_ms);
        if (record == NULL) {
            Py_CLEAR(results);
            break;
        }
        PyList_SET_ITEM(results, i, record);
    }
    for (Py_ssize_t i = 0; i < count; i++)
        free(outcomes[i].data);
    PyMem_Free(specs);
    PyMem_Free(outcomes);
    return results;
}

static PyMethodDef spawn_methods[] = {
    {"run_batch", run_batch, METH_VARARGS,
     "run_batch(jobs, child, drop_to, seccomp_filter, no_new_privs, marker_prefix, max_bytes)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef spawn_module = {
    PyModuleDef_HEAD_INIT, "_azr_spawn", "The zygote's fork-and-collect loop in C.", -1, spawn_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__azr_spawn(void)
{
    return PyModule_Create(&spawn_module);
}
