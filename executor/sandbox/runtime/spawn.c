/*
 * _azr_spawn: the zygote's serve loop, the child's confinement and the child's runner, in C.
 *
 * The zygote (runtime/zygote.py) sets itself up in Python, then hands over to `serve`, which
 * never runs Python in the zygote again. Per job:
 *
 *   zygote: read ONE job frame (only while a fast slot is free), fork, forget the job.
 *   child:  close every inherited descriptor, unmap every other slot's result page, drop to
 *           the sandbox uid/gid, set rlimits, attach the seccomp allowlist; then compile the
 *           program and the input, run the program, call f `calls` times, take repr() of
 *           each value, and write the report into this slot's shared result page. All of
 *           the report is made here in C: program code can change what f returns, not how
 *           the result is reported, and it never learns what the result will be compared
 *           with (nothing but the program and the input ever reach a child).
 *   zygote: on the child's exit (pidfd) or its wall-clock deadline (SIGKILL of its process
 *           group), reap it and send a record frame: the report, or why there is none.
 *
 * A child that has run longer than `demote_after_ms` is demoted: its niceness drops to
 * `demoted_nice` and it stops counting against the fast slots, so a long or sleeping
 * program never holds a zygote's whole capacity (a DEMOTED record tells the host).
 *
 * The byte layouts are in runtime/wire.py. Module functions:
 *   serve(in_fd, out_fd, settings, writer)    -> None at end of input
 *   landlock_abi()                            -> int (negative errno when unavailable)
 *   landlock_restrict(fs, net, scoped, rules) -> None, OSError on failure
 *   seccomp_attach(filter_bytes)              -> None (sets no_new_privs first)
 *   malloc_trim()                             -> None
 *
 * Linux only.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define KIND_RESULT 0
#define KIND_TIMEOUT 1
#define KIND_NO_RESULT 2
#define KIND_NOT_STARTED 3
#define KIND_DEMOTED 4

#define ST_OK 0
#define ST_RUNTIME_ERROR 1
#define ST_INVALID_INPUT 2
#define ST_BAD_FORM 3
#define ST_SYNTAX_ERROR 4
#define ST_MEMORY_LIMIT 5
#define ST_OUTPUT_LIMIT 6
#define ST_FORBIDDEN 7

#define JOB_HEADER 36 /* >QdIIIII */
#include <marshal.h>
#define RECORD_HEADER 37 /* >QBiddQ */
#define REPORT_DONE 0x41525a31u /* "AZR1" */
#define MAX_CALLS 8
#define MAX_RLIMITS 8
#define DETAIL_CHARS 500

typedef struct {
    uint32_t done;
    uint32_t size;
    char data[];
} report_page;

typedef struct {
    int used;
    pid_t pid;
    int pidfd;
    uint64_t job_id;
    double started_ms;
    double deadline_ms;
    int demoted;
    int timed_out;
} slot_state;

typedef struct {
    int fast_slots;
    int max_live;
    double demote_after_ms;
    int demoted_nice;
    Py_ssize_t page_bytes;
    Py_ssize_t max_output_chars;
    long drop_gid;
    long drop_uid;
    const char *child_filter;
    Py_ssize_t child_filter_size;
    int nproc_limit;
} serve_settings;

/* ------------------------------------------------------------------ small helpers */

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

/* 0 on success, 1 at a clean end of stream before any byte, -1 on error or a cut frame. */
static int
read_all(int fd, char *data, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            return got == 0 ? 1 : -1;
        got += (size_t)n;
    }
    return 0;
}

static void
put_u32(char *out, uint32_t value)
{
    out[0] = (char)(value >> 24);
    out[1] = (char)(value >> 16);
    out[2] = (char)(value >> 8);
    out[3] = (char)value;
}

static uint32_t
get_u32(const char *in)
{
    const unsigned char *p = (const unsigned char *)in;
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t
get_u64(const char *in)
{
    return ((uint64_t)get_u32(in) << 32) | get_u32(in + 4);
}

static void
put_u64(char *out, uint64_t value)
{
    put_u32(out, (uint32_t)(value >> 32));
    put_u32(out + 4, (uint32_t)value);
}

static double
get_f64(const char *in)
{
    uint64_t bits = get_u64(in);
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static void
put_f64(char *out, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_u64(out, bits);
}

/* ------------------------------------------------------------------ the child's report */

typedef struct {
    report_page *page;
    size_t capacity; /* bytes of page->data */
    size_t size;
    int overflow;
} report;

static void
report_bytes(report *r, const char *data, size_t size)
{
    if (r->overflow || r->size + size > r->capacity) {
        r->overflow = 1;
        return;
    }
    memcpy(r->page->data + r->size, data, size);
    r->size += size;
}

static void
report_text(report *r, const char *data, size_t size)
{
    char length[4];
    put_u32(length, (uint32_t)size);
    report_bytes(r, length, 4);
    report_bytes(r, data, size);
}

/* A str as UTF-8, lone surrogates as backslash escapes; NULL (no exception) on failure. */
static PyObject *
utf8_of(PyObject *text)
{
    PyObject *encoded = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
    if (encoded == NULL)
        PyErr_Clear();
    return encoded;
}

/* The outcome of one execution, built up by the runner. */
typedef struct {
    int status;
    int n_outputs;
    PyObject *outputs[MAX_CALLS]; /* UTF-8 bytes */
    PyObject *detail;             /* str or NULL */
} outcome;

static void
set_detail(outcome *o, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    PyObject *text = PyUnicode_FromFormatV(format, args);
    va_end(args);
    if (text == NULL)
        PyErr_Clear();
    Py_XSETREF(o->detail, text);
}

/* Turn the pending exception into the outcome: "<Type> <where>: <message>". */
static void
fail_with_exception(outcome *o, int status, const char *where)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    Py_XDECREF(traceback);
    if (type != NULL && PyErr_GivenExceptionMatches(type, PyExc_MemoryError)) {
        o->status = ST_MEMORY_LIMIT;
        set_detail(o, "MemoryError %s: the memory limit was reached", where);
        Py_XDECREF(type);
        Py_XDECREF(value);
        return;
    }
    const char *name = (type != NULL && PyType_Check(type)) ? ((PyTypeObject *)type)->tp_name : "Exception";
    const char *dot = strrchr(name, '.');
    if (dot != NULL)
        name = dot + 1;
    PyObject *message = value != NULL ? PyObject_Str(value) : NULL;
    if (message == NULL) {
        PyErr_Clear();
        message = PyUnicode_FromString("<unprintable>");
    } else if (PyUnicode_GET_LENGTH(message) > DETAIL_CHARS) {
        PyObject *cut = PyUnicode_Substring(message, 0, DETAIL_CHARS);
        Py_SETREF(message, cut != NULL ? PyUnicode_FromFormat("%U... (%zd chars)", cut,
                                                              PyUnicode_GET_LENGTH(message))
                                       : NULL);
        Py_XDECREF(cut);
        if (message == NULL) {
            PyErr_Clear();
            message = PyUnicode_FromString("<unprintable>");
        }
    }
    o->status = status;
    set_detail(o, "%s %s: %U", name, where, message);
    Py_XDECREF(message);
    Py_XDECREF(type);
    Py_XDECREF(value);
}

/* Refuse, before repr() builds it, a builtin value whose repr cannot fit the limit. */
static Py_ssize_t
repr_floor(PyObject *value)
{
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value) || PyAnySet_CheckExact(value))
        return 2 * PyObject_Length(value);
    if (PyDict_CheckExact(value))
        return 4 * PyDict_GET_SIZE(value);
    if (PyUnicode_CheckExact(value))
        return PyUnicode_GET_LENGTH(value);
    if (PyBytes_CheckExact(value) || PyByteArray_CheckExact(value))
        return PyObject_Length(value);
    return 0;
}

/* Run one job in this (confined) child. Program code runs only inside the calls below;
   everything that decides what is reported is this function's C locals. */
static void
run_job(const char *program, size_t program_size, const char *compiled, size_t compiled_size,
        const char *input, size_t input_size, int calls, Py_ssize_t max_output_chars, PyObject *writer,
        outcome *o)
{
    PyObject *code = NULL, *argument_source = NULL, *argument_code = NULL;
    PyObject *namespace = NULL, *function = NULL, *literal_names = NULL;
    PyObject *program_text = PyUnicode_DecodeUTF8(program, (Py_ssize_t)program_size, "surrogatepass");
    PyObject *input_text = PyUnicode_DecodeUTF8(input, (Py_ssize_t)input_size, "surrogatepass");
    o->status = ST_OK;
    if (program_text == NULL || input_text == NULL) {
        fail_with_exception(o, ST_SYNTAX_ERROR, "while decoding the request");
        goto done;
    }
    /* Compiling runs no program code: both happen before the audit hook is armed. The host may
       have compiled the program already (it is trusted, and compiles once for every run). */
    if (compiled_size > 0) {
        code = PyMarshal_ReadObjectFromString(compiled, (Py_ssize_t)compiled_size);
        if (code == NULL || !PyCode_Check(code)) {
            PyErr_Clear();
            Py_CLEAR(code);
        }
    }
    if (code == NULL)
        code = Py_CompileStringExFlags(program, "<program>", Py_file_input, NULL, -1);
    if (code == NULL) {
        fail_with_exception(o, ST_SYNTAX_ERROR, "while compiling the program");
        goto done;
    }
    argument_source = PyUnicode_FromFormat("(lambda *args, **kwargs: (args, kwargs))(%U\n)", input_text);
    const char *argument_utf8 = argument_source == NULL ? NULL : PyUnicode_AsUTF8(argument_source);
    argument_code = argument_utf8 == NULL ? NULL
                                          : Py_CompileStringExFlags(argument_utf8, "<input>", Py_eval_input, NULL, -1);
    if (argument_code == NULL) {
        fail_with_exception(o, ST_INVALID_INPUT, "while compiling the input");
        goto done;
    }
    namespace = PyDict_New();
    if (namespace == NULL || PyDict_SetItemString(namespace, "__name__", PyUnicode_FromString("__main__")) ||
        PyDict_SetItemString(namespace, "__builtins__", PyEval_GetBuiltins())) {
        fail_with_exception(o, ST_MEMORY_LIMIT, "while preparing the namespace");
        goto done;
    }

    /* The names a literal may hold (repr writes inf and nan; set() and frozenset({...})) mean
       the builtin values in an argument list, whatever the program binds to them: the
       input's own scope, looked up before the program's globals. Made before any program code. */
    literal_names = PyDict_New();
    PyObject *inf = PyFloat_FromDouble(Py_HUGE_VAL), *nan = PyFloat_FromDouble(Py_NAN);
    if (literal_names == NULL || inf == NULL || nan == NULL || PyDict_SetItemString(literal_names, "inf", inf) ||
        PyDict_SetItemString(literal_names, "nan", nan) ||
        PyDict_SetItemString(literal_names, "set", (PyObject *)&PySet_Type) ||
        PyDict_SetItemString(literal_names, "frozenset", (PyObject *)&PyFrozenSet_Type)) {
        Py_XDECREF(inf);
        Py_XDECREF(nan);
        fail_with_exception(o, ST_MEMORY_LIMIT, "while preparing the namespace");
        goto done;
    }
    Py_DECREF(inf);
    Py_DECREF(nan);
    if (PySys_Audit("azr.sandbox.arm", NULL) < 0) {
        fail_with_exception(o, ST_RUNTIME_ERROR, "while arming the sandbox");
        goto done;
    }
    PyObject *ran = PyEval_EvalCode(code, namespace, namespace);
    if (ran == NULL) {
        fail_with_exception(o, ST_RUNTIME_ERROR, "while running the program's top level");
        goto done;
    }
    Py_DECREF(ran);
    function = PyDict_GetItemString(namespace, "f");
    if (function == NULL || !PyCallable_Check(function)) {
        function = NULL;
        o->status = ST_BAD_FORM;
        set_detail(o, "the program does not define a callable f");
        goto done;
    }
    Py_INCREF(function);
    PyObject *zero = PyLong_FromLong(0);
    for (int call = 0; call < calls && o->status == ST_OK; call++) {
        if (writer != Py_None && zero != NULL && PyObject_SetAttrString(writer, "written", zero) < 0)
            PyErr_Clear();
        PyObject *pair = PyEval_EvalCode(argument_code, namespace, literal_names);
        if (pair == NULL) {
            fail_with_exception(o, ST_INVALID_INPUT, "while evaluating the input");
            break;
        }
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyTuple_CheckExact(PyTuple_GET_ITEM(pair, 0)) || !PyDict_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            Py_DECREF(pair);
            o->status = ST_INVALID_INPUT;
            set_detail(o, "the input is not an argument list");
            break;
        }
        PyObject *value = PyObject_Call(function, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
        Py_DECREF(pair);
        if (value == NULL) {
            fail_with_exception(o, ST_RUNTIME_ERROR, "in f");
            break;
        }
        /* repr() now: f may hand back the same object again, mutated. */
        Py_ssize_t floor = repr_floor(value);
        if (floor < 0) {
            PyErr_Clear();
            floor = 0;
        }
        if (floor > max_output_chars) {
            o->status = ST_OUTPUT_LIMIT;
            set_detail(o, "the output's repr() has at least %zd characters (%s of %zd), over the limit of %zd",
                       floor, Py_TYPE(value)->tp_name, PyObject_Length(value), max_output_chars);
            Py_DECREF(value);
            break;
        }
        PyObject *text = PyObject_Repr(value);
        Py_DECREF(value);
        if (text == NULL) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
                PyErr_Clear();
                o->status = ST_OUTPUT_LIMIT;
                set_detail(o, "the output is too large: its repr() does not fit in the memory limit");
            } else {
                fail_with_exception(o, ST_RUNTIME_ERROR, "while taking repr() of the output");
            }
            break;
        }
        if (PyUnicode_GET_LENGTH(text) > max_output_chars) {
            o->status = ST_OUTPUT_LIMIT;
            set_detail(o, "the output's repr() has %zd characters, over the limit of %zd",
                       PyUnicode_GET_LENGTH(text), max_output_chars);
            Py_DECREF(text);
            break;
        }
        PyObject *encoded = utf8_of(text);
        Py_DECREF(text);
        if (encoded == NULL) {
            o->status = ST_OUTPUT_LIMIT;
            set_detail(o, "the output's repr() could not be encoded");
            break;
        }
        o->outputs[o->n_outputs++] = encoded;
    }
    Py_XDECREF(zero);

done:
    if (PyErr_Occurred())
        PyErr_Clear();
    /* What the audit hook refused, even if the program caught the error. */
    PyObject *violations = PyList_New(0);
    if (violations != NULL && PySys_Audit("azr.sandbox.violations", "(O)", violations) == 0 &&
        PyList_GET_SIZE(violations) > 0) {
        PyObject *separator = PyUnicode_FromString("; ");
        Py_ssize_t shown = PyList_GET_SIZE(violations) < 5 ? PyList_GET_SIZE(violations) : 5;
        PyObject *first = PyList_GetSlice(violations, 0, shown);
        PyObject *joined = (separator && first) ? PyUnicode_Join(separator, first) : NULL;
        o->status = ST_FORBIDDEN;
        if (joined != NULL)
            set_detail(o, "the program attempted a forbidden operation at run time: %U", joined);
        else
            set_detail(o, "the program attempted a forbidden operation at run time");
        Py_XDECREF(joined);
        Py_XDECREF(first);
        Py_XDECREF(separator);
    } else if (writer != Py_None && (o->status == ST_OK || o->status == ST_RUNTIME_ERROR)) {
        PyObject *flooded = PyObject_GetAttrString(writer, "flooded");
        if (flooded != NULL && PyObject_IsTrue(flooded) == 1) {
            PyObject *limit = PyObject_GetAttrString(writer, "limit");
            o->status = ST_OUTPUT_LIMIT;
            set_detail(o, "the program printed more than %S characters", limit ? limit : Py_None);
            Py_XDECREF(limit);
        }
        Py_XDECREF(flooded);
    }
    if (PyErr_Occurred())
        PyErr_Clear();
    Py_XDECREF(violations);
    Py_XDECREF(function);
    Py_XDECREF(literal_names);
    Py_XDECREF(namespace);
    Py_XDECREF(argument_code);
    Py_XDECREF(argument_source);
    Py_XDECREF(code);
    Py_XDECREF(program_text);
    Py_XDECREF(input_text);
}

static void
write_report(report *r, outcome *o)
{
    char head[2] = {(char)o->status, (char)(o->status == ST_OK ? o->n_outputs : 0)};
    report_bytes(r, head, 2);
    if (o->status == ST_OK) {
        for (int i = 0; i < o->n_outputs; i++)
            report_text(r, PyBytes_AS_STRING(o->outputs[i]), (size_t)PyBytes_GET_SIZE(o->outputs[i]));
    }
    PyObject *detail = o->detail != NULL ? utf8_of(o->detail) : NULL;
    if (detail != NULL)
        report_text(r, PyBytes_AS_STRING(detail), (size_t)PyBytes_GET_SIZE(detail));
    else
        report_text(r, "", 0);
    if (r->overflow) {
        /* Cannot happen with a page sized for the output limit; say so rather than lie. */
        static const char message[] = "the report did not fit its page";
        r->overflow = 0;
        r->size = 0;
        char failed[2] = {ST_OUTPUT_LIMIT, 0};
        report_bytes(r, failed, 2);
        report_text(r, message, sizeof message - 1);
    }
    r->page->size = (uint32_t)r->size;
    r->page->done = REPORT_DONE;
}

/* ------------------------------------------------------------------ the child */

static void
close_inherited(void)
{
    if (syscall(SYS_close_range, 3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 65536; fd++)
            close(fd);
    }
}

/* The forked child: confine, run, report, exit. Never returns. */
static void
child_main(const serve_settings *s, char *pages, int slot, const char *job, size_t job_size,
           PyObject *writer)
{
    close_inherited();
    /* Other slots' pages hold other jobs' reports: not this child's to see. */
    size_t page_bytes = (size_t)s->page_bytes;
    if (slot > 0)
        munmap(pages, page_bytes * (size_t)slot);
    if (slot + 1 < s->max_live)
        munmap(pages + page_bytes * (size_t)(slot + 1), page_bytes * (size_t)(s->max_live - slot - 1));
    report_page *page = (report_page *)(pages + page_bytes * (size_t)slot);

    uint32_t cpu_s = get_u32(job + 16);
    uint32_t memory_mb = get_u32(job + 20);
    uint32_t calls = get_u32(job + 24);
    uint32_t program_size = get_u32(job + 28);
    uint32_t compiled_size = get_u32(job + 32);
    if (calls < 1)
        calls = 1;
    if (calls > MAX_CALLS)
        calls = MAX_CALLS;

    if (s->drop_uid >= 0) {
        if (setgid((gid_t)s->drop_gid) != 0 || setuid((uid_t)s->drop_uid) != 0)
            _exit(71);
    }
    struct {
        int resource;
        rlim_t value;
    } limits[MAX_RLIMITS] = {
        {RLIMIT_CPU, cpu_s > 0 ? cpu_s : 1},
        {RLIMIT_AS, (rlim_t)memory_mb * 1024 * 1024},
        {RLIMIT_NPROC, (rlim_t)s->nproc_limit},
        {RLIMIT_NOFILE, 64},
        {RLIMIT_FSIZE, 0},
        {RLIMIT_CORE, 0},
        {RLIMIT_MEMLOCK, 0},
        {RLIMIT_MSGQUEUE, 0},
    };
    for (int i = 0; i < MAX_RLIMITS; i++) {
        struct rlimit limit = {limits[i].value, limits[i].value};
        if (setrlimit(limits[i].resource, &limit) != 0)
            _exit(71);
    }
    if (s->child_filter != NULL) {
        struct sock_fprog filter = {
            .len = (unsigned short)(s->child_filter_size / (Py_ssize_t)sizeof(struct sock_filter)),
            .filter = (struct sock_filter *)s->child_filter,
        };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0) != 0)
            _exit(71);
    }
    if (program_size > job_size - JOB_HEADER || compiled_size > job_size - JOB_HEADER - program_size)
        _exit(72);
    /* The program's bytes must end in NUL for the compiler: copy them (the child's own job). */
    char *program = PyMem_Malloc((size_t)program_size + 1);
    if (program == NULL)
        _exit(73);
    memcpy(program, job + JOB_HEADER, program_size);
    program[program_size] = '\0';
    if (memchr(program, '\0', program_size) != NULL) {
        /* A NUL inside the program: Python's compiler refuses it; say so plainly. */
        outcome o = {0};
        o.status = ST_SYNTAX_ERROR;
        set_detail(&o, "the program contains a NUL character");
        report r = {page, page_bytes - sizeof(report_page), 0, 0};
        write_report(&r, &o);
        _exit(0);
    }
    outcome o = {0};
    const char *compiled = job + JOB_HEADER + program_size;
    const char *input = compiled + compiled_size;
    run_job(program, program_size, compiled, compiled_size, input,
            job_size - JOB_HEADER - program_size - compiled_size, (int)calls, s->max_output_chars, writer, &o);
    report r = {page, page_bytes - sizeof(report_page), 0, 0};
    write_report(&r, &o);
    _exit(0);
}

/* ------------------------------------------------------------------ the zygote's loop */

static int
send_record(int out_fd, uint64_t job_id, int kind, int wait_status, double wall_ms, double cpu_ms,
            long maxrss_kb, const char *payload, size_t payload_size)
{
    char head[4 + RECORD_HEADER];
    put_u32(head, (uint32_t)(RECORD_HEADER + payload_size));
    char *r = head + 4;
    put_u64(r, job_id);
    r[8] = (char)kind;
    put_u32(r + 9, (uint32_t)wait_status);
    put_f64(r + 13, wall_ms);
    put_f64(r + 21, cpu_ms);
    put_u64(r + 29, (uint64_t)(maxrss_kb < 0 ? 0 : maxrss_kb));
    if (write_all(out_fd, head, sizeof head) != 0)
        return -1;
    if (payload_size > 0 && write_all(out_fd, payload, payload_size) != 0)
        return -1;
    return 0;
}

static void
kill_group(pid_t pid)
{
    if (kill(-pid, SIGKILL) != 0)
        kill(pid, SIGKILL);
}

/* Reap a finished (or killed) child and send its record. */
static int
finish(const serve_settings *s, char *pages, int index, slot_state *slot, int out_fd)
{
    kill_group(slot->pid); /* the group still exists while its leader is unreaped */
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    while (wait4(slot->pid, &status, 0, &usage) < 0 && errno == EINTR)
        ;
    if (slot->pidfd >= 0)
        close(slot->pidfd);
    double wall_ms = monotonic_ms() - slot->started_ms;
    double cpu_ms = (double)usage.ru_utime.tv_sec * 1000.0 + (double)usage.ru_utime.tv_usec / 1000.0 +
                    (double)usage.ru_stime.tv_sec * 1000.0 + (double)usage.ru_stime.tv_usec / 1000.0;
    report_page *page = (report_page *)(pages + (size_t)s->page_bytes * (size_t)index);
    size_t capacity = (size_t)s->page_bytes - sizeof(report_page);
    int kind;
    const char *payload = NULL;
    size_t payload_size = 0;
    if (slot->timed_out) {
        kind = KIND_TIMEOUT;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && page->done == REPORT_DONE &&
               page->size <= capacity) {
        kind = KIND_RESULT;
        payload = page->data;
        payload_size = page->size;
    } else {
        kind = KIND_NO_RESULT;
    }
    int sent = send_record(out_fd, slot->job_id, kind, status, wall_ms, cpu_ms, usage.ru_maxrss, payload,
                           payload_size);
    page->done = 0;
    if (payload_size > (1u << 18)) /* hand a big report's pages back */
        madvise(page, (size_t)s->page_bytes, MADV_REMOVE);
    slot->used = 0;
    return sent;
}

static int
start_child(const serve_settings *s, char *pages, slot_state *slots, const char *job, size_t job_size,
            PyObject *writer, int out_fd, int *live, int *fast)
{
    uint64_t job_id = get_u64(job);
    if (job_size < JOB_HEADER || get_u32(job + 28) > job_size - JOB_HEADER ||
        get_u32(job + 32) > job_size - JOB_HEADER - get_u32(job + 28)) {
        static const char message[] = "malformed job frame";
        return send_record(out_fd, job_id, KIND_NOT_STARTED, 0, 0, 0, 0, message, sizeof message - 1);
    }
    int index = -1;
    for (int i = 0; i < s->max_live; i++) {
        if (!slots[i].used) {
            index = i;
            break;
        }
    }
    if (index < 0) {
        static const char message[] = "no free slot";
        return send_record(out_fd, job_id, KIND_NOT_STARTED, 0, 0, 0, 0, message, sizeof message - 1);
    }
    report_page *page = (report_page *)(pages + (size_t)s->page_bytes * (size_t)index);
    page->done = 0;
    page->size = 0;
    double timeout_s = get_f64(job + 8);
    if (!(timeout_s > 0))
        timeout_s = 0.001;
    double started = monotonic_ms();
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        PyOS_AfterFork_Child();
        child_main(s, pages, index, job, job_size, writer);
    }
    int fork_errno = errno;
    PyOS_AfterFork_Parent();
    if (pid < 0) {
        char message[160];
        snprintf(message, sizeof message, "fork failed: %s", strerror(fork_errno));
        return send_record(out_fd, job_id, KIND_NOT_STARTED, 0, 0, 0, 0, message, strlen(message));
    }
    setpgid(pid, pid); /* before any kill: the whole group is what gets SIGKILL */
    slot_state *slot = &slots[index];
    slot->used = 1;
    slot->pid = pid;
    slot->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    slot->job_id = job_id;
    slot->started_ms = started;
    slot->deadline_ms = started + timeout_s * 1000.0;
    slot->demoted = 0;
    slot->timed_out = 0;
    (*live)++;
    (*fast)++;
    return 0;
}

static int
child_exited(slot_state *slot)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    return waitid(P_PID, (id_t)slot->pid, &info, WEXITED | WNOWAIT | WNOHANG) == 0 && info.si_pid == slot->pid;
}

static PyObject *
serve(PyObject *Py_UNUSED(module), PyObject *args)
{
    int in_fd, out_fd;
    PyObject *settings, *writer, *filter_bytes;
    serve_settings s;
    memset(&s, 0, sizeof s);
    if (!PyArg_ParseTuple(args, "iiOO", &in_fd, &out_fd, &settings, &writer))
        return NULL;
    /* settings: (fast_slots, max_live, demote_after_ms, demoted_nice, page_bytes, max_output_chars,
                  drop_gid, drop_uid, child_filter or None, nproc_limit) */
    if (!PyArg_ParseTuple(settings, "iidinnllOi", &s.fast_slots, &s.max_live, &s.demote_after_ms,
                          &s.demoted_nice, &s.page_bytes, &s.max_output_chars, &s.drop_gid, &s.drop_uid,
                          &filter_bytes, &s.nproc_limit))
        return NULL;
    if (s.fast_slots < 1 || s.max_live < s.fast_slots || s.max_live > 4096 ||
        s.page_bytes < (Py_ssize_t)sizeof(report_page) + 64) {
        PyErr_SetString(PyExc_ValueError, "bad serve settings");
        return NULL;
    }
    s.page_bytes = (s.page_bytes + 4095) & ~(Py_ssize_t)4095;
    if (filter_bytes != Py_None) {
        if (!PyBytes_Check(filter_bytes) || PyBytes_GET_SIZE(filter_bytes) % sizeof(struct sock_filter)) {
            PyErr_SetString(PyExc_ValueError, "child_filter must be struct sock_filter bytes");
            return NULL;
        }
        s.child_filter = PyBytes_AS_STRING(filter_bytes);
        s.child_filter_size = PyBytes_GET_SIZE(filter_bytes);
    }
    size_t region = (size_t)s.page_bytes * (size_t)s.max_live;
    char *pages = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED)
        return PyErr_SetFromErrno(PyExc_OSError);
    slot_state *slots = PyMem_Calloc((size_t)s.max_live, sizeof(slot_state));
    struct pollfd *watch = PyMem_Calloc((size_t)s.max_live + 1, sizeof(struct pollfd));
    int *watched = PyMem_Calloc((size_t)s.max_live + 1, sizeof(int));
    size_t job_capacity = 1 << 16;
    char *job = malloc(job_capacity);
    if (slots == NULL || watch == NULL || watched == NULL || job == NULL) {
        munmap(pages, region);
        PyMem_Free(slots);
        PyMem_Free(watch);
        PyMem_Free(watched);
        free(job);
        return PyErr_NoMemory();
    }
    Py_INCREF(filter_bytes);
    Py_INCREF(writer);
    int live = 0, fast = 0, input_open = 1, failed = 0;
    while (!failed && (input_open || live > 0)) {
        double now = monotonic_ms();
        double wake = -1;
        int poll_fallback = 0;
        for (int i = 0; i < s.max_live; i++) {
            slot_state *slot = &slots[i];
            if (!slot->used)
                continue;
            if (!slot->timed_out && now >= slot->deadline_ms) {
                kill_group(slot->pid);
                slot->timed_out = 1;
            }
            if (!slot->demoted && !slot->timed_out && now >= slot->started_ms + s.demote_after_ms) {
                setpriority(PRIO_PROCESS, (id_t)slot->pid, s.demoted_nice);
                slot->demoted = 1;
                fast--;
                if (send_record(out_fd, slot->job_id, KIND_DEMOTED, 0, 0, 0, 0, NULL, 0) != 0)
                    failed = 1;
            }
            if (!slot->timed_out && (wake < 0 || slot->deadline_ms < wake))
                wake = slot->deadline_ms;
            if (!slot->demoted && !slot->timed_out &&
                (wake < 0 || slot->started_ms + s.demote_after_ms < wake))
                wake = slot->started_ms + s.demote_after_ms;
            if (slot->pidfd < 0)
                poll_fallback = 1;
        }
        int count = 0;
        if (input_open && fast < s.fast_slots && live < s.max_live) {
            watch[count].fd = in_fd;
            watch[count].events = POLLIN;
            watched[count++] = -1;
        }
        for (int i = 0; i < s.max_live; i++) {
            if (slots[i].used && slots[i].pidfd >= 0) {
                watch[count].fd = slots[i].pidfd;
                watch[count].events = POLLIN;
                watched[count++] = i;
            }
        }
        double wait_ms = wake < 0 ? -1 : wake - monotonic_ms();
        if (poll_fallback && (wait_ms < 0 || wait_ms > 1))
            wait_ms = 1; /* no pidfd: look for the exit every millisecond */
        struct timespec pause, *timeout = NULL;
        if (wait_ms >= 0) {
            if (wait_ms < 0.05)
                wait_ms = 0.05;
            pause.tv_sec = (time_t)(wait_ms / 1000.0);
            pause.tv_nsec = (long)((wait_ms - 1000.0 * (double)pause.tv_sec) * 1e6);
            timeout = &pause;
        }
        int ready = ppoll(watch, (nfds_t)count, timeout, NULL);
        if (ready < 0 && errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            failed = 2;
            break;
        }
        int take_job = 0;
        for (int k = 0; ready > 0 && k < count; k++) {
            if (!(watch[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (watched[k] < 0) {
                take_job = 1;
                continue;
            }
            slot_state *slot = &slots[watched[k]];
            if (!slot->demoted)
                fast--;
            live--;
            if (finish(&s, pages, watched[k], slot, out_fd) != 0)
                failed = 1;
        }
        if (poll_fallback) {
            for (int i = 0; i < s.max_live; i++) {
                slot_state *slot = &slots[i];
                if (slot->used && slot->pidfd < 0 && child_exited(slot)) {
                    if (!slot->demoted)
                        fast--;
                    live--;
                    if (finish(&s, pages, i, slot, out_fd) != 0)
                        failed = 1;
                }
            }
        }
        if (take_job && !failed) {
            char header[4];
            int got = read_all(in_fd, header, 4);
            if (got != 0) {
                input_open = 0; /* end of input (or a cut frame): finish the live children */
                continue;
            }
            size_t size = get_u32(header);
            if (size > (256u << 20)) {
                input_open = 0;
                continue;
            }
            if (size > job_capacity) {
                char *grown = realloc(job, size);
                if (grown == NULL) {
                    input_open = 0;
                    continue;
                }
                job = grown;
                job_capacity = size;
            }
            if (read_all(in_fd, job, size) != 0) {
                input_open = 0;
                continue;
            }
            if (size < JOB_HEADER) {
                static const char message[] = "truncated job frame";
                if (send_record(out_fd, 0, KIND_NOT_STARTED, 0, 0, 0, 0, message, sizeof message - 1) != 0)
                    failed = 1;
                continue;
            }
            if (start_child(&s, pages, slots, job, size, writer, out_fd, &live, &fast) != 0)
                failed = 1;
            /* The job's bytes stay only in the child: the next job overwrites this buffer, and
               a big one is handed back now. */
            memset(job, 0, size);
            if (job_capacity > (1u << 20)) {
                free(job);
                job_capacity = 1 << 16;
                job = malloc(job_capacity);
                if (job == NULL) {
                    PyErr_NoMemory();
                    failed = 2;
                }
            }
        }
    }
    /* Whatever is still running when we stop is killed and reaped. */
    for (int i = 0; i < s.max_live; i++) {
        if (slots[i].used) {
            kill_group(slots[i].pid);
            while (waitpid(slots[i].pid, NULL, 0) < 0 && errno == EINTR)
                ;
            if (slots[i].pidfd >= 0)
                close(slots[i].pidfd);
        }
    }
    munmap(pages, region);
    PyMem_Free(slots);
    PyMem_Free(watch);
    PyMem_Free(watched);
    free(job);
    Py_DECREF(filter_bytes);
    Py_DECREF(writer);
    if (failed == 2)
        return NULL;
    if (failed == 1) {
        PyErr_SetString(PyExc_BrokenPipeError, "the host closed the result stream");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ confinement calls */

static PyObject *
landlock_abi(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(args))
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */);
    return PyLong_FromLong(abi < 0 ? -errno : abi);
}

struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

static PyObject *
landlock_restrict(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long long fs, net, scoped;
    PyObject *rules;
    if (!PyArg_ParseTuple(args, "KKKO!", &fs, &net, &scoped, &PyList_Type, &rules))
        return NULL;
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U);
    if (abi < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    struct ruleset_attr attr = {fs, net, scoped};
    size_t attr_size = abi >= 6 ? sizeof attr : abi >= 4 ? 16 : 8;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (ruleset < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rules); i++) {
        const char *path;
        unsigned long long access;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(rules, i), "sK", &path, &access)) {
            close(ruleset);
            return NULL;
        }
        int fd = open(path, O_PATH | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue; /* a path this system lacks grants nothing */
            close(ruleset);
            return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        }
        struct path_beneath_attr beneath = {access, fd};
        long added = syscall(SYS_landlock_add_rule, ruleset, 1 /* LANDLOCK_RULE_PATH_BENEATH */, &beneath, 0);
        int saved = errno;
        close(fd);
        if (added < 0) {
            close(ruleset);
            errno = saved;
            return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
        int saved = errno;
        close(ruleset);
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    close(ruleset);
    Py_RETURN_NONE;
}

static PyObject *
seccomp_attach(PyObject *Py_UNUSED(module), PyObject *args)
{
    const char *program;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y#", &program, &size))
        return NULL;
    if (size <= 0 || size % (Py_ssize_t)sizeof(struct sock_filter)) {
        PyErr_SetString(PyExc_ValueError, "a seccomp filter is struct sock_filter bytes");
        return NULL;
    }
    struct sock_fprog filter = {(unsigned short)(size / (Py_ssize_t)sizeof(struct sock_filter)),
                                (struct sock_filter *)program};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *
trim(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(args))
{
    malloc_trim(0);
    Py_RETURN_NONE;
}

static PyMethodDef spawn_methods[] = {
    {"serve", serve, METH_VARARGS, "serve(in_fd, out_fd, settings, writer): the zygote's loop"},
    {"landlock_abi", landlock_abi, METH_NOARGS, "landlock_abi() -> the kernel's Landlock ABI or -errno"},
    {"landlock_restrict", landlock_restrict, METH_VARARGS,
     "landlock_restrict(handled_fs, handled_net, scoped, [(path, access), ...])"},
    {"seccomp_attach", seccomp_attach, METH_VARARGS, "seccomp_attach(filter_bytes)"},
    {"malloc_trim", trim, METH_NOARGS, "malloc_trim(0)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef spawn_module = {
    PyModuleDef_HEAD_INIT, "_azr_spawn", "The zygote's loop and the child's runner, in C.", -1, spawn_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__azr_spawn(void)
{
    return PyModule_Create(&spawn_module);
}
