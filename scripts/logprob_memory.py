"""Peak memory of one log-prob pass (forward + backward) of the trainer's update, on CPU.

``full``: the computation before the update kept to response positions (fp32 logits and
log-softmax over every position of prompt + response). ``response``: ``update.token_logprobs``.
Run each mode in its own process, since peak RSS only grows:

    PYTHONPATH=trainer/src:client/src python scripts/logprob_memory.py full 2000 200
    PYTHONPATH=trainer/src:client/src python scripts/logprob_memory.py response 2000 200
"""

from __future__ import annotations

import argparse
import resource

import torch
from azr_trainer.update import TrainSample, pad_batch, token_logprobs
from transformers import LlamaConfig, LlamaForCausalLM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["full", "response"])
    ap.add_argument("prompt", type=int)
    ap.add_argument("response", type=int)
    ap.add_argument("--vocab", type=int, default=151936, help="Qwen2.5's vocabulary by default")
    ap.add_argument("--chunk", type=int, default=1024)
    args = ap.parse_args()
    torch.set_num_threads(1)
    p, r = args.prompt, args.response
    cfg = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=p + r + 8,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    sample = TrainSample(list(range(1, p + 1)), list(range(5, r + 5)), 1.0, ("deduction", "solve"))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.mode == "full":
        ids = torch.tensor([sample.prompt_ids + sample.response_ids])
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
        logp_all = torch.log_softmax(logits, dim=-1)
        logp = logp_all.gather(-1, ids[:, 1:, None]).squeeze(-1)[:, p - 1 :]
        ent = -(logp_all.exp() * logp_all).sum(-1)[:, p - 1 :]
    else:
        batch = pad_batch([sample], 0, torch.device("cpu"))
        logp, ent_opt = token_logprobs(model, batch, with_entropy=True, chunk=args.chunk)
        assert ent_opt is not None
        ent = ent_opt
    (logp.sum() + ent.sum()).backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{args.mode}: prompt {p}, response {r}, vocab {args.vocab}, chunk {args.chunk}: "
        f"peak RSS growth {(peak - base) / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
