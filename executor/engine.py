"""The verification engine: batches of tasks and answers in, verdicts out.

Static checks run here, in the caller's process, on text only. Everything that
evaluates request content (programs, inputs, outputs, answers, equality) runs in
the sandbox pool.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from executor import aggregate, static_checks
from executor.cache import MemoryCache, NoCache, ResultCache, cache_key
from executor.limits import Limits, SizeLimits
from executor.policy import Policy
from executor.sandbox.pool import SandboxPool
from executor.sandbox.runtime import RUNTIME_VERSION
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


def _forward(target: Future[dict[str, Any]], source: Future[dict[str, Any]]) -> None:
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
        job_limits: dict[str, Any],
    ) -> None:
        self.engine = engine
        self.tasks = tasks
        self.outcomes = outcomes
        self.repeats = repeats
        self.job_limits = job_limits
        executions = sum(len(task.inputs) for task in tasks) * repeats
        self.staged = repeats > 1 and executions > STAGE_REPEATS_ABOVE * engine.pool.size
        self.pending: list[tuple[int, int, str]] = []
        self.keys: dict[str, None] = {}  # submitted cache keys, in order, `repeats` jobs each
        self.jobs: list[tuple[dict[str, Any], int]] = []
        self.futures: list[Future[dict[str, Any]]] = []

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
        jobs: list[tuple[dict[str, Any], int]] = []
        for task_index, input_index in to_run.values():
            task = self.tasks[task_index]
            # Staged: the first run goes to whichever zygote is free first. At once: the
            # repeats go to the least loaded distinct lanes (distinct hash seeds).
            lanes = engine._lanes_for(self.repeats, spread=self.staged)
            job = {
                "mode": "run",
                "program": task.program,
                "input": task.inputs[input_index],
                "calls": 2,
                "limits": self.job_limits,
            }
            jobs.extend((job, lane) for lane in lanes)
            if self.staged:
                self.futures.extend(self._staged(job, lanes))
            else:
                self.futures.extend(engine._submit(job, lane) for lane in lanes)
        self.keys.update(dict.fromkeys(to_run))
        self.jobs.extend(jobs)

    def _staged(self, job: dict[str, Any], lanes: list[int]) -> list[Future[dict[str, Any]]]:
        """The first run now, on whichever lane is free first; the later repeats, on the least
        loaded other lanes, when it has passed (or hit a sandbox error, which is retried and
        must not decide anything), else they are marked skipped."""
        engine = self.engine
        first = engine._submit_any(job)
        later: list[Future[dict[str, Any]]] = [Future() for _ in lanes[1:]]

        def after_first(done: Future[dict[str, Any]]) -> None:
            result = {"status": "sandbox_error"} if done.exception() is not None else done.result()
            ran_on = int(result.get("lane", lanes[0]))
            passed = result.get("status") in ("ok", "sandbox_error")
            # The later repeats: the least loaded lanes other than the one the first ran on.
            targets = engine.pool.least_loaded_lanes(len(later), excluding=[ran_on]) if passed else []
            for offset, waiting in enumerate(later):
                try:
                    if passed:
                        repeat = engine._submit(job, targets[offset])
                        repeat.add_done_callback(functools.partial(_forward, waiting))
                    else:
                        waiting.set_result({"status": _SKIPPED})
                except Exception as exc:  # noqa: BLE001 - e.g. the pool is closing: never leave a repeat unresolved
                    if not waiting.done():
                        waiting.set_result(
                            {"status": "sandbox_error", "detail": f"repeat not started: {exc}"}
                        )

        first.add_done_callback(after_first)
        return [first, *later]

    def finish(self) -> None:
        if not self.futures:
            return
        results = self.engine._results(self.futures, self.jobs)
        repeats = self.repeats
        ran = {
            key: aggregate.combine_repeats(
                [
                    r
                    for r in results[position * repeats : (position + 1) * repeats]
                    if r.get("status") != _SKIPPED
                ]
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


class EngineSettings(BaseModel):
    limits: Limits = Field(default_factory=Limits)
    sizes: SizeLimits = Field(default_factory=SizeLimits)
    policy: Policy = Field(default_factory=Policy)
    backend: Literal["local", "docker"] = "local"
    lanes: int = Field(4, ge=1, le=64, description="Distinct hash-seed lanes (the most repeats).")
    zygotes_per_lane: int = Field(1, ge=1, le=64)
    batch_size: int = Field(16, ge=1, le=1024)
    sandbox_uid_base: int | None = Field(61000, description="First uid for children when root.")
    max_timeout_s: float = Field(30.0, gt=0)
    cache_entries: int = Field(100_000, ge=0)
    retries: int = Field(1, ge=0, le=5, description="Re-runs of a sandbox_error before it is returned.")


class Engine:
    """Validate proposals and verify answers. Thread-safe; one pool per engine."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        cache: ResultCache | None = None,
        pool: SandboxPool | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        if cache is None:
            entries = self.settings.cache_entries
            cache = MemoryCache(entries) if entries else NoCache()
        self.cache = cache
        if pool is None:
            from executor.sandbox.backends import make_pool

            pool = make_pool(self.settings)
        self.pool = pool
        # Static checks are pure in (program, policy, sizes), and the last two are fixed for an
        # engine: remember recent programs' findings (a task's answers all repeat its program).
        policy, sizes = self.settings.policy, self.settings.sizes
        self._check_program = functools.lru_cache(maxsize=4096)(
            lambda program: static_checks.check_program(program, policy, sizes)
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
                update={"timeout_s": min(float(timeout_s), self.settings.max_timeout_s)}
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

    def _submit(self, job: dict[str, Any], lane: int) -> Future[dict[str, Any]]:
        return self.pool.submit(job, lane)

    def _submit_any(self, job: dict[str, Any]) -> Future[dict[str, Any]]:
        return self.pool.submit_any(job)

    def _results(
        self, futures: list[Future[dict[str, Any]]], jobs: list[tuple[dict[str, Any], int]]
    ) -> list[dict[str, Any]]:
        """Wait for results; re-run sandbox errors up to `retries` times, each on the lane
        (hash seed) it ran on, so the repeats of one input stay in distinct lanes."""
        results = [future.result() for future in futures]
        for _ in range(self.settings.retries):
            again = [i for i, r in enumerate(results) if r.get("status") == "sandbox_error"]
            if not again:
                break
            log.warning("retrying %d job(s) after sandbox errors", len(again))
            retried = [self._submit(jobs[i][0], int(results[i].get("lane", jobs[i][1]))) for i in again]
            for index, future in zip(again, retried, strict=True):
                results[index] = future.result()
        return results

    # ------------------------------------------------------------------ validate
    def validate(
        self, tasks: Sequence[ValidateTask], repeats: int = 2, timeout_s: float | None = None
    ) -> list[ValidateResult]:
        """Static checks, then `repeats` isolated runs per input; outputs must agree."""
        validation = self._start_validation(tasks, repeats, timeout_s)
        validation.runs.finish()
        return self._validation_results(validation)

    async def validate_async(
        self, tasks: Sequence[ValidateTask], repeats: int = 2, timeout_s: float | None = None
    ) -> list[ValidateResult]:
        """`validate` for an event loop, for small calls: the static checks run on the loop's
        own thread (keep the call small), and the wait for the sandboxes blocks nothing, so
        no thread hand-over sits between the request and its executions."""
        validation = self._start_validation(tasks, repeats, timeout_s)
        runs = validation.runs
        if runs.futures:
            await asyncio.wait([asyncio.wrap_future(future) for future in runs.futures])
        if any(f.result().get("status") == "sandbox_error" for f in runs.futures):
            await asyncio.to_thread(runs.finish)  # its retries wait on the sandboxes
        else:
            runs.finish()
        return self._validation_results(validation)

    def _start_validation(
        self, tasks: Sequence[ValidateTask], repeats: int, timeout_s: float | None
    ) -> _Validation:
        """Static checks, cache lookups, and the executions submitted (not awaited)."""
        sizes, policy = self.settings.sizes, self.settings.policy
        repeats = max(1, min(int(repeats), sizes.max_repeats, self.settings.lanes))
        limits = self.limits_for(timeout_s)
        job_limits = limits.for_job()

        program_findings: list[Finding | None] = []
        outcomes: list[list[InputOutcome | None]] = []
        pending: list[tuple[int, int, str]] = []  # (task index, input index, cache key)
        runs = _ValidationRuns(self, tasks, outcomes, repeats, job_limits)
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
    def verify(self, answers: Sequence[Answer], timeout_s: float | None = None) -> list[VerifyResult]:
        """Judge solver answers for deduction, abduction and induction tasks."""
        limits = self.limits_for(timeout_s)
        job_limits = limits.for_job()
        results: list[VerifyResult | None] = [None] * len(answers)
        plans: list[tuple[int, str, list[dict[str, Any]]]] = []
        for index, answer in enumerate(answers):
            plan = self._plan_answer(answer, job_limits)
            if isinstance(plan, VerifyResult):
                results[index] = plan
            else:
                key = cache_key("verify", plan, limits.model_dump(), self._fingerprint)
                plans.append((index, key, plan))

        keys = list(dict.fromkeys(key for _, key, _ in plans))
        cached = dict(zip(keys, self.cache.get_many(keys), strict=True))
        to_run: dict[str, list[dict[str, Any]]] = {}
        for index, key, plan in plans:
            hit = cached.get(key)
            if hit is not None:
                results[index] = VerifyResult(
                    answers[index].id,
                    hit["verdict"] == "ok",
                    Verdict(hit["verdict"]),
                    hit["detail"],
                    cached=True,
                )
            else:
                to_run.setdefault(key, plan)

        flat: list[tuple[dict[str, Any], int]] = []
        for plan in to_run.values():
            base = self._next_lane()
            flat.extend((job, base + offset) for offset, job in enumerate(plan))
        # No hash-seed constraint here: each job goes to whichever zygote is free first.
        futures = [self._submit_any(job) for job, _ in flat]
        run_results = self._results(futures, flat)

        judged: dict[str, tuple[Verdict, str]] = {}
        fresh: dict[str, dict[str, Any]] = {}
        position = 0
        for key, plan in to_run.items():
            chunk = run_results[position : position + len(plan)]
            position += len(plan)
            verdict, detail = aggregate.induction_verdict(chunk)
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

    def _gold_finding(self, output: str, job: dict[str, Any], what: str) -> Finding | None:
        """Check a gold output for a check_call job.

        A gold output that is not an expression but a plain repr such as
        ``defaultdict(<class 'int'>, {0: 1})`` cannot be evaluated; such a job compares
        ``repr(f(input))`` with it as text instead (marked ``expected_repr``). Empty,
        oversized or forbidden gold outputs stay findings.
        """
        sizes, policy = self.settings.sizes, self.settings.policy
        finding = static_checks.check_expression(output, policy, sizes.max_answer_chars, what)
        if finding is None:
            return None
        textual = (
            finding.verdict is Verdict.INVALID_INPUT
            and output.strip() != ""
            and static_checks._text_problem(output, what, sizes.max_answer_chars) is None
        )
        if not textual:
            return finding
        job["expected_repr"] = True
        return None

    def _plan_answer(self, answer: Answer, job_limits: dict[str, Any]) -> VerifyResult | list[dict[str, Any]]:
        """The sandbox jobs that decide one answer, or its verdict if a static check decides it."""
        sizes, policy = self.settings.sizes, self.settings.policy

        def reject(finding: Finding) -> VerifyResult:
            return VerifyResult(answer.id, False, finding.verdict, finding.message, finding.line)

        if answer.task_type == "deduction":
            if answer.output is None:
                return reject(Finding(Verdict.INVALID_INPUT, "a deduction answer needs the gold 'output'"))
            finding = static_checks.check_expression(answer.answer, policy, sizes.max_answer_chars, "answer")
            if finding is not None:
                return reject(finding)
            program = answer.program
            if program is not None and self._check_program(program) is not None:
                program = None  # the gold output is what counts; evaluate without the program
            job: dict[str, Any] = {
                "mode": "check_value",
                "program": program,
                "expected": answer.output.strip(),
                "answer": answer.answer.strip(),
                "limits": job_limits,
            }
            gold_finding = static_checks.check_expression(
                answer.output, policy, sizes.max_answer_chars, "gold output"
            )
            if gold_finding is not None:
                # A repr that is no expression (e.g. "defaultdict(<class 'int'>, {...})") can still be
                # judged when the task's program and input are given: the sandbox recomputes the gold
                # value with f(input) and accepts it only if its repr is exactly the gold text.
                recompute = (
                    gold_finding.verdict is Verdict.INVALID_INPUT
                    and program is not None
                    and answer.input is not None
                    and static_checks.check_arguments(answer.input, policy, sizes.max_input_chars) is None
                    and answer.output.strip() != ""
                    and static_checks._text_problem(answer.output, "gold output", sizes.max_answer_chars)
                    is None
                )
                if not recompute:
                    return reject(gold_finding)
                job["gold_input"] = answer.input
            return [job]

        if answer.task_type == "abduction":
            if answer.program is None or answer.output is None:
                return reject(
                    Finding(Verdict.INVALID_INPUT, "an abduction answer needs 'program' and 'output'")
                )
            finding = self._check_program(answer.program)
            finding = finding or static_checks.check_arguments(
                answer.answer, policy, sizes.max_answer_chars, "answer"
            )
            if finding is not None:
                return reject(finding)
            job = {
                "mode": "check_call",
                "program": answer.program,
                "input": answer.answer,
                "expected": answer.output.strip(),
                "limits": job_limits,
            }
            gold_finding = self._gold_finding(answer.output, job, "gold output")
            if gold_finding is not None:
                return reject(gold_finding)
            return [job]

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
            finding = static_checks.check_program(answer.answer, policy, sizes)
            if finding is not None:
                return reject(finding)
            jobs = []
            for number, case in enumerate(answer.cases):
                case_job = {
                    "mode": "check_call",
                    "program": answer.answer,
                    "input": case.input,
                    "expected": case.output.strip(),
                    "limits": job_limits,
                }
                case_finding = static_checks.check_arguments(
                    case.input, policy, sizes.max_input_chars, f"input of case {number}"
                ) or self._gold_finding(case.output, case_job, f"output of case {number}")
                if case_finding is not None:
                    return reject(case_finding)
                jobs.append(case_job)
            return jobs

        return reject(Finding(Verdict.INVALID_INPUT, f"unknown task_type {answer.task_type!r}"))
