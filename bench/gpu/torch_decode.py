"""PyTorch eager greedy decoding with a KV cache, on a GGUF's weights (dequantized): the reference that the
WebGPU backend's decode speed is compared with (bench/gpu/README.md).

    python3 -m bench.gpu.torch_decode MODEL.gguf [MODEL.gguf ...] [--tokens 128] [--dtype float16]

Prints one JSON object: per model, decode tokens/s (best of 3) and the cost of a 2-token forward relative to a
1-token one. Each step reads its token back (`.item()`), as a decode loop that streams tokens does.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from training import convert
from training.model import Llama, rope


# Token ids (no BOS), the same in bench/gpu/webgpu_decode.mjs.
PROMPT = [1, 300, 301, 302, 303, 304, 305, 306]


class Cache:
    def __init__(self, model: Llama, length: int, device, dtype):
        cfg = model.cfg
        shape = (cfg.n_layers, 1, length, cfg.n_kv_heads, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)


def attend(q, k, v):
    """q: (1, H, t, hd) for the last t positions of k, v: (1, H, S, hd)."""
    t, s = q.shape[2], k.shape[2]
    if t == 1:
        mask = None
    else:  # row i sees keys up to position s - t + i
        mask = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(s - t)
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).type_as(q) @ v


@torch.no_grad()
def forward(model: Llama, cache: Cache, tokens, start: int):
    """Logits of the rows of `tokens` (1, t) at positions start…, writing their K/V into the cache."""
    cfg = model.cfg
    t = tokens.shape[1]
    positions = torch.arange(start, start + t, device=tokens.device)
    group = cfg.n_heads // cfg.n_kv_heads
    x = model.token_embd(tokens)
    for i, layer in enumerate(model.layers):
        h = layer.attn_norm(x)
        q = rope(layer.attn_q(h).view(1, t, cfg.n_heads, cfg.head_dim), positions, cfg.rope_base)
        cache.k[i, :, start:start + t] = rope(layer.attn_k(h).view(1, t, cfg.n_kv_heads, cfg.head_dim), positions, cfg.rope_base)
        cache.v[i, :, start:start + t] = layer.attn_v(h).view(1, t, cfg.n_kv_heads, cfg.head_dim)
        k, v = (c[i, :, :start + t].transpose(1, 2).repeat_interleave(group, dim=1) for c in (cache.k, cache.v))
        out = attend(q.transpose(1, 2), k, v).transpose(1, 2).reshape(1, t, -1)
        x = x + layer.attn_output(out)
        h = layer.ffn_norm(x)
        x = x + layer.ffn_down(F.silu(layer.ffn_gate(h)) * layer.ffn_up(h))
    return model.logits(model.output_norm(x))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def greedy(model, cache, prompt, tokens: int, device):
    """Decode tokens/s after the prompt, and the tokens."""
    logits = forward(model, cache, prompt, 0)
    out = [int(logits[0, -1].argmax().item())]
    sync(device)
    t0 = time.perf_counter()
    for i in range(tokens):
        logits = forward(model, cache, torch.tensor([[out[-1]]], device=device), prompt.shape[1] + i)
        out.append(int(logits[0, -1].argmax().item()))
    sync(device)
    return tokens / (time.perf_counter() - t0), out


def forward_ms(model, cache, n: int, pos: int, device, reps: int = 30) -> float:
    tokens = torch.ones((1, n), dtype=torch.long, device=device)
    times = []
    for i in range(reps + 5):
        sync(device)
        t0 = time.perf_counter()
        forward(model, cache, tokens, pos)
        sync(device)
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype) if device.type == "cuda" else torch.float32
    results = []
    for path in args.models:
        model, _ = convert.load_base(path)
        model = model.to(device=device, dtype=dtype).eval()
        cache = Cache(model, max(8 + args.tokens, 64 + 2), device, dtype)
        prompt = torch.tensor([PROMPT], device=device)
        runs = [greedy(model, cache, prompt, args.tokens, device) for _ in range(4)][1:]  # the first warms up
        rates = [rate for rate, _ in runs]
        one = forward_ms(model, cache, 1, 64, device)
        two = forward_ms(model, cache, 2, 64, device)
        results.append({
            "model": path, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "dtype": str(dtype),
            "torch": torch.__version__, "decodeTokensPerSecond": max(rates), "runs": rates,
            "forwardMs": {"1": one, "2": two}, "batchRatio2": two / one, "prompt": PROMPT, "tokens": runs[0][1][:16],
        })
        print(f"# {path}: {max(rates):.1f} tok/s, t(2)/t(1) = {two / one:.2f}", file=sys.stderr, flush=True)
        del model, cache
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps({"engine": "pytorch-eager", "results": results}))


if __name__ == "__main__":
    main()
