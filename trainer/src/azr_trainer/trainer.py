"""The training loop: setup, steps (self-play → TRR++ update), logging, checkpoints, resume."""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from azr_trainer import checkpoint, parallel, warmup
from azr_trainer.backends import make_backend
from azr_trainer.buffers import Buffers
from azr_trainer.config import Config, ConfigError
from azr_trainer.heldout import HeldOutEvaluator
from azr_trainer.metrics import MetricsSink, summarize
from azr_trainer.modeling import load_policy
from azr_trainer.parallel import LocalRuntime, Runtime
from azr_trainer.precision import autocast, check_trainable, to_dtype
from azr_trainer.selfplay import Rollout, SelfPlay, Verifier
from azr_trainer.timing import PhaseTimer
from azr_trainer.update import TrainSample, ppo_update

log = logging.getLogger(__name__)


def make_client(cfg: Config) -> Any:
    from azr_client import VerificationClient

    s = cfg.service
    return VerificationClient(
        s.url,
        api_key=s.api_key,
        max_batch=s.max_batch,
        concurrency=s.concurrency,
        request_timeout_s=s.request_timeout_s,
        deadline_s=s.deadline_s,
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass


def to_samples(rollouts: list[Rollout]) -> list[TrainSample]:
    return [
        TrainSample(r.gen.prompt_ids, r.gen.response_ids, float(r.reward), (r.task_type, r.role))
        for r in rollouts
        if r.reward is not None and r.gen.response_ids
    ]


class Trainer:
    def __init__(self, cfg: Config, verifier: Verifier | None = None, runtime: Runtime | None = None) -> None:
        self.cfg = cfg
        #: One process (LocalRuntime) or N under accelerate (distributed.AccelerateRuntime).
        self.rt = runtime if runtime is not None else LocalRuntime()
        self.out = Path(cfg.train.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.train.num_threads > 0:
            torch.set_num_threads(cfg.train.num_threads)
        seed_everything(cfg.train.seed)
        self.rng = random.Random(cfg.train.seed)
        self.verifier = verifier if verifier is not None else make_client(cfg)
        try:
            check_trainable(cfg.model.dtype, cfg.model.param_dtype)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self.compute_dtype = to_dtype(cfg.model.dtype)
        log.info("precision: parameters in %s, compute in %s", cfg.model.param_dtype, cfg.model.dtype)
        with self.rt.main_first():  # rank 0 builds/caches the tiny model, the others load it
            self.model, self.tokenizer, self.device = load_policy(cfg)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params,
            lr=cfg.optim.lr,
            betas=(cfg.optim.betas[0], cfg.optim.betas[1]),
            weight_decay=cfg.optim.weight_decay,
        )
        self.ref_model = self._reference_model()
        #: What the update runs (DDP/FSDP-wrapped under accelerate; ``self.model`` otherwise).
        self.train_model, self.optimizer = self.rt.prepare(self.model, self.optimizer)
        self.backend = make_backend(cfg, self.model, self.tokenizer, self.device)
        self.buffers = Buffers(cfg.selfplay.buffer_capacity)
        self.timer = PhaseTimer()
        self.selfplay = SelfPlay(
            cfg, self.backend, self.verifier, self.buffers, self.rng, self.timer, runtime=self.rt
        )
        self.step = 0
        self.sink: MetricsSink | None = None
        self.heldout = HeldOutEvaluator(cfg, self.backend, self.verifier)
        if self.rt.is_main:
            (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    def _reference_model(self) -> Any:
        if not self.cfg.optim.kl_coef:
            return None
        if self.cfg.model.lora.enabled:
            return _AdapterDisabled(self.model)  # the base model under the adapter
        ref = copy.deepcopy(self.model)
        ref.requires_grad_(False)
        ref.eval()
        return ref

    # ------------------------------------------------------------------ state
    def setup(self) -> None:
        """Resume if asked, else seed the buffers (and run the seed pass)."""
        resume = self.cfg.train.resume
        path: Path | None = None
        if resume == "auto":
            path = self.rt.broadcast(checkpoint.latest_checkpoint(self.out))  # all ranks: rank 0's pick
        elif resume:
            path = Path(resume)
        if path is not None:
            self.load(path)
            log.info("resumed from %s at step %d", path, self.step)
        else:
            if self.cfg.model.format_warmup.steps:
                self.format_warmup()
            self.selfplay.seed()
            self.selfplay.seed_pass()
            self.timer.reset()

    def format_warmup(self) -> list[float]:
        """`model.format_warmup`: supervised steps on well-formed demonstrations before the
        first self-play step (a fresh start only: a resumed run's checkpoint holds them)."""
        fw, sp = self.cfg.model.format_warmup, self.cfg.selfplay
        if self.rt.world_size > 1:
            raise ConfigError(
                "model.format_warmup runs in one process: warm up once, then launch from its weights"
            )
        started = time.monotonic()
        with torch.random.fork_rng(devices=[]), autocast(self.device, self.compute_dtype):
            torch.manual_seed(self.cfg.train.seed)
            losses = warmup.supervised_warmup(
                self.model,
                self.tokenizer,
                steps=fw.steps,
                lr=fw.lr,
                num_references=sp.num_references,
                num_inputs=sp.induction_num_inputs,
                seed=self.cfg.train.seed,
                batch_size=fw.batch_size,
                max_len=self.cfg.generation.max_prompt_tokens + self.cfg.generation.max_response_tokens,
            )
        self.model.train()
        seconds = time.monotonic() - started
        log.info(
            "format warm-up: %d steps, loss %.3f -> %.3f, %.0f s", fw.steps, losses[0], losses[-1], seconds
        )
        if self.rt.is_main:
            record = {"steps": fw.steps, "lr": fw.lr, "losses": losses, "seconds": round(seconds, 1)}
            (self.out / "format_warmup.json").write_text(json.dumps(record))
        return losses

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0 only; the state is the same on every rank)."""
        path = None
        # gathered on rank 0 where the parameters are sharded (FSDP); a collective, so every rank
        model_state = self.rt.model_state(self.model, self.cfg.model.lora.enabled)
        optim_state = self.rt.optimizer_state(self.train_model, self.optimizer)
        if self.rt.is_main:
            path = checkpoint.save_checkpoint(
                self.out,
                self.step,
                model_state,
                optim_state,
                self.buffers,
                self.rng,
                self.cfg.to_dict(),
                keep=self.cfg.train.keep_checkpoints,
            )
        self.rt.barrier()
        return path

    def load(self, path: Path) -> None:
        state = checkpoint.load_checkpoint(
            path,
            self.model,
            self.optimizer,
            self.buffers,
            self.rng,
            load_states=self.rt.state_loader(self.train_model, self.optimizer),
        )
        self.step = int(state["step"])
        self.backend.sync_weights()
        for name in ("metrics.jsonl", "samples.jsonl", "eval.jsonl", parallel.REPLICAS_LOG):  # redo
            log_path = self.out / name
            if self.rt.is_main and log_path.exists():
                keep = [
                    line
                    for line in log_path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] < self.step
                ]
                log_path.write_text("".join(k + "\n" for k in keep))

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, float]:
        """Self-play (propose + learnability + solve), then one TRR++ update."""
        step = self.step
        t0 = time.perf_counter()
        self.timer.reset()
        rollouts = self.selfplay.propose(step) + self.selfplay.solve(step)
        samples = to_samples(rollouts)
        with self.timer.phase("update"):
            stats = ppo_update(
                self.train_model,
                self.optimizer,
                samples,
                self.cfg.optim,
                self.tokenizer.pad_token_id,
                self.device,
                self.rng,
                ref_model=self.ref_model,
                compute_dtype=self.compute_dtype,
                runtime=self.rt,
            )
            self.backend.sync_weights()
        total = time.perf_counter() - t0
        if self.rt.is_main:
            self._log_samples(step, rollouts)
        metrics = summarize(rollouts)
        metrics.update({f"train/{k}": v for k, v in stats.items()})
        for name, secs in self.timer.reset().items():
            metrics[f"time/{name}"] = secs
        metrics["time/step"] = total
        metrics["time/service_fraction"] = metrics.get("time/service", 0.0) / max(total, 1e-9)
        for tt, n in self.buffers.sizes().items():
            metrics[f"buffer/{tt}"] = float(n)
        if self.rt.world_size > 1:
            metrics = parallel.reduce_metrics(self.rt, metrics)
            parallel.check_replicas(
                self.rt, self.out, step, self.model, self.buffers, self.rng, self.rt.replicates_params
            )
        self.step += 1
        return metrics

    def _eval_due(self, end: int) -> bool:
        every = self.cfg.train.eval_every
        return bool(every) and (self.step % every == 0 or self.step == end)

    def run_heldout(self) -> dict[str, float]:
        """Greedy accuracy on the held-out sets at the current step, logged and kept in eval.jsonl."""
        if not self.rt.is_main:  # rank 0 evaluates alone (greedy); the others wait at the next step
            return {}
        with self.timer.phase("eval"):
            metrics = self.heldout.evaluate(self.step, self.out)
        if self.sink is not None:
            self.sink.log_eval(self.step, metrics)
        log.info("held-out at step %d: %s", self.step, {k: round(v, 3) for k, v in metrics.items()})
        return metrics

    def _log_samples(self, step: int, rollouts: list[Rollout]) -> None:
        """One example response per task type × role to ``samples.jsonl``, for inspection."""
        seen: set[tuple[str, str]] = set()
        with open(self.out / "samples.jsonl", "a", encoding="utf-8") as fh:
            for r in rollouts:
                if (r.task_type, r.role) in seen:
                    continue
                seen.add((r.task_type, r.role))
                row = {
                    "step": step,
                    "task_type": r.task_type,
                    "role": r.role,
                    "reward": r.reward,
                    "verdict": r.verdict,
                    "detail": r.detail[:300],
                    "response": r.gen.text[:1500],
                }
                fh.write(json.dumps(row) + "\n")

    # ------------------------------------------------------------------ the loop
    def train(self, steps: int | None = None) -> list[dict[str, float]]:
        from tqdm.auto import tqdm

        self.setup()
        end = self.cfg.train.steps if steps is None else min(self.cfg.train.steps, steps)
        if self.rt.is_main:
            self.sink = MetricsSink(self.out, tensorboard=self.cfg.train.tensorboard)
        history = []
        progress = self.cfg.train.progress and self.rt.is_main
        bar = tqdm(total=end, initial=self.step, desc="steps", disable=not progress)
        try:
            while self.step < end:
                if self._eval_due(end):
                    self.run_heldout()
                metrics = self.train_step()
                if self.sink is not None:
                    self.sink.log(self.step - 1, metrics)
                history.append(metrics)
                bar.update(1)
                bar.set_postfix(
                    solve=f"{_avg(metrics, 'accuracy/'):.2f}",
                    valid=f"{_avg(metrics, 'validity/'):.2f}",
                    t=f"{metrics['time/step']:.1f}s",
                )
                every = self.cfg.train.save_every
                if self.step == end and self._eval_due(end):
                    self.run_heldout()
                if (every and self.step % every == 0) or self.step == end:
                    self.save()
        finally:
            bar.close()
            if self.sink is not None:
                self.sink.close()
        return history

    def export(self, path: str | Path) -> None:
        """Save the policy for ``azr-train eval`` (merged LoRA weights if any); rank 0 only."""
        full = self.rt.export_state(self.model)  # gathered where parameters are sharded (FSDP)
        if not self.rt.is_main:
            return
        model = self.model
        if self.cfg.model.lora.enabled and hasattr(model, "merge_and_unload"):
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(path, **({"state_dict": full} if full is not None else {}))
        self.tokenizer.save_pretrained(path)


class _AdapterDisabled:
    """The frozen base of a peft model, used as the KL reference without a second copy."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, **kwargs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(**kwargs)

    def eval(self) -> None:
        self.model.eval()

    def train(self) -> None:
        self.model.train()


def _avg(metrics: dict[str, float], prefix: str) -> float:
    vals = [v for k, v in metrics.items() if k.startswith(prefix)]
    return sum(vals) / len(vals) if vals else 0.0
