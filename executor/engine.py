"""The verification engine: batches of tasks and answers in, verdicts out.

This process is the trusted judge: it never runs program code. Static checks run here
on text; programs run in the sandbox pool, which reports per call of ``f`` the ``repr``
of the returned value; every comparison (determinism between runs, an answer against
a gold output) happens here, on those texts parsed as literals (``executor.literals``).
A deduction answer needs no sandbox at all.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import marshal
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from executor import aggregate, literals, static_checks
from executor.cache import MemoryCache, NoCache, ResultCache, cache_key, memoize
from executor.limits import Limits
from executor.sandbox.backends import make_pool
from executor.sandbox.pool import SandboxPool
from executor.sandbox.protocol import SANDBOX_ERROR, ChildResult, SandboxJob
from executor.sandbox.runtime import RUNTIME_VERSION
from executor.settings import Settings
from executor.verdicts import (
    Answer,
    Finding,
    InputOutcome,
    ValidateResult,
    ValidateTask,
    Verdict,
    VerifyResult,
)

log = logging.getLogger(__name__)


# Static checks of a large batch take a while; every this many inputs, the checked ones go
# to the sandboxes, so they run while the rest of the batch is still being checked. The
# first slice is small, so that the sandboxes start within a millisecond or so.
VALIDATION_SLICE = 64
FIRST_VALIDATION_SLICE = 8

# A validate call with more executions than this many per sandbox zygote runs each
# input's later repeats only once its first run has passed. A first run that fails (an
# exception, a timeout, an output over the limit) decides the input's verdict on its own
# (`aggregate.combine_repeats` reports the first failing run), so repeating it would only
# burn sandbox time: a whole timeout again, for a program that loops. Smaller calls start
# every repeat at once, for the lowest latency.
STAGE_REPEATS_ABOVE = 2
_SKIPPED = "skipped"  # the status of a repeat that was not needed
# validate_async judges on the event loop only outputs this small in all (parsing is linear).
JUDGE_ON_LOOP_CHARS = 16_384
_CLIENTS = itertools.count()


# The engine's memos of pure work, bounded in bytes as well as entries: distinct programs of the
# largest size allowed cannot pin more than these, however many a client sends.
MEMO_ENTRIES = 4096
COMPILED_MEMO_BYTES = 64 * 2**20
CHECKS_MEMO_BYTES = 32 * 2**20


def _compiled_size(program: str, code: bytes) -> int:
    return 200 + len(program) + len(code)


def _checked_size(program: str, _finding: Finding | None) -> int:
    return 400 + len(program)


@memoize(MEMO_ENTRIES, COMPILED_MEMO_BYTES, _compiled_size)
def compiled_program(program: str) -> bytes:
    """The program compiled here and marshalled, once for all its runs (compiling runs no program
    code); empty if it does not compile here (the child then compiles it and reports why)."""
    try:
        return marshal.dumps(compile(program, "<program>", "exec", dont_inherit=True))
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError):
        return b""


def sandbox_job(program: str, argument_list: str, limits: Limits) -> SandboxJob:
    """One execution of `f(<argument_list>)`, twice in the same process (hidden state shows)."""
    return SandboxJob(
        program=program,
        input=argument_list,
        calls=2,
        timeout_s=limits.timeout_s,
        cpu_s=limits.cpu_seconds(),
        memory_mb=limits.memory_mb,
        code=compiled_program(program),
    )


def _new_client() -> str:
    return f"call-{next(_CLIENTS)}"


def _forward(target: Future[ChildResult], source: Future[ChildResult]) -> None:
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


class _ValidationRuns:
    """The executions of one `Engine.validate` call, started slice by slice, finished together.

    Each slice looks its inputs up in the result cache (one round trip), and submits the
    misses (each distinct cache key once across the whole call); `finish` waits, combines
    the repeats into outcomes, fills every pending input and stores the new outcomes.
    """

    def __init__(
        self,
        engine: Engine,
        tasks: Sequence[ValidateTask],
        outcomes: list[list[InputOutcome | None]],
        repeats: int,
        limits: Limits,
        client: str,
    ) -> None:
        self.engine = engine
        self.tasks = tasks
        self.outcomes = outcomes
        self.repeats = repeats
        self.limits = limits
        self.client = client
        executions = sum(len(task.inputs) for task in tasks) * repeats
        self.staged = repeats > 1 and executions > STAGE_REPEATS_ABOVE * engine.pool.size
        self.pending: list[tuple[int, int, str]] = []
        self.keys: dict[str, None] = {}  # submitted cache keys, in order, `repeats` jobs each
        self.jobs: list[tuple[SandboxJob, int]] = []
        self.futures: list[Future[ChildResult]] = []

    def start(self, pending: list[tuple[int, int, str]]) -> None:
        if not pending:
            return
        engine, started = self.engine, self.keys
        self.pending.extend(pending)
        unique_keys = [key for key in dict.fromkeys(key for _, _, key in pending) if key not in started]
        cached = dict(zip(unique_keys, engine.cache.get_many(unique_keys), strict=True))
        to_run: dict[str, tuple[int, int]] = {}
        for task_index, input_index, key in pending:
            hit = cached.get(key)
            if hit is not None:
                self.outcomes[task_index][input_index] = aggregate.outcome_from_cache(hit)
            elif key not in to_run and key not in started:
                to_run[key] = (task_index, input_index)
        jobs: list[tuple[SandboxJob, int]] = []
        for task_index, input_index in to_run.values():
            task = self.tasks[task_index]
            # Staged: the first run goes to whichever zygote is free first. At once: the
            # repeats go to the least loaded distinct lanes (distinct hash seeds).
            lanes = engine._lanes_for(self.repeats, spread=self.staged)
            job = sandbox_job(task.program, task.inputs[input_index], self.limits)
            jobs.extend((job, lane) for lane in lanes)
            if self.staged:
                self.futures.extend(self._staged(job, lanes))
            else:
                self.futures.extend(engine.pool.submit(job, lane, self.client) for lane in lanes)
        self.keys.update(dict.fromkeys(to_run))
        self.jobs.extend(jobs)

    def _staged(self, job: SandboxJob, lanes: list[int]) -> list[Future[ChildResult]]:
        """The first run now, on whichever lane is free first; the later repeats, on the least
        loaded other lanes, when it has passed (or hit a sandbox error, which is retried and
        must not decide anything), else they are marked skipped."""
        engine, client = self.engine, self.client
        first = engine.pool.submit_any(job, client)
        later: list[Future[ChildResult]] = [Future() for _ in lanes[1:]]

        def after_first(done: Future[ChildResult]) -> None:
            result = (
                ChildResult.error("the first run failed") if done.exception() is not None else done.result()
            )
            ran_on = result.lane if result.lane >= 0 else lanes[0]
            passed = result.status in ("ok", SANDBOX_ERROR)
            # The later repeats: the least loaded lanes other than the one the first ran on.
            targets = engine.pool.least_loaded_lanes(len(later), excluding=[ran_on]) if passed else []
            for offset, waiting in enumerate(later):
                try:
                    if passed:
                        repeat = engine.pool.submit(job, targets[offset], client)
                        repeat.add_done_callback(functools.partial(_forward, waiting))
                    else:
                        waiting.set_result(ChildResult(_SKIPPED))
                except Exception as exc:  # noqa: BLE001 - e.g. the pool is closing: never leave a repeat unresolved
                    if not waiting.done():
                        waiting.set_result(ChildResult.error(f"repeat not started: {exc}"))

        first.add_done_callback(after_first)
        return [first, *later]

    def finish(self) -> None:
        if not self.futures:
            return
        results = self.engine._results(self.futures, self.jobs, self.client)
        repeats = self.repeats
        ran = {
            key: aggregate.combine_repeats(
                [r for r in results[position * repeats : (position + 1) * repeats] if r.status != _SKIPPED]
            )
            for position, key in enumerate(self.keys)
        }
        for task_index, input_index, key in self.pending:
            if self.outcomes[task_index][input_index] is None:
                self.outcomes[task_index][input_index] = ran[key]
        fresh = {
            key: aggregate.outcome_to_cache(outcome)
            for key, outcome in ran.items()
            if outcome.verdict not in aggregate.UNCACHEABLE
        }
        if fresh:
            self.engine.cache.set_many(fresh)


@dataclass
class _Validation:
    """A validate call between its start (checks done, executions submitted) and its results."""

    tasks: Sequence[ValidateTask]
    findings: list[Finding | None]
    outcomes: list[list[InputOutcome | None]]
    runs: _ValidationRuns


class Engine:
    """Validate proposals and verify answers. Thread-safe; one pool per engine."""

    def __init__(
        self,
        settings: Settings | None = None,
        cache: ResultCache | None = None,
        pool: SandboxPool | None = None,
    ) -> None:
        """`settings`: the whole tree (default: read from the environment, `executor.settings`)."""
        self.settings = settings if settings is not None else Settings()
        if cache is None:
            entries = self.settings.cache.entries
            cache = MemoryCache(entries, int(self.settings.cache.max_mb * 2**20)) if entries else NoCache()
        self.cache = cache
        self.pool = pool if pool is not None else make_pool(self.settings)
        # Static checks are pure in (program, policy, sizes), and the last two are fixed for an
        # engine: remember recent programs' findings (a task's answers all repeat its program).
        policy, sizes = self.settings.policy, self.settings.sizes

        def check(program: str) -> Finding | None:
            return static_checks.check_program(program, policy, sizes)

        self._check_program = memoize(MEMO_ENTRIES, CHECKS_MEMO_BYTES, _checked_size)(check)
        self._literal_limits = literals.LiteralLimits(
            max_chars=max(sizes.max_answer_chars, sizes.max_input_chars)
        )
        self._lane_counter = itertools.count()
        self._lane_lock = threading.Lock()
        self._fingerprint = {
            "policy": self.settings.policy.fingerprint(),
            "runtime": RUNTIME_VERSION,
            "sizes": self.settings.sizes.model_dump(),
        }

    def start(self) -> None:
        self.pool.start()

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers
    def limits_for(self, timeout_s: float | None) -> Limits:
        limits = self.settings.limits
        if timeout_s is not None:
            limits = limits.model_copy(
                update={"timeout_s": min(float(timeout_s), self.settings.engine.max_timeout_s)}
            )
        return limits

    def _next_lane(self) -> int:
        with self._lane_lock:
            return next(self._lane_counter)

    def _lanes_for(self, repeats: int, spread: bool) -> list[int]:
        """Distinct lanes for the repeats of one input: round robin (`spread`, for big calls),
        or the least loaded ones now (a small call: the fastest answer)."""
        if spread:
            base = self._next_lane()
            return [base + repeat for repeat in range(repeats)]
        return self.pool.least_loaded_lanes(repeats)

    def _results(
        self, futures: list[Future[ChildResult]], jobs: list[tuple[SandboxJob, int]], client: str
    ) -> list[ChildResult]:
        """Wait for results; re-run sandbox errors up to `retries` times, each on the lane
        (hash seed) it ran on, so the repeats of one input stay in distinct lanes."""
        results = [future.result() for future in futures]
        for _ in range(self.settings.sandbox.retries):
            again = [i for i, r in enumerate(results) if r.status == SANDBOX_ERROR]
            if not again:
                break
            log.warning("retrying %d job(s) after sandbox errors", len(again))
            retried = [
                self.pool.submit(jobs[i][0], results[i].lane if results[i].lane >= 0 else jobs[i][1], client)
                for i in again
            ]
            for index, future in zip(again, retried, strict=True):
                results[index] = future.result()
        return results

    # ------------------------------------------------------------------ validate
    def validate(
        self,
        tasks: Sequence[ValidateTask],
        repeats: int | None = None,
        timeout_s: float | None = None,
        client: str | None = None,
    ) -> list[ValidateResult]:
        """Static checks, then `repeats` isolated runs per input (default: the settings'
        `engine.repeats`); outputs must agree.
        `client` names who asked (an API key, a request): the pool shares its sandboxes
        fairly between clients; by default every call is its own client."""
        validation = self._start_validation(tasks, repeats, timeout_s, client or _new_client())
        validation.runs.finish()
        return self._validation_results(validation)

    async def validate_async(
        self,
        tasks: Sequence[ValidateTask],
        repeats: int | None = None,
        timeout_s: float | None = None,
        client: str | None = None,
    ) -> list[ValidateResult]:
        """`validate` for an event loop, for small calls: the static checks run on the loop's
        own thread (keep the call small), and the wait for the sandboxes blocks nothing, so
        no thread hand-over sits between the request and its executions."""
        validation = self._start_validation(tasks, repeats, timeout_s, client or _new_client())
        runs = validation.runs
        if runs.futures:
            await asyncio.wait([asyncio.wrap_future(future) for future in runs.futures])
        results = [f.result() for f in runs.futures]
        retries = any(r.status == SANDBOX_ERROR for r in results)
        big = sum(len(text) for r in results for text in r.outputs) > JUDGE_ON_LOOP_CHARS
        if retries or big:
            # Retries wait on the sandboxes; big outputs take a while to parse and compare.
            await asyncio.to_thread(runs.finish)
        else:
            runs.finish()
        return self._validation_results(validation)

    def _start_validation(
        self, tasks: Sequence[ValidateTask], repeats: int | None, timeout_s: float | None, client: str
    ) -> _Validation:
        """Static checks, cache lookups, and the executions submitted (not awaited)."""
        settings = self.settings
        sizes, policy = settings.sizes, settings.policy
        wanted = settings.engine.repeats if repeats is None else int(repeats)
        repeats = max(1, min(wanted, sizes.max_repeats, settings.sandbox.lanes))
        limits = self.limits_for(timeout_s)

        program_findings: list[Finding | None] = []
        outcomes: list[list[InputOutcome | None]] = []
        pending: list[tuple[int, int, str]] = []  # (task index, input index, cache key)
        runs = _ValidationRuns(self, tasks, outcomes, repeats, limits, client)
        for task in tasks:
            finding = self._check_program(task.program)
            if finding is None and not task.inputs:
                finding = Finding(Verdict.INVALID_INPUT, "the task has no inputs; give at least one")
            if finding is None and len(task.inputs) > sizes.max_inputs_per_task:
                finding = Finding(
                    Verdict.INVALID_INPUT,
                    f"the task has {len(task.inputs)} inputs; the limit is {sizes.max_inputs_per_task}",
                )
            program_findings.append(finding)
            row: list[InputOutcome | None] = []
            for index, text in enumerate(task.inputs):
                if finding is not None:
                    row.append(InputOutcome(finding.verdict, detail=finding.message, line=finding.line))
                    continue
                input_finding = static_checks.check_arguments(text, policy, sizes.max_input_chars)
                if input_finding is not None:
                    row.append(InputOutcome(input_finding.verdict, detail=input_finding.message))
                    continue
                row.append(None)
                key = cache_key(
                    "validate", task.program, text, repeats, limits.model_dump(), self._fingerprint
                )
                pending.append((len(outcomes), index, key))
            outcomes.append(row)
            if len(pending) >= (VALIDATION_SLICE if runs.pending else FIRST_VALIDATION_SLICE):
                runs.start(pending)  # the sandboxes start on these while the rest is checked
                pending = []
        runs.start(pending)
        return _Validation(tasks, program_findings, outcomes, runs)

    @staticmethod
    def _validation_results(validation: _Validation) -> list[ValidateResult]:
        tasks, program_findings, outcomes = validation.tasks, validation.findings, validation.outcomes
        results: list[ValidateResult] = []
        for task, finding, row in zip(tasks, program_findings, outcomes, strict=True):
            final = [o if o is not None else InputOutcome(Verdict.SANDBOX_ERROR) for o in row]
            if finding is not None:
                results.append(
                    ValidateResult(
                        task.id,
                        False,
                        finding.verdict,
                        [None] * len(final),
                        [o.verdict for o in final],
                        finding.message,
                        [finding.message] * len(final),
                        finding.line,
                    )
                )
                continue
            verdict, detail = aggregate.task_verdict(final)
            results.append(
                ValidateResult(
                    task.id,
                    verdict is Verdict.OK,
                    verdict,
                    [o.output if o.verdict is Verdict.OK else None for o in final],
                    [o.verdict for o in final],
                    detail,
                    [o.detail for o in final],
                    cached=all(o.cached for o in final),
                    cpu_ms=max((o.cpu_ms for o in final), default=0.0),
                    maxrss_kb=max((o.maxrss_kb for o in final), default=0),
                    input_outputs_seen=[list(o.outputs_seen) for o in final],
                )
            )
        return results

    # ------------------------------------------------------------------ verify
    def verify(
        self, answers: Sequence[Answer], timeout_s: float | None = None, client: str | None = None
    ) -> list[VerifyResult]:
        """Judge solver answers for deduction, abduction and induction tasks.

        Deduction is decided here alone (two literals compared); abduction runs the task's
        program on the answer, induction runs the candidate on each hidden input, and the
        returned reprs are compared here with the gold outputs, which never enter a sandbox."""
        client = client or _new_client()
        limits = self.limits_for(timeout_s)
        results: list[VerifyResult | None] = [None] * len(answers)
        plans: list[tuple[int, str, _Plan]] = []
        for index, answer in enumerate(answers):
            plan = self._plan_answer(answer, limits)
            if isinstance(plan, VerifyResult):
                results[index] = plan
            else:
                key = cache_key(
                    "verify",
                    answer.task_type,
                    [(job.program, job.input) for job in plan.jobs],
                    [text for _, text in plan.golds],
                    limits.model_dump(),
                    self._fingerprint,
                )
                plans.append((index, key, plan))

        keys = list(dict.fromkeys(key for _, key, _ in plans))
        cached = dict(zip(keys, self.cache.get_many(keys), strict=True))
        to_run: dict[str, _Plan] = {}
        for index, key, plan in plans:
            hit = cached.get(key)
            if hit is not None:
                verdict = Verdict(hit["verdict"])
                results[index] = VerifyResult(
                    answers[index].id, verdict is Verdict.OK, verdict, hit["detail"], cached=True
                )
            else:
                to_run.setdefault(key, plan)

        flat: list[tuple[SandboxJob, int]] = []
        for plan in to_run.values():
            base = self._next_lane()
            flat.extend((job, base + offset) for offset, job in enumerate(plan.jobs))
        # No hash-seed constraint here: each job goes to whichever zygote is free first.
        futures = [self.pool.submit_any(job, client) for job, _ in flat]
        run_results = self._results(futures, flat, client)

        judged: dict[str, tuple[Verdict, str]] = {}
        fresh: dict[str, dict[str, Any]] = {}
        position = 0
        for key, plan in to_run.items():
            runs = run_results[position : position + len(plan.jobs)]
            position += len(plan.jobs)
            if plan.cases:
                verdict, detail = aggregate.judge_cases(runs, plan.golds)
            else:  # abduction: one call, no "case 0:" prefix
                verdict, detail = aggregate.judge_call(runs[0], *plan.golds[0])
            judged[key] = (verdict, detail)
            if verdict not in aggregate.UNCACHEABLE:
                fresh[key] = {"verdict": verdict.value, "detail": detail}
        for index, key, _ in plans:
            if results[index] is None:
                verdict, detail = judged[key]
                results[index] = VerifyResult(answers[index].id, verdict is Verdict.OK, verdict, detail)
        if fresh:
            self.cache.set_many(fresh)
        return [r if r is not None else VerifyResult("", False, Verdict.SANDBOX_ERROR) for r in results]

    def _literal(self, text: str, what: str) -> object | Finding:
        """`text` parsed as a literal, or the finding that says why it is not one."""
        sizes = self.settings.sizes
        problem = static_checks.text_problem(text, what, sizes.max_answer_chars)
        if problem is not None:
            return Finding(Verdict.INVALID_INPUT, problem)
        try:
            return literals.parse_value(text, self._literal_limits)
        except literals.LiteralError as exc:
            return Finding(Verdict.INVALID_INPUT, f"the {what} is not a literal: {exc}")

    def _plan_answer(self, answer: Answer, limits: Limits) -> VerifyResult | _Plan:
        """The sandbox jobs and gold values that decide one answer, or its verdict if it is
        decided without running anything (every deduction answer, every rejected answer)."""
        sizes, policy = self.settings.sizes, self.settings.policy

        def reject(finding: Finding) -> VerifyResult:
            return VerifyResult(answer.id, False, finding.verdict, finding.message, finding.line)

        if answer.task_type == "deduction":
            if answer.output is None:
                return reject(Finding(Verdict.INVALID_INPUT, "a deduction answer needs the gold 'output'"))
            gold = self._literal(answer.output, "gold output")
            if isinstance(gold, Finding):
                return reject(gold)
            predicted = self._literal(answer.answer, "answer")
            if isinstance(predicted, Finding):
                return reject(predicted)
            if literals.values_equal(gold, predicted):
                return VerifyResult(answer.id, True, Verdict.OK)
            detail = f"expected {aggregate.shorten(answer.output.strip())}, got {aggregate.shorten(answer.answer.strip())}"
            return VerifyResult(answer.id, False, Verdict.WRONG, detail)

        if answer.task_type == "abduction":
            if answer.program is None or answer.output is None:
                return reject(
                    Finding(Verdict.INVALID_INPUT, "an abduction answer needs 'program' and 'output'")
                )
            finding = self._check_program(answer.program)
            if finding is not None:
                return reject(finding)
            problem = static_checks.text_problem(answer.answer, "answer", sizes.max_answer_chars)
            if problem is not None:
                return reject(Finding(Verdict.INVALID_INPUT, problem))
            try:
                literals.parse_arguments(answer.answer, self._literal_limits)
            except literals.LiteralError as exc:
                return reject(
                    Finding(Verdict.INVALID_INPUT, f"the answer is not a literal argument list: {exc}")
                )
            gold = self._literal(answer.output, "gold output")
            if isinstance(gold, Finding):
                return reject(gold)
            job = sandbox_job(answer.program, answer.answer.strip(), limits)
            return _Plan([job], [(gold, answer.output.strip())], cases=False)

        if answer.task_type == "induction":
            if not answer.cases:
                return reject(Finding(Verdict.INVALID_INPUT, "an induction answer needs at least one case"))
            if len(answer.cases) > sizes.max_cases_per_answer:
                return reject(
                    Finding(
                        Verdict.INVALID_INPUT,
                        f"{len(answer.cases)} cases; the limit is {sizes.max_cases_per_answer}",
                    )
                )
            finding = self._check_program(answer.answer)
            if finding is not None:
                return reject(finding)
            jobs: list[SandboxJob] = []
            golds: list[tuple[object, str]] = []
            for number, case in enumerate(answer.cases):
                case_finding = static_checks.check_arguments(
                    case.input, policy, sizes.max_input_chars, f"input of case {number}"
                )
                if case_finding is not None:
                    return reject(case_finding)
                gold = self._literal(case.output, f"output of case {number}")
                if isinstance(gold, Finding):
                    return reject(gold)
                jobs.append(sandbox_job(answer.answer, case.input, limits))
                golds.append((gold, case.output.strip()))
            return _Plan(jobs, golds, cases=True)

        return reject(Finding(Verdict.INVALID_INPUT, f"unknown task_type {answer.task_type!r}"))


@dataclass
class _Plan:
    """The executions that decide one answer and the gold values (with their texts) that
    their outputs are compared with, here, after the runs."""

    jobs: list[SandboxJob]
    golds: list[tuple[object, str]]
    cases: bool
