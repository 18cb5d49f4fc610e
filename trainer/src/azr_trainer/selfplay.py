"""One AZR self-play step: propose (+ learnability), then solve. Every verdict comes from the
verification service through ``azr_client``; this module only builds prompts and requests and
turns verdicts into rewards."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from azr_client import (
    AbductionAnswer,
    Case,
    DeductionAnswer,
    InductionAnswer,
    ValidateResult,
    ValidateTask,
    VerifyResult,
)
from tqdm.auto import tqdm

from azr_trainer import parallel, parsing, prompts, rewards
from azr_trainer.backends.base import Generation, GenerationBackend
from azr_trainer.buffers import Buffers
from azr_trainer.config import Config
from azr_trainer.parallel import LocalRuntime, Runtime
from azr_trainer.tasks import IDENTITY_PROGRAM, InductionTask, Triplet
from azr_trainer.timing import PhaseTimer

log = logging.getLogger(__name__)


class Verifier(Protocol):
    """What the trainer needs from the service (``azr_client.VerificationClient`` fits)."""

    def validate(
        self,
        tasks: Sequence[ValidateTask],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> list[ValidateResult]: ...

    def verify(
        self, answers: Sequence[Any], run: str | None = None, step: int | None = None
    ) -> list[VerifyResult]: ...


@dataclass
class Rollout:
    task_type: str
    role: str  # propose | solve
    prompt: str
    gen: Generation
    well_formed: bool
    #: valid (proposer) / correct (solver)
    passed: bool
    #: None when the service could not give a verdict in time: left out of the update.
    reward: float | None
    verdict: str = ""
    detail: str = ""
    learnability: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


def make_answer(task_type: str, task: Triplet | InductionTask, answer: str, idx: str) -> Any:
    """The /v1/verify item checking ``answer`` to ``task``."""
    if task_type == "deduction":
        assert isinstance(task, Triplet)
        return DeductionAnswer(
            id=idx, output=task.output, answer=answer, program=task.program, input=task.input
        )
    if task_type == "abduction":
        assert isinstance(task, Triplet)
        return AbductionAnswer(id=idx, program=task.program, output=task.output, answer=answer)
    assert isinstance(task, InductionTask)
    cases = [Case(input=i, output=o) for i, o in task.hidden]
    return InductionAnswer(id=idx, answer=answer, cases=cases)


def unverified(result: ValidateResult | VerifyResult) -> bool:
    """No verdict to learn from: the client gave up (``client_side``), or the service reports
    ``sandbox_error`` (its sandbox failed, which says nothing about the response). Such a
    response gets no reward and is left out of the update and of learnability counts."""
    if result.client_side or result.verdict == "sandbox_error":
        return True
    return isinstance(result, ValidateResult) and "sandbox_error" in result.input_verdicts


@dataclass
class SolveOutcome:
    gen: Generation
    parsed: parsing.Parsed
    result: VerifyResult | None  # None: format error (not sent)

    @property
    def verified(self) -> bool:
        return self.result is None or not unverified(self.result)

    @property
    def correct(self) -> bool:
        return self.result is not None and self.result.correct


class SelfPlay:
    def __init__(
        self,
        cfg: Config,
        backend: GenerationBackend,
        verifier: Verifier,
        buffers: Buffers,
        rng: random.Random,
        timer: PhaseTimer | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.cfg = cfg
        #: Multi-process hooks (parallel.py): sharded generation, verdicts from rank 0.
        self.rt = runtime if runtime is not None else LocalRuntime()
        self.sp = cfg.selfplay
        self.backend = backend
        self.verifier = verifier
        self.buffers = buffers
        self.rng = rng
        self.timer = timer or PhaseTimer()
        self.run_name = cfg.train.run_name
        self.ladder = rewards.proposer_ladder(self.sp.proposer_rewards)
        self.lenient = self.sp.answer_parsing == "official"
        log.info("proposer rewards: %s", self.ladder.describe())

    # ------------------------------------------------------------------ helpers
    def _generate(self, prompt_list: list[str], desc: str) -> list[Generation]:
        """One generation per prompt, in order. Chunk ``c`` is sampled under seed ``base + c``
        by rank ``c % world``; every rank gets all generations (``parallel.py``)."""
        if not prompt_list:
            return []
        with self.timer.phase("generation"):
            rt = self.rt
            base = parallel.draw_seed(rt)
            chunks = parallel.chunk_ranges(len(prompt_list), self.cfg.generation.batch_size, rt.world_size)
            mine = [(c, r) for c, r in enumerate(chunks) if c % rt.world_size == rt.rank]
            bar = tqdm(
                total=sum(len(r) for _, r in mine),
                desc=desc,
                leave=False,
                disable=not (self.cfg.train.progress and rt.is_main),
                unit="seq",
            )
            local: list[list[Generation]] = []
            for c, r in mine:
                with parallel.seeded(base + c):
                    local.append(self.backend.generate(prompt_list[r.start : r.stop]))
                bar.update(len(r))
            bar.close()
            per_rank = rt.all_gather(local)
            out: list[Generation] = []
            for c in range(len(chunks)):
                out.extend(per_rank[c % rt.world_size][c // rt.world_size])
            return out

    def _validate(self, tasks: list[ValidateTask], step: int) -> list[ValidateResult]:
        if not tasks:
            return []
        with self.timer.phase("service"):  # rank 0 asks the service, every rank gets the results
            return parallel.call_on_main(
                self.rt,
                lambda: self.verifier.validate(
                    tasks,
                    repeats=self.sp.validate_repeats,
                    timeout_s=self.sp.exec_timeout_s,
                    run=self.run_name,
                    step=step if step >= 0 else None,  # seeding / seed pass: no step tag
                ),
            )

    def _verify(self, answers: list[Any], step: int) -> list[VerifyResult]:
        if not answers:
            return []
        with self.timer.phase("service"):
            return parallel.call_on_main(
                self.rt,
                lambda: self.verifier.verify(answers, run=self.run_name, step=step if step >= 0 else None),
            )

    def solve_many(
        self, items: list[tuple[str, Triplet | InductionTask]], step: int, desc: str, tag: str
    ) -> list[SolveOutcome]:
        """Generate one solver response per (task type, task), parse and verify them."""
        style = self.cfg.generation.prompt_style
        gens = self._generate([prompts.solve_prompt(tt, t, style) for tt, t in items], desc)
        parsed = [
            parsing.parse_solve(g.text, tt, lenient=self.lenient)
            for g, (tt, _) in zip(gens, items, strict=False)
        ]
        answers, where = [], []
        for i, ((tt, task), p) in enumerate(zip(items, parsed, strict=False)):
            if p.ok:
                answers.append(make_answer(tt, task, p.answer, f"{tag}{step}-{i}"))
                where.append(i)
        results: list[VerifyResult | None] = [None] * len(items)
        for i, res in zip(where, self._verify(answers, step), strict=False):
            results[i] = res
        return [SolveOutcome(g, p, r) for g, p, r in zip(gens, parsed, results, strict=False)]

    # ------------------------------------------------------------------ seeding
    def seed(self) -> None:
        """Fill empty buffers from the identity triplet or the seed files, checked by the service."""
        from azr_trainer import seeds
        from azr_trainer.config import data_path

        if self.sp.seed == "file":
            cap = self.sp.buffer_capacity
            triplets = seeds.load_triplet_seeds(data_path(self.cfg, self.sp.seed_file), cap)
            inductions = seeds.load_induction_seeds(data_path(self.cfg, self.sp.induction_seed_file), cap)
        elif self.sp.seed == "toy":
            from azr_trainer import toy

            family = toy.family_from_config(self.cfg.toy)
            n, k = self.cfg.toy.seed_tasks, self.sp.induction_num_inputs
            triplets, inductions = toy.seed_tasks(family, n, k, self.cfg.train.seed)
        else:
            triplets, inductions = seeds.identity_seeds()
        if self.sp.revalidate_seeds:
            triplets, inductions = self._revalidate(triplets, inductions)
        for tt in ("deduction", "abduction"):
            if not len(self.buffers.get(tt)):
                self.buffers.get(tt).extend(triplets)
        if not len(self.buffers.induction):
            self.buffers.induction.extend(inductions)
        log.info("seeded buffers: %s", self.buffers.sizes())

    def _revalidate(
        self, triplets: list[Triplet], inductions: list[InductionTask]
    ) -> tuple[list[Triplet], list[InductionTask]]:
        tasks = [ValidateTask(f"s{i}", t.program, [t.input]) for i, t in enumerate(triplets)]
        tasks += [ValidateTask(f"si{i}", t.program, list(t.inputs)) for i, t in enumerate(inductions)]
        results = self._validate(tasks, step=-1)
        out_t: list[Triplet] = []
        for t, r in zip(triplets, results[: len(triplets)], strict=False):
            if r.valid and r.outputs and r.outputs[0] is not None:
                out_t.append(Triplet(t.program, t.input, r.outputs[0], -1))
        out_i: list[InductionTask] = []
        for it, r in zip(inductions, results[len(triplets) :], strict=False):
            pairs = [
                (i, o)
                for i, o, v in zip(it.inputs, r.outputs, r.input_verdicts, strict=False)
                if v == "ok" and o is not None
            ]
            if len(pairs) >= 2:
                ins, outs = zip(*pairs, strict=False)
                out_i.append(InductionTask(it.program, tuple(ins), tuple(outs), it.message, -1))
        dropped = len(triplets) - len(out_t) + len(inductions) - len(out_i)
        if dropped:
            log.info("revalidation dropped %d seed tasks the service does not accept", dropped)
        if not out_t or not out_i:
            raise RuntimeError("no seed task survived validation; is the service working?")
        return out_t, out_i

    # ------------------------------------------------------------------ propose
    def propose(
        self,
        step: int,
        learnability: bool = True,
        task_types: Sequence[str] | None = None,
        seeding: bool = False,
    ) -> list[Rollout]:
        """``batch_size`` proposals per task type, validated, scored and buffered.

        ``seeding`` (the seed pass): the tag format is not required, only the blocks, and a
        task already buffered is never added again (as the public AZR code's seeding), whatever
        ``reject_duplicates`` (which rejects duplicates during training) says.
        """
        specs: list[tuple[str, str, Any]] = []  # (task type, prompt, references or program)
        tags = not seeding
        for tt in self.sp.task_types if task_types is None else task_types:
            for _ in range(self.sp.batch_size):
                if tt == "induction":
                    pool = self.buffers.program_pool()
                    program = self.rng.choice(pool).program if pool else IDENTITY_PROGRAM
                    prompt = prompts.propose_induction_prompt(
                        program, self.sp.induction_num_inputs, self.cfg.generation.prompt_style
                    )
                    specs.append((tt, prompt, program))
                else:
                    refs = self.buffers.get(tt).sample_references(self.sp.num_references, self.rng)
                    style = self.cfg.generation.prompt_style
                    specs.append((tt, prompts.propose_code_prompt(tt, refs, style), refs))
        gens = self._generate([s[1] for s in specs], f"propose {step}")

        # parse; well-formed proposals go to /v1/validate
        parsed: list[parsing.Parsed] = []
        tasks: list[ValidateTask] = []
        where: list[int] = []
        for i, ((tt, _, ctx), g) in enumerate(zip(specs, gens, strict=False)):
            if tt == "induction":
                p = parsing.parse_propose_induction(
                    g.text, self.sp.induction_num_inputs, lenient=self.lenient, require_tags=tags
                )
                if p.ok:
                    tasks.append(ValidateTask(f"p{step}-{i}", ctx, p.inputs))
            else:
                p = parsing.parse_propose_code(g.text, lenient=self.lenient, require_tags=tags)
                if p.ok:
                    tasks.append(ValidateTask(f"p{step}-{i}", p.program, [p.input]))
            parsed.append(p)
            if p.ok:
                where.append(i)
        vres: list[ValidateResult | None] = [None] * len(specs)
        for i, res in zip(where, self._validate(tasks, step), strict=False):
            vres[i] = res

        rollouts: list[Rollout] = []
        candidates: list[tuple[int, str, Triplet | InductionTask]] = []
        seen: set[Any] = set()
        for i, ((tt, prompt, ctx), g, p, r) in enumerate(zip(specs, gens, parsed, vres, strict=False)):
            ro = Rollout(tt, "propose", prompt, g, well_formed=p.ok, passed=False, reward=None)
            rollouts.append(ro)
            if not p.ok:
                ro.reward = rewards.proposer_reward(self.ladder, False, False, [])
                ro.verdict, ro.detail = "format_error", p.error
                continue
            assert r is not None
            ro.verdict, ro.detail = r.verdict, r.detail
            if unverified(r):
                continue  # no reward, not used for training
            task, why = self._proposal_task(tt, ctx, p, r, step)
            if task is None and why:
                ro.verdict = r.verdict if r.verdict != "ok" else "invalid"
                ro.detail = why
            if task is not None and (self.sp.reject_duplicates or seeding):
                if task.key() in seen or self.buffers.get(tt).contains(task):
                    task, ro.verdict, ro.detail = None, "duplicate", "same as a buffered task"
            if task is None:
                ro.reward = rewards.proposer_reward(self.ladder, True, False, [])
                continue
            seen.add(task.key())
            ro.passed = True
            ro.info["task"] = task
            candidates.append((i, tt, task))

        if learnability and candidates:
            n = self.sp.learnability_rollouts
            items = [(tt, task) for _, tt, task in candidates for _ in range(n)]
            outcomes = self.solve_many(items, step, f"learnability {step}", "l")
            for c, (i, _, _) in enumerate(candidates):
                outs = [o for o in outcomes[c * n : (c + 1) * n] if o.verified]
                accs = [1.0 if o.correct else 0.0 for o in outs]
                ro = rollouts[i]
                if not outs:
                    ro.reward = None
                    continue
                ro.learnability = rewards.learnability_reward(accs)
                ro.info["solve_rate"] = sum(accs) / len(accs)
                ro.reward = rewards.proposer_reward(self.ladder, True, True, accs)
        else:
            for i, _, _ in candidates:
                rollouts[i].reward = 0.0
        for _, tt, task in candidates:
            self.buffers.get(tt).add(task)
        return rollouts

    def _proposal_task(
        self, tt: str, ctx: Any, p: parsing.Parsed, r: ValidateResult, step: int
    ) -> tuple[Triplet | InductionTask | None, str]:
        """The task a validated proposal makes, or ``(None, why)`` (``why`` empty when the
        service's verdict already says it)."""
        if tt == "induction":
            pairs = [
                (i, o)
                for i, o, v in zip(p.inputs, r.outputs, r.input_verdicts, strict=False)
                if v == "ok" and o is not None
            ]
            n = self.sp.induction_num_inputs
            if self.sp.induction_validity == "official":
                if len(p.inputs) != n:
                    return None, f"{len(p.inputs)} inputs; exactly {n} are needed"
                if len(pairs) != n:
                    return None, f"{n - len(pairs)} of the {n} inputs did not run"
            elif len(pairs) < max(2, self.sp.induction_min_valid_inputs):
                return None, f"only {len(pairs)} inputs ran"
            ins, outs = zip(*pairs, strict=False)
            return InductionTask(ctx, tuple(ins), tuple(outs), p.message, step), ""
        if not r.valid or not r.outputs or r.outputs[0] is None:
            return None, ""
        return Triplet(p.program, p.input, r.outputs[0], step), ""

    # ------------------------------------------------------------------ solve
    def solve(self, step: int) -> list[Rollout]:
        items: list[tuple[str, Triplet | InductionTask]] = []
        for tt in self.sp.task_types:
            n = self.sp.solve_batch_size or self.sp.batch_size
            for task in self.buffers.get(tt).sample_for_solve(n, self.rng):
                items.append((tt, task))
        outcomes = self.solve_many(items, step, f"solve {step}", "s")
        rollouts = []
        for (tt, task), o in zip(items, outcomes, strict=False):
            prompt = prompts.solve_prompt(tt, task, self.cfg.generation.prompt_style)
            ro = Rollout(tt, "solve", prompt, o.gen, well_formed=o.parsed.ok, passed=o.correct, reward=None)
            if o.result is None:
                ro.reward = rewards.composite_reward(False, False, 0.0)
                ro.verdict, ro.detail = "format_error", o.parsed.error
            else:
                ro.verdict, ro.detail = o.result.verdict, o.result.detail
                if not unverified(o.result):
                    ro.reward = rewards.composite_reward(True, o.correct, rewards.solve_reward(o.correct))
            rollouts.append(ro)
        return rollouts

    # ------------------------------------------------------------------ seed pass
    def seed_pass(self) -> None:
        """Paper: before training, the untrained model proposes until each buffer holds
        ``seed_buffer_factor × batch_size`` tasks (no learnability, no update).

        As in the public AZR code, the proposals only need their code blocks, not the tag
        format, and the pass goes on until the buffers are full: at most
        ``seed_pass_max_rounds`` rounds, each proposing for the task types still short.
        """
        factor = self.sp.seed_buffer_factor
        if factor <= 0:
            return
        target = factor * self.sp.batch_size
        max_rounds = self.sp.seed_pass_max_rounds
        for rnd in range(1, max_rounds + 1):
            short = [t for t in self.sp.task_types if len(self.buffers.get(t)) < target]
            if not short:
                break
            rollouts = self.propose(step=-1, learnability=False, task_types=short, seeding=True)
            log.info(
                "seed pass round %d: %d/%d proposals valid, buffers %s, target %d each",
                rnd,
                sum(1 for r in rollouts if r.passed),
                len(rollouts),
                self.buffers.sizes(),
                target,
            )
        short = [t for t in self.sp.task_types if len(self.buffers.get(t)) < target]
        if short:
            raise RuntimeError(
                f"seed pass: after {max_rounds} rounds the {', '.join(short)} buffer(s) still "
                f"hold fewer than {target} tasks ({self.buffers.sizes()}); the model writes "
                "too few valid programs. Raise selfplay.seed_pass_max_rounds, lower "
                "selfplay.seed_buffer_factor, or start from selfplay.seed=file."
            )
        log.info("after the seed pass: %s", self.buffers.sizes())
