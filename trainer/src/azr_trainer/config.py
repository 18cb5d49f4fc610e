"""One typed configuration: dataclass defaults < preset YAML < user YAML < ``--set`` overrides."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from azr_trainer.rewards import PROPOSER_LADDERS

TASK_TYPES: tuple[str, ...] = ("deduction", "abduction", "induction")
ROLES: tuple[str, ...] = ("propose", "solve")


class ConfigError(ValueError):
    pass


_DTYPE_NAMES = ("float32", "bfloat16", "float16")


@dataclass
class TinyModelConfig:
    """The tiny local model (``model.name_or_path: tiny``): no download, built from scratch."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    vocab_size: int = 1024
    max_positions: int = 2048
    #: Supervised steps on canned well-formed responses so the random model emits tags.
    warmup_steps: int = 0
    warmup_lr: float = 3e-3
    #: What the tokenizer and the warm-up are built from: ``canned`` (a dozen fixed programs)
    #: or ``toy`` (the toy family of the ``toy`` section: form only, random solver answers).
    demos: str = "canned"
    warmup_batch_size: int = 8


@dataclass
class ToyConfig:
    """The toy program family (``azr_trainer.toy``): used by ``selfplay.seed: toy``,
    ``model.tiny.demos: toy`` and the ``toy`` held-out evaluation set."""

    #: Member templates (``azr_trainer.toy.OPS``): add sub mul mod on ints, len head rev on strings.
    ops: list[str] = field(default_factory=lambda: ["add", "mul", "mod", "len", "head", "rev"])
    #: The constants ``k`` of the templates that take one (``a + k``, ``a[:k]``...).
    ks: list[int] = field(default_factory=lambda: [1, 2, 3])
    #: Int inputs are 0..max_int; string inputs 1..max_len letters of the alphabet.
    max_int: int = 5
    alphabet: str = "ab"
    max_len: int = 2
    #: Family members the buffers start with (each re-validated by the service).
    seed_tasks: int = 16
    #: Solver warm-up answers: ``any`` (a random value the family produces) or ``kind`` (the
    #: task's program on a random input: right type and range, right only by chance).
    demo_answers: str = "any"
    #: Held-out tasks per task type for the ``toy`` evaluation set.
    heldout_per_type: int = 64


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class FormatWarmupConfig:
    """A supervised format warm-up of a pretrained model before self-play (``steps`` 0: none).

    Response-only cross-entropy on the canned demonstrations of ``warmup.py`` (well-formed
    proposals and solver answers, in the run's prompt style), so that a small model that never
    closes ``<think>`` learns the tag format. It departs from AZR's zero-data setting: the paper's
    3B-14B models need none. The tiny model has its own (``model.tiny.warmup_steps``)."""

    steps: int = 0
    lr: float = 1e-5
    batch_size: int = 4


@dataclass
class ModelConfig:
    #: A Hugging Face id or local path, or ``tiny`` for the built-in tiny model.
    name_or_path: str = "tiny"
    #: GGUF file inside ``name_or_path`` (transformers converts it on load; needs ``gguf``).
    gguf_file: str | None = None
    #: Compute dtype: forward passes run under torch.autocast in it (see precision.py).
    dtype: str = "float32"
    device: str = "auto"
    gradient_checkpointing: bool = False
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    format_warmup: FormatWarmupConfig = field(default_factory=FormatWarmupConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    #: dtype of the trainable parameters and the AdamW state (fp32 master weights). bfloat16
    #: here rounds away most updates at lr 1e-6.
    param_dtype: str = "float32"


@dataclass
class GenerationConfig:
    backend: str = "hf"  # hf | vllm
    temperature: float = 1.0
    top_p: float = 1.0
    max_prompt_tokens: int = 6144
    max_response_tokens: int = 8096
    #: Prompts per ``generate`` call (HF backend).
    batch_size: int = 16
    vllm_gpu_memory_utilization: float = 0.4
    #: The vLLM engine's dtype (null: model.dtype), e.g. bfloat16 with float32 master weights.
    vllm_dtype: str | None = None
    #: Largest batch of tensors handed to the engine per weight-sync call.
    vllm_sync_bucket_mb: float = 512.0
    #: ``r1`` (the paper's prompts) or ``compact`` (same tasks and answer format, a few words).
    prompt_style: str = "r1"


@dataclass
class SelfPlayConfig:
    task_types: list[str] = field(default_factory=lambda: list(TASK_TYPES))
    #: Samples per task type × role per step (paper: 64).
    batch_size: int = 64
    #: Solver samples per task type per step, if different from batch_size (paper: the same).
    solve_batch_size: int | None = None
    #: Solver rollouts per valid proposal to estimate learnability (paper: n = 8).
    learnability_rollouts: int = 8
    #: Reference triplets shown to a deduction/abduction proposer (paper: K = 6).
    num_references: int = 6
    #: Inputs an induction proposer writes (paper: 10); half (rounded down) are shown to the solver.
    induction_num_inputs: int = 10
    #: Fewest inputs that must run for an induction proposal to be valid
    #: (``induction_validity: lenient`` only).
    induction_min_valid_inputs: int = 2
    buffer_capacity: int = 16384
    #: ``identity`` or ``file``. With ``file`` the azr_seeds jsonl files below are loaded.
    seed: str = "identity"
    seed_file: str = "azr_seeds/7b_seed_io.jsonl"
    induction_seed_file: str = "azr_seeds/7b_code_f_seed_io.jsonl"
    #: Re-run seed triplets through /v1/validate and keep the service's outputs.
    revalidate_seeds: bool = True
    #: Seed pass: propose-only rounds (× batch_size per type) before step 0 (paper: factor 4).
    seed_buffer_factor: int = 0
    validate_repeats: int = 2
    exec_timeout_s: float | None = None
    #: During training, treat a proposal identical to a buffered task as invalid (the public
    #: AZR code does not; the seed pass never adds a duplicate either way).
    reject_duplicates: bool = True
    #: Proposer reward ladder (rewards.PROPOSER_LADDERS): ``official`` (public AZR code:
    #: invalid −1, solve rate 0 or 1 → −0.5) or ``paper`` (invalid −0.5, solve rate 0 or 1 → 0).
    proposer_rewards: str = "paper"
    #: ``strict``: the role's labelled blocks are required. ``official``: the public AZR
    #: code's lenient extraction (solver: with no block the whole <answer> text is the
    #: answer; see parsing.py for each role).
    answer_parsing: str = "strict"
    #: ``official``: an induction proposal is valid only with exactly ``induction_num_inputs``
    #: inputs that all run (public AZR code). ``lenient``: the inputs that ran are kept when
    #: at least ``induction_min_valid_inputs`` (and 2) did.
    induction_validity: str = "official"
    #: Safety bound on the seed pass's rounds (it stops as soon as the buffers are full).
    seed_pass_max_rounds: int = 1000


@dataclass
class OptimConfig:
    lr: float = 1e-6
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0
    ppo_epochs: int = 1
    mini_batch_size: int = 128
    micro_batch_size: int = 8
    clip_ratio: float = 0.2
    kl_coef: float = 0.0
    entropy_coef: float = 0.001
    #: ``sample`` (paper equation) or ``token`` (official code: whiten over response tokens).
    normalize: str = "sample"
    #: Response positions per fp32 log-softmax chunk in the update (memory: micro-batch ×
    #: chunk × vocabulary × 4 bytes at a time).
    logprob_chunk: int = 1024


@dataclass
class ServiceConfig:
    url: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    max_batch: int = 256
    concurrency: int = 4
    request_timeout_s: float = 60.0
    deadline_s: float = 300.0


@dataclass
class DataConfig:
    #: Root of the data; relative paths are resolved against the repository root. The repository's
    #: data/ ships CRUXEval and the AZR seeds; `make data` adds the math sets and MBPP+.
    root: str = "data"


@dataclass
class EvalConfig:
    benchmarks: list[str] = field(
        default_factory=lambda: [
            "cruxeval-i",
            "cruxeval-o",
            "math500",
            "aime24",
            "aime25",
            "amc23",
            "minerva_math",
            "olympiadbench",
            "gsm8k",
        ]
    )
    limit: int | None = None
    max_new_tokens: int = 2048
    batch_size: int = 16
    output_dir: str = "runs/eval"


@dataclass
class TrainConfig:
    steps: int = 500
    seed: int = 0
    output_dir: str = "runs/azr"
    run_name: str = "azr"
    save_every: int = 50
    keep_checkpoints: int = 3
    #: Path of a checkpoint directory, ``auto`` (latest in output_dir) or null.
    resume: str | None = None
    tensorboard: bool = True
    progress: bool = True
    #: torch CPU threads (0: torch's default).
    num_threads: int = 0
    #: ``auto``: multi-process (accelerate) when launched with more than one process; ``always``:
    #: through accelerate even with one (see azr_trainer/distributed.py).
    distributed: str = "auto"
    #: How long a rank waits for the others at a collective before the run fails.
    distributed_timeout_s: int = 1800
    #: Greedy held-out evaluation every this many steps (0: off), also before step 0 and at the end.
    eval_every: int = 0
    #: What it evaluates: ``toy`` (the toy family's held-out set), ``cruxeval-o``, ``cruxeval-i``.
    eval_sets: list[str] = field(default_factory=lambda: ["cruxeval-o"])
    #: At most this many problems per set (``toy`` uses ``toy.heldout_per_type`` per task type).
    eval_limit: int = 64


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    toy: ToyConfig = field(default_factory=ToyConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> Config:
        for t in self.selfplay.task_types:
            if t not in TASK_TYPES:
                raise ConfigError(f"selfplay.task_types: unknown task type {t!r}")
        fw = self.model.format_warmup
        if fw.steps < 0 or fw.batch_size < 1 or fw.lr < 0:
            raise ConfigError("model.format_warmup: steps >= 0, batch_size >= 1 and lr >= 0")
        if fw.steps and self.model.name_or_path == "tiny":
            raise ConfigError(
                "model.format_warmup is for pretrained models; the tiny model uses model.tiny.warmup_steps"
            )
        for name in ("dtype", "param_dtype"):
            if getattr(self.model, name) not in _DTYPE_NAMES:
                raise ConfigError(f"model.{name} must be one of {', '.join(_DTYPE_NAMES)}")
        if self.optim.normalize not in ("sample", "token"):
            raise ConfigError("optim.normalize must be 'sample' or 'token'")
        if self.generation.vllm_dtype not in (None, "float32", "bfloat16", "float16"):
            raise ConfigError("generation.vllm_dtype must be null, float32, bfloat16 or float16")
        if self.generation.backend not in ("hf", "vllm"):
            raise ConfigError("generation.backend must be 'hf' or 'vllm'")
        if self.selfplay.proposer_rewards not in PROPOSER_LADDERS:
            raise ConfigError(f"selfplay.proposer_rewards must be one of {', '.join(PROPOSER_LADDERS)}")
        if self.selfplay.answer_parsing not in ("strict", "official"):
            raise ConfigError("selfplay.answer_parsing must be 'strict' or 'official'")
        if self.selfplay.induction_validity not in ("official", "lenient"):
            raise ConfigError("selfplay.induction_validity must be 'official' or 'lenient'")
        if self.selfplay.seed not in ("identity", "file", "toy"):
            raise ConfigError("selfplay.seed must be 'identity', 'file' or 'toy'")
        if self.generation.prompt_style not in ("r1", "compact"):
            raise ConfigError("generation.prompt_style must be 'r1' or 'compact'")
        if self.model.tiny.demos not in ("canned", "toy"):
            raise ConfigError("model.tiny.demos must be 'canned' or 'toy'")
        from azr_trainer.toy import OPS

        unknown_ops = [o for o in self.toy.ops if o not in OPS]
        if unknown_ops or not self.toy.ops:
            raise ConfigError(f"toy.ops: unknown or empty {unknown_ops}; choose from {sorted(OPS)}")
        if self.toy.demo_answers not in ("any", "kind"):
            raise ConfigError("toy.demo_answers must be 'any' or 'kind'")
        for name in self.train.eval_sets:
            if name not in HELDOUT_SETS:
                raise ConfigError(f"train.eval_sets: unknown set {name!r}; choose from {HELDOUT_SETS}")
        if self.train.eval_every < 0:
            raise ConfigError("train.eval_every must be >= 0")
        if self.selfplay.batch_size < 1 or self.selfplay.learnability_rollouts < 1:
            raise ConfigError("selfplay.batch_size and learnability_rollouts must be >= 1")
        if self.train.distributed not in ("auto", "always"):
            raise ConfigError("train.distributed must be 'auto' or 'always'")
        sp = self.selfplay
        if sp.seed_buffer_factor * sp.batch_size > sp.buffer_capacity:
            raise ConfigError(
                "selfplay.seed_buffer_factor × batch_size exceeds buffer_capacity: the seed pass "
                "could never fill the buffers"
            )
        if sp.seed_pass_max_rounds < 1:
            raise ConfigError("selfplay.seed_pass_max_rounds must be >= 1")
        if self.optim.logprob_chunk < 1:
            raise ConfigError("optim.logprob_chunk must be >= 1")
        if not 0 < self.optim.clip_ratio < 1:
            raise ConfigError("optim.clip_ratio must be in (0, 1)")
        return self


PRESETS = ("tiny-cpu", "toy", "paper-7b", "multi-gpu")
HELDOUT_SETS = ("toy", "cruxeval-o", "cruxeval-i")


# ----------------------------------------------------------------------------- building
def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping")
        return _build(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, data: dict[str, Any], where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {sorted(unknown)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``a.b.c=value`` → ``{"a": {"b": {"c": value}}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not KEY=VALUE")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-6" as a string
            value = float(value) if value.strip().lower() not in ("nan", "inf", "-inf") else value
        except ValueError:
            pass
    out: dict[str, Any] = {}
    cur = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def preset_dict(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    text = resources.files("azr_trainer.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def load_config(
    path: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    overrides: list[str] | None = None,
) -> Config:
    """Defaults, then the preset, then the YAML file (which may name ``preset:``), then overrides."""
    data: dict[str, Any] = {}
    user: dict[str, Any] = {}
    if path is not None:
        user = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
    preset = preset or user.pop("preset", None)
    user.pop("preset", None)
    if preset:
        data = _merge(data, preset_dict(preset))
    data = _merge(data, user)
    for ov in overrides or []:
        data = _merge(data, parse_override(ov))
    return _build(Config, data).validate()


# ----------------------------------------------------------------------------- paths
def repo_root(start: Path | None = None) -> Path:
    """Nearest ancestor of ``start`` (cwd) holding ``.git`` or ``trainer/pyproject.toml``."""
    here = (start or Path.cwd()).resolve()
    for cand in (here, *here.parents):
        if (cand / ".git").exists() or (cand / "trainer" / "pyproject.toml").exists():
            return cand
    return here


def data_root(cfg: Config) -> Path:
    """``AZR_DATA_DIR`` (the service's variable too) if set, else ``data.root``."""
    env = os.environ.get("AZR_DATA_DIR")
    if not env and os.environ.get("AZR_DATA_ROOT"):
        warnings.warn("AZR_DATA_ROOT is deprecated: set AZR_DATA_DIR", DeprecationWarning, stacklevel=2)
        env = os.environ["AZR_DATA_ROOT"]
    root = Path(env) if env else Path(cfg.data.root)
    if not root.is_absolute():
        root = repo_root() / root
    return root.resolve()


def data_path(cfg: Config, rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() else data_root(cfg) / p
