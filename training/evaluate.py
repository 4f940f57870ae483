"""Held-out perplexity of a base and greedy acceptance rate of its recycle head.

Acceptance: over held-out text (teacher forced), how often the head's argmax for
x_{t+2} (from h_t and the true x_{t+1}) equals the base's own argmax at t+1.

  /usr/bin/python3 -m training.evaluate --base demo-q8_0.gguf --head demo-recycle.gguf --tokens heldout.bin
"""
import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from . import convert
from .tokenizer import token_dtype


def windows(tokens: np.ndarray, ctx: int, limit: int):
    """Non-overlapping (1, ctx + 1) windows from the start of tokens."""
    n = min(limit, (len(tokens) - 1) // ctx)
    for i in range(n):
        chunk = tokens[i * ctx:i * ctx + ctx + 1].astype(np.int64)
        yield torch.from_numpy(chunk)[None]


@torch.no_grad()
def evaluate(base, head, tokens: np.ndarray, ctx: int, max_windows: int = 1_000_000, device="cpu") -> dict:
    nll, count, agree, correct, head_count = 0.0, 0, 0, 0, 0
    for window in windows(tokens, ctx, max_windows):
        window = window.to(device)
        inputs, targets = window[:, :-1], window[:, 1:]
        hidden = base.hidden(inputs)
        logits = base.logits(hidden).float()
        nll += F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
        count += targets.numel()
        if head is not None:
            guess = head(base, hidden[:, :-1], targets[:, :-1]).argmax(-1)
            agree += (guess == logits[:, 1:].argmax(-1)).sum().item()
            correct += (guess == targets[:, 1:]).sum().item()
            head_count += guess.numel()
    if count == 0:
        raise ValueError(f"need more than {ctx + 1} held-out tokens to evaluate")
    loss = nll / count
    result = {"tokens": count, "loss": loss, "perplexity": math.exp(loss) if loss < 700 else math.inf}
    if head is not None:
        result.update(acceptance=agree / head_count, head_accuracy=correct / head_count)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, nargs="+", help="one or more base GGUFs (e.g. each quantization)")
    parser.add_argument("--head", help="recycle head GGUF")
    parser.add_argument("--tokens", required=True, help="held-out token file (uint16, uint32 over 65536 tokens)")
    parser.add_argument("--ctx", type=int, default=256)
    parser.add_argument("--max-windows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    for path in args.base:
        base, _ = convert.load_base(path)
        tokens = np.fromfile(args.tokens, dtype=token_dtype(base.cfg.vocab_size))
        head = convert.load_head(args.head, base) if args.head else None
        r = evaluate(base.eval(), head.eval() if head else None, tokens, args.ctx, args.max_windows)
        line = f"{path}: {r['tokens']} tokens, loss {r['loss']:.4f}, perplexity {r['perplexity']:.6g}"
        if head is not None:
            line += f", head acceptance {r['acceptance']:.3f}, head top-1 {r['head_accuracy']:.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
