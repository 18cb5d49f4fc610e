from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from azr_trainer.buffers import Buffers, TaskBuffer
from azr_trainer.config import ConfigError, data_path, data_root, load_config, parse_override
from azr_trainer.seeds import identity_seeds, load_induction_seeds, load_triplet_seeds
from azr_trainer.tasks import InductionTask, Triplet


def trip(i: int, step: int = -1) -> Triplet:
    return Triplet(f"def f(a):\n    return a + {i}", str(i), str(2 * i), step)


# ----------------------------------------------------------------------------- buffers
def test_buffer_is_bounded_and_drops_oldest() -> None:
    buf: TaskBuffer[Triplet] = TaskBuffer(3, Triplet)
    buf.extend(trip(i) for i in range(5))
    assert len(buf) == 3 and [t.input for t in buf] == ["2", "3", "4"]
    assert not buf.contains(trip(0)) and buf.contains(trip(4))


def test_references_are_distinct_and_uniform() -> None:
    buf: TaskBuffer[Triplet] = TaskBuffer(100, Triplet)
    buf.extend(trip(i) for i in range(10))
    rng = random.Random(0)
    refs = buf.sample_references(6, rng)
    assert len(refs) == 6 and len({r.input for r in refs}) == 6
    assert len(buf.sample_references(50, rng)) == 10
    counts = {str(i): 0 for i in range(10)}
    for _ in range(2000):
        for r in buf.sample_references(1, rng):
            counts[r.input] += 1
    assert min(counts.values()) > 140 and max(counts.values()) < 260  # ~200 each


def test_solve_sampling_newest_first_then_uniform() -> None:
    buf: TaskBuffer[Triplet] = TaskBuffer(100, Triplet)
    buf.extend(trip(i, step=-1) for i in range(10))  # seeds
    buf.extend(trip(100 + i, step=4) for i in range(3))  # this step's proposals
    rng = random.Random(1)
    batch = buf.sample_for_solve(5, rng)
    assert [t.input for t in batch[:3]] == ["100", "101", "102"]
    assert all(t.step == -1 for t in batch[3:]) and len({t.input for t in batch}) == 5
    # more new tasks than needed: only the newest
    assert {t.input for t in buf.sample_for_solve(2, rng)} <= {"100", "101", "102"}
    # small buffer: fills with replacement
    small: TaskBuffer[Triplet] = TaskBuffer(10, Triplet)
    small.add(trip(1))
    assert len(small.sample_for_solve(4, rng)) == 4
    assert TaskBuffer(3, Triplet).sample_for_solve(4, rng) == []


def test_buffers_state_round_trip() -> None:
    bufs = Buffers(50)
    bufs.deduction.extend([trip(1), trip(2, 3)])
    bufs.induction.add(InductionTask("p", ("1", "2"), ("1", "2"), "m", 2))
    state = json.loads(json.dumps(bufs.state_dict()))
    other = Buffers(50)
    other.load_state_dict(state)
    assert other.deduction.items() == bufs.deduction.items()
    assert other.induction.items() == bufs.induction.items()
    assert other.sizes() == {"deduction": 2, "abduction": 0, "induction": 1}
    assert len(other.program_pool()) == 2


# ----------------------------------------------------------------------------- seeds
def test_identity_seed() -> None:
    triplets, inductions = identity_seeds()
    assert triplets[0].program == "def f(a):\n    return a"
    assert triplets[0].input == '"Hello world"'
    assert inductions[0].message == "Write a function that returns whatever you input"
    assert len(inductions[0].inputs) == 6


def test_seed_files_in_azr_format(tmp_path: Path) -> None:
    f = tmp_path / "seed_io.jsonl"
    f.write_text(
        json.dumps(
            {
                "snippet": "def f(a):\n    return math.floor(a)",
                "input": "1.5",
                "output": "1",
                "imports": ["import math"],
            }
        )
        + "\n"
    )
    g = tmp_path / "code_f_seed_io.jsonl"
    g.write_text(
        json.dumps(
            {
                "snippet": "def f(a):\n    return a",
                "inputs": ["1", "2"],
                "outputs": ["1", "2"],
                "message": "id",
                "imports": [],
            }
        )
        + "\n"
    )
    (t,) = load_triplet_seeds(f)
    assert t.program.startswith("import math\n") and t.output == "1" and t.step == -1
    (ind,) = load_induction_seeds(g)
    assert ind.inputs == ("1", "2") and ind.message == "id"


def test_shared_seed_files_load_if_present() -> None:
    cfg = load_config(preset="tiny-cpu")
    path = data_path(cfg, cfg.selfplay.seed_file)
    if not path.exists():
        pytest.skip(f"shared data not at {path}")
    seeds = load_triplet_seeds(path, limit=300)
    assert len(seeds) == 256 and seeds[0].program == "def f(a):\n    return a"
    assert len(load_induction_seeds(data_path(cfg, cfg.selfplay.induction_seed_file))) == 256


# ----------------------------------------------------------------------------- config
def test_presets_load_with_paper_settings() -> None:
    paper = load_config(preset="paper-7b")
    assert paper.selfplay.batch_size == 64 and paper.selfplay.learnability_rollouts == 8
    assert paper.optim.lr == 1e-6 and paper.optim.grad_clip == 1.0
    assert paper.generation.temperature == 1.0
    assert (paper.generation.max_prompt_tokens, paper.generation.max_response_tokens) == (6144, 8096)
    assert paper.train.steps == 500 and paper.selfplay.num_references == 6
    # the public AZR code's rules
    sp = paper.selfplay
    assert (sp.proposer_rewards, sp.answer_parsing, sp.induction_validity) == ("official",) * 3
    assert sp.reject_duplicates is False and sp.seed_buffer_factor == 4
    assert paper.model.dtype == "bfloat16" and paper.model.param_dtype == "float32"
    tiny = load_config(preset="tiny-cpu")
    assert tiny.model.name_or_path == "tiny" and tiny.model.device == "cpu"


def test_yaml_file_preset_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("preset: tiny-cpu\noptim:\n  lr: 0.001\ntrain:\n  steps: 7\n")
    cfg = load_config(
        f,
        overrides=[
            "train.steps=9",
            "selfplay.task_types=deduction,induction",
            "service.api_key=null",
            "optim.kl_coef=0.1",
        ],
    )
    assert cfg.optim.lr == 0.001 and cfg.train.steps == 9
    assert cfg.selfplay.task_types == ["deduction", "induction"]
    assert cfg.service.api_key is None and cfg.optim.kl_coef == 0.1
    assert cfg.model.tiny.hidden_size == 64  # from the preset


@pytest.mark.parametrize(
    "override",
    [
        "optim.lrr=1",
        "train.steps=many",
        "selfplay.task_types=[foo]",
        "optim.normalize=x",
        "train.tensorboard=maybe",
        "nokey",
        "selfplay.proposer_rewards=generous",
        "selfplay.answer_parsing=loose",
        "selfplay.induction_validity=some",
        "selfplay.seed_pass_max_rounds=0",
        "selfplay.seed_buffer_factor=100",  # 100 × 4 > buffer_capacity 256
        "model.dtype=float8",
    ],
)
def test_bad_config_is_rejected_with_the_field(override: str) -> None:
    with pytest.raises(ConfigError):
        load_config(preset="tiny-cpu", overrides=[override])


def test_parse_override_types() -> None:
    assert parse_override("a.b=3") == {"a": {"b": 3}}
    assert parse_override("a=1e-6") == {"a": 1e-6}
    assert parse_override("a=[1, 2]") == {"a": [1, 2]}


def test_data_root_relative_to_repo_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = load_config(preset="tiny-cpu")
    monkeypatch.delenv("AZR_DATA_ROOT", raising=False)
    monkeypatch.setenv("AZR_DATA_DIR", str(tmp_path))
    assert data_path(cfg, "x/y.jsonl") == tmp_path / "x" / "y.jsonl"
    monkeypatch.delenv("AZR_DATA_DIR")
    # The default: the repository's own data/, which ships CRUXEval (no ../shared needed).
    repository = Path(__file__).resolve().parents[2]
    assert data_path(cfg, "cruxeval") == repository / "data" / "cruxeval"
    assert (data_path(cfg, "cruxeval") / "cruxeval.jsonl").is_file()
    monkeypatch.setenv("AZR_DATA_ROOT", str(tmp_path))  # the old name still works, with a warning
    with pytest.warns(DeprecationWarning, match="AZR_DATA_DIR"):
        assert data_root(cfg) == tmp_path
