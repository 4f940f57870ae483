"""Tiny models and tokenizers for the tests (no corpus or SentencePiece needed)."""
import numpy as np
import torch

from . import convert, gguf, tokenizer
from .model import Llama, LlamaConfig

WORDS = ["the", "a", "model", "token", "head", "edge", "fast", "small", "is", "and", "of", "to", "in",
         "recycle", "worker", "text", "number", "one", "two", "three"]


def tiny_tokenizer_metadata() -> dict:
    """A llama (SPM) vocabulary: <unk> <s> </s>, 256 byte tokens, then ▁word pieces."""
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [tokenizer.UNKNOWN, tokenizer.CONTROL, tokenizer.CONTROL] + [tokenizer.BYTE] * 256
    for word in WORDS:
        pieces.append("\u2581" + word)
        types.append(tokenizer.NORMAL)
    letters = [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in WORDS]
    pieces += ["\u2581" + c for c in letters]
    types += [tokenizer.NORMAL] * len(letters)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces) - 259)]
    return tokenizer.spm_metadata(pieces, scores, types)


def tiny_config(vocab_size: int, tied: bool = True) -> LlamaConfig:
    return LlamaConfig(vocab_size=vocab_size, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=96,
                       context_length=64, tied_output=tied)


def write_tiny_base(path: str, ggml_type: int = gguf.F16, seed: int = 0, tied: bool = True) -> Llama:
    meta = tiny_tokenizer_metadata()
    torch.manual_seed(seed)
    model = Llama(tiny_config(len(meta["tokenizer.ggml.tokens"].value), tied))
    with torch.no_grad():  # non-trivial norms, so a swapped tensor would show
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    convert.save_base(model, meta, path, ggml_type, "tiny")
    return model


def write_random_tokens(path: str, n: int, vocab_size: int, seed: int = 0) -> None:
    # A learnable pattern (period-7 cycle over word pieces) plus noise.
    rng = np.random.default_rng(seed)
    cycle = 259 + (np.arange(n) % 7)
    noise = rng.integers(259, vocab_size, size=n)
    np.where(rng.random(n) < 0.8, cycle, noise).astype("<u2").tofile(path)
