"""Train a recycle head (on a frozen base) or a base + head jointly, then export GGUFs.

  joint: base and head from scratch, L = L_lm + lambda * L_recycle (RecycleGPT)
  head:  base GGUF frozen, L = L_recycle + mu * ||head state - h_{t+1}||^2

  /usr/bin/python3 -m training.train joint --tokenizer tok.model --train-tokens train.bin --out runs/demo
  /usr/bin/python3 -m training.train head --base base.gguf --train-tokens train.bin --out runs/head
Outputs in --out: checkpoint.pt (resume with --resume), NAME-{f16,q8_0,q4_0}.gguf
(joint only) and NAME-recycle.gguf.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

from . import convert, gguf
from .evaluate import evaluate
from .model import Llama, LlamaConfig, RecycleHead, head_config_for, recycle_losses
from .tokenizer import token_dtype

BASE_TYPES = {"f16": gguf.F16, "q8_0": gguf.Q8_0, "q4_0": gguf.Q4_0, "f32": gguf.F32}
CHECKPOINT = "checkpoint.pt"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["joint", "head"])
    p.add_argument("--out", required=True, help="run directory (checkpoint and exported GGUFs)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--train-tokens", required=True,
                   help="token file: uint16 ids, uint32 for vocabularies over 65536 (training.tokenizer encode, "
                        "or training/encode.ts with the base's own tokenizer)")
    p.add_argument("--val-tokens", help="held-out token file for periodic evaluation")
    p.add_argument("--tokenizer", help="SentencePiece .model (joint mode: written into the base GGUF)")
    p.add_argument("--base", help="base GGUF (head mode)")
    p.add_argument("--also-hash", nargs="*", default=[], help="head mode: other quantizations of the base to accept")
    p.add_argument("--name", default="model", help="general.name and output file prefix")
    shape = p.add_argument_group("base shape (joint mode)")
    shape.add_argument("--dim", type=int, default=256)
    shape.add_argument("--layers", type=int, default=6)
    shape.add_argument("--heads", type=int, default=8)
    shape.add_argument("--kv-heads", type=int, default=4)
    shape.add_argument("--ffn", type=int, default=704)
    shape.add_argument("--untied", action="store_true", help="separate output matrix")
    p.add_argument("--head-layers", type=int, default=1)
    p.add_argument("--ctx", type=int, default=256, help="training sequence length (and context_length)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--max-minutes", type=float, default=0, help="stop (and export) after this much wall time")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--recycle-weight", type=float, default=1.0, help="lambda in L_lm + lambda * L_recycle")
    p.add_argument("--hidden-weight", type=float, default=0.0, help="head mode: weight of the h_{t+1} regression")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--export", default="f16,q8_0,q4_0", help="base quantizations to export (joint mode)")
    p.add_argument("--head-type", choices=["f16", "q8_0", "f32"], default="f16")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.mode == "joint" and not args.tokenizer:
        p.error("joint mode needs --tokenizer (its vocabulary goes into the base GGUF)")
    if args.mode == "head" and not args.base:
        p.error("head mode needs --base BASE.gguf")
    for flag in ("train_tokens", "val_tokens", "tokenizer", "base"):
        path = getattr(args, flag)
        if path and not os.path.exists(path):
            p.error(f"--{flag.replace('_', '-')}: file not found: {path}")
    unknown = set(args.export.split(",")) - set(BASE_TYPES)
    if unknown:
        p.error(f"--export: unknown types {sorted(unknown)}; choose from {sorted(BASE_TYPES)}")
    return args


def load_tokens(path: str, vocab_size: int, ctx: int) -> np.ndarray:
    tokens = np.memmap(path, dtype=token_dtype(vocab_size), mode="r")
    if len(tokens) < ctx + 2:
        sys.exit(f"{path}: {len(tokens)} tokens is too few for sequences of {ctx + 1}")
    if int(tokens.max()) >= vocab_size:
        sys.exit(f"{path}: token id {int(tokens.max())} is outside the vocabulary ({vocab_size}); "
                 "was it encoded with another tokenizer?")
    return tokens


def sample_batch(tokens: np.ndarray, batch: int, ctx: int, rng: np.random.Generator, device):
    starts = rng.integers(0, len(tokens) - ctx - 1, size=batch)
    rows = np.stack([tokens[s:s + ctx + 1] for s in starts]).astype(np.int64)
    return torch.from_numpy(rows).to(device)


def build_models(args, tokenizer_meta: dict):
    if args.mode == "head":
        base, tokenizer_meta = convert.load_base(args.base)
        base.requires_grad_(False)
    else:
        vocab = len(tokenizer_meta["tokenizer.ggml.tokens"].value)
        base = Llama(LlamaConfig(vocab_size=vocab, dim=args.dim, n_layers=args.layers, n_heads=args.heads,
                                 n_kv_heads=args.kv_heads, ffn_dim=args.ffn, context_length=args.ctx,
                                 tied_output=not args.untied))
    head = RecycleHead(head_config_for(base.cfg, args.head_layers))
    return base, head, tokenizer_meta


def learning_rate(args, step: int, progress: float) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """One carriage-returned status line (no tqdm available)."""

    def __init__(self, total: int):
        self.total, self.started = total, time.time()

    def update(self, step: int, tokens_seen: int, losses: dict, fraction: float) -> None:
        elapsed = time.time() - self.started
        rate = tokens_seen / max(elapsed, 1e-9)
        eta = elapsed * (1 - fraction) / max(fraction, 1e-9)
        parts = " ".join(f"{k} {v:.3f}" for k, v in losses.items())
        sys.stdout.write(f"\r{step}/{self.total} {100 * fraction:5.1f}% | {parts} | {rate:,.0f} tok/s | "
                         f"ETA {format_eta(eta)} ")
        sys.stdout.flush()


def save_checkpoint(path, base, head, optimizer, step, elapsed, args, rng) -> None:
    # A frozen base is re-read from its GGUF: only a jointly trained one is saved.
    state = {"base": base.state_dict() if args.mode == "joint" else None, "head": head.state_dict(),
             "optimizer": optimizer.state_dict(),
             "step": step, "elapsed": elapsed, "base_cfg": base.cfg.to_dict(), "head_cfg": head.cfg.to_dict(),
             "mode": args.mode, "rng": rng.bit_generator.state}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # never leave a half-written checkpoint


def restore_checkpoint(path, base, head, optimizer, args, rng):
    if not os.path.exists(path):
        sys.exit(f"--resume: no checkpoint at {path}")
    state = torch.load(path, map_location="cpu")
    if state["mode"] != args.mode or state["base_cfg"] != base.cfg.to_dict() or state["head_cfg"] != head.cfg.to_dict():
        sys.exit(f"--resume: {path} was made by a run with another mode or model shape")
    if state["base"] is not None:
        base.load_state_dict(state["base"])
    head.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["rng"]
    return state["step"], state["elapsed"]


def export(args, base, head, tokenizer_meta) -> None:
    base, head = base.cpu().float(), head.cpu().float()
    hashes = []
    if args.mode == "joint":
        for kind in args.export.split(","):
            path = os.path.join(args.out, f"{args.name}-{kind}.gguf")
            convert.save_base(base, tokenizer_meta, path, BASE_TYPES[kind], args.name)
            hashes.append(convert.token_embd_hash(path))
            print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    else:
        hashes = [convert.token_embd_hash(path) for path in [args.base] + args.also_hash]
    path = os.path.join(args.out, f"{args.name}-recycle.gguf")
    convert.save_head(head, args.name, hashes, path, BASE_TYPES[args.head_type])
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    tokenizer_meta = {}
    if args.mode == "joint":
        from .tokenizer import gguf_metadata
        tokenizer_meta = gguf_metadata(args.tokenizer)
    try:
        base, head, tokenizer_meta = build_models(args, tokenizer_meta)
    except (gguf.GGUFError, convert.ModelFileError, ValueError) as e:
        sys.exit(f"error: {e}")
    train_tokens = load_tokens(args.train_tokens, base.cfg.vocab_size, args.ctx)
    val_tokens = load_tokens(args.val_tokens, base.cfg.vocab_size, args.ctx) if args.val_tokens else None
    base.to(device)
    head.to(device)
    params = [p for p in list(base.parameters()) + list(head.parameters()) if p.requires_grad]
    decay = [p for p in params if p.dim() == 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95))
    ckpt_path = os.path.join(args.out, CHECKPOINT)
    step, elapsed_before = restore_checkpoint(ckpt_path, base, head, optimizer, args, rng) if args.resume else (0, 0.0)
    n_params = sum(p.numel() for p in base.parameters()), sum(p.numel() for p in head.parameters())
    print(f"{args.mode} on {device}: base {n_params[0] / 1e6:.2f}M params, head {n_params[1] / 1e6:.2f}M, "
          f"{len(train_tokens) / 1e6:.2f}M train tokens, starting at step {step}")
    use_amp = device.type == "cuda"
    progress, started, tokens_seen = Progress(args.steps), time.time(), 0
    max_seconds = args.max_minutes * 60
    while step < args.steps:
        elapsed = elapsed_before + time.time() - started
        fraction = max(step / args.steps, elapsed / max_seconds if max_seconds else 0.0)
        if fraction >= 1.0:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step, fraction)
        batch = sample_batch(train_tokens, args.batch, args.ctx, rng, device)
        base.train(args.mode == "joint")
        head.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            lm, rec, reg = recycle_losses(base, head, batch, args.hidden_weight, lm=args.mode == "joint")
        loss = (lm + args.recycle_weight * rec) if args.mode == "joint" else (rec + args.hidden_weight * reg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        tokens_seen += batch.numel()
        done = max(step / args.steps, (elapsed_before + time.time() - started) / max_seconds if max_seconds else 0.0)
        losses = {"lm": lm.item(), "rec": rec.item()} if args.mode == "joint" else {"rec": rec.item()}
        progress.update(step, tokens_seen, losses, min(done, 1.0))
        if step % args.save_every == 0:
            save_checkpoint(ckpt_path, base, head, optimizer, step, elapsed_before + time.time() - started, args, rng)
        if val_tokens is not None and step % args.eval_every == 0:
            r = evaluate(base.eval(), head.eval(), val_tokens, args.ctx, max_windows=32, device=device)
            print(f"\nstep {step}: val loss {r['loss']:.3f} ppl {r['perplexity']:.1f} "
                  f"acceptance {r['acceptance']:.3f}", flush=True)
    print()
    save_checkpoint(ckpt_path, base, head, optimizer, step, elapsed_before + time.time() - started, args, rng)
    export(args, base, head, tokenizer_meta)


if __name__ == "__main__":
    main()
