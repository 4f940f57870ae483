"""Random-weight llama bases, each with a random recycle head, for the GPU measurement (bench/gpu/README.md).

    python3 -m bench.gpu.make_models OUT_DIR [--shape llama1b|small] [--type q8_0|f16]

Writes OUT_DIR/<shape>-<type>.gguf and OUT_DIR/<shape>-recycle.gguf (stamped with the base's token_embd hash).
The weights are random (std 0.02, as the trainer initialises them): speed does not depend on what they say,
and PyTorch reads the same file, so both engines run the same numbers.
"""
import argparse
import os
import time

import torch

from training import convert, gguf, tokenizer
from training.model import Llama, LlamaConfig, RecycleHead, head_config_for

SHAPES = {
    # TinyLlama 1.1B's shape: 22 layers, dim 2048, 32 heads over 4 kv heads, ffn 5632, 32000 tokens.
    "llama1b": dict(vocab_size=32000, dim=2048, n_layers=22, n_heads=32, n_kv_heads=4, ffn_dim=5632),
    # For trying the scripts on a CPU.
    "small": dict(vocab_size=2000, dim=128, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=256),
}
TYPES = {"q8_0": gguf.Q8_0, "f16": gguf.F16, "q4_0": gguf.Q4_0}


def synthetic_vocab(size: int) -> dict:
    """A llama (SPM) vocabulary of `size` unique pieces: <unk> <s> </s>, 256 byte tokens, then ▁w0, ▁w1, …"""
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [tokenizer.UNKNOWN, tokenizer.CONTROL, tokenizer.CONTROL] + [tokenizer.BYTE] * 256
    words = size - len(pieces)
    pieces += [f"\u2581w{i}" for i in range(words)]
    types += [tokenizer.NORMAL] * words
    return tokenizer.spm_metadata(pieces, [0.0] * 259 + [-float(i) for i in range(words)], types)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama1b")
    parser.add_argument("--type", choices=sorted(TYPES), default="q8_0")
    parser.add_argument("--context", type=int, default=2048)
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    base_path = os.path.join(args.out_dir, f"{args.shape}-{args.type}.gguf")
    head_path = os.path.join(args.out_dir, f"{args.shape}-recycle.gguf")
    t0 = time.time()
    torch.manual_seed(0)
    cfg = LlamaConfig(context_length=args.context, **SHAPES[args.shape])
    with torch.no_grad():
        base = Llama(cfg)
        convert.save_base(base, synthetic_vocab(cfg.vocab_size), base_path, TYPES[args.type], f"random {args.shape}")
        head = RecycleHead(head_config_for(cfg))
        convert.save_head(head, f"random {args.shape}", [convert.token_embd_hash(base_path)], head_path, gguf.Q8_0)
    params = sum(p.numel() for p in base.parameters())
    print(f"{base_path}: {params / 1e6:.1f}M parameters, {os.path.getsize(base_path) / 2**20:.0f} MiB; "
          f"{head_path}: {os.path.getsize(head_path) / 2**20:.1f} MiB ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
