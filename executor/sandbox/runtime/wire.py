"""The byte layout of every message between the host and a zygote, declared once.

Both directions are length-prefixed frames (``FRAME``: a big-endian u32 body length).

Host -> zygote
  1. ``hello``: a JSON object (see ``executor.sandbox.protocol.ZygoteHello``).
  2. then any number of job frames, each ``JOB`` followed by the program's UTF-8 bytes
     (``program_len`` of them), the program compiled by the host and marshalled (``code_len``
     bytes, 0 when the host did not compile it: the child then compiles the source), and the
     input's UTF-8 bytes (the rest of the frame). The host sends code only to a zygote whose
     bytecode magic (``ready["magic"]``) is its own.
     Nothing else: a job carries a program and an argument list, never an expected
     value, and it does not say what kind of check it serves.

Zygote -> host
  1. ``ready``: a JSON object, ``{"ready": {...}}`` (or ``{"error": "..."}``).
  2. then one record frame per event, in the order they happen (not the jobs' order):
     ``RECORD`` followed by a payload (the rest of the frame).
       kind RESULT      the child reported; payload is the child payload below
       kind TIMEOUT     the wall-clock deadline passed; the child's group was killed
       kind NO_RESULT   the child ended without a report (crash, signal, exit)
       kind NOT_STARTED the zygote could not start a child; payload is UTF-8 text
       kind DEMOTED     not final: the job has run longer than ``demote_after_ms`` and now
                        runs at the lowest priority without holding a fast slot

Child payload (written by the C runner into the child's own result page, passed
through by the zygote untouched): ``CHILD`` (status, number of outputs), then per
output a u32 length and that many UTF-8 bytes (``repr`` of what ``f`` returned, one
per call), then a u32 length and the detail text. Text is UTF-8 with lone surrogates
written as backslash escapes, so it always decodes.
"""

import struct

FRAME = struct.Struct(">I")
MAX_FRAME_BYTES = 256 * 1024 * 1024

# job_id, timeout_s, cpu_s, memory_mb, calls, program_len, code_len
JOB = struct.Struct(">QdIIIII")
# job_id, kind, wait_status, wall_ms, cpu_ms, maxrss_kb
RECORD = struct.Struct(">QBiddQ")
# status, number of outputs
CHILD = struct.Struct(">BB")
LENGTH = struct.Struct(">I")

KIND_RESULT = 0
KIND_TIMEOUT = 1
KIND_NO_RESULT = 2
KIND_NOT_STARTED = 3
KIND_DEMOTED = 4

# The child's status codes (the C runner's report), and their verdict names.
STATUS_NAMES = (
    "ok",  # 0: f returned on every call; the outputs are its reprs
    "runtime_error",  # 1: an exception in the program's top level, in f, or in repr()
    "invalid_input",  # 2: the input did not evaluate to an argument list
    "bad_form",  # 3: the program defines no callable f
    "syntax_error",  # 4: the program does not compile
    "memory_limit",  # 5: MemoryError
    "output_limit",  # 6: repr() over the limit, or a print flood
    "forbidden",  # 7: the audit hook refused an operation (even if the program caught it)
)


def read_exact(stream, size):
    chunks = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(stream):
    """One frame's body; None at end of stream."""
    header = read_exact(stream, FRAME.size)
    if header is None:
        return None
    (size,) = FRAME.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
    return read_exact(stream, size)


def write_frame(stream, body):
    stream.write(FRAME.pack(len(body)) + body)
    stream.flush()
