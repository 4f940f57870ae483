"""Tiny models and tokenizers for the tests (no corpus or SentencePiece needed)."""
import numpy as np
import torch

from . import convert, gguf, tokenizer
from .base_model import BaseConfig, BaseModel, RopeConfig, f32, gguf_name
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


def tiny_base_config(arch: str, vocab_size: int) -> BaseConfig:
    """A small base of `arch` with its options on: Llama 3 frequency factors, Qwen2 biases, Qwen3's
    head_dim apart from dim / heads, Gemma 3's window on every other layer with its own RoPE base."""
    rope = RopeConfig(dims=32 if arch == "qwen3" else 16, base=10000.0 if arch == "llama" else 1e6, n_ctx_orig=64)
    cfg = BaseConfig(arch=arch, vocab_size=vocab_size, dim=64, n_layers=4 if arch == "gemma3" else 2, n_heads=4,
                     n_kv_heads=2, head_dim=rope.dims, ffn_dim=96, context_length=64, rms_eps=f32(1e-6),
                     rope=rope, attention_scale=f32(1 / np.sqrt(rope.dims)), qkv_bias=arch == "qwen2")
    cfg.swa_layers = [arch == "gemma3" and il % 2 == 0 for il in range(cfg.n_layers)]
    if arch == "gemma3":
        cfg.swa_window, cfg.rope_swa = 5, RopeConfig(dims=rope.dims, base=10000.0, n_ctx_orig=64)
    return cfg


def write_arch_base(path: str, arch: str, ggml_type: int = gguf.F32, seed: int = 0) -> BaseModel:
    """A random base of `arch` as convert_hf_to_gguf lays it out (tensor names, the keys each model
    writes), with the tiny SPM vocabulary; vectors F32, matrices `ggml_type`."""
    meta = tiny_tokenizer_metadata()
    cfg = tiny_base_config(arch, len(meta["tokenizer.ggml.tokens"].value))
    torch.manual_seed(seed)
    model = BaseModel(cfg)
    if arch == "llama":
        model.rope_freqs = torch.linspace(1.0, 8.0, cfg.rope.dims // 2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0, 0.5 if p.dim() == 1 and name.endswith("bias") else 1 / np.sqrt(p.shape[-1]))
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    w = gguf.GGUFWriter()
    w.add("general.architecture", arch)
    w.add("general.name", f"tiny {arch}")
    def as_f32(v):
        return gguf.Typed(gguf.T_F32, float(v))

    for key, value in (("context_length", cfg.context_length), ("embedding_length", cfg.dim),
                       ("block_count", cfg.n_layers), ("feed_forward_length", cfg.ffn_dim),
                       ("attention.head_count", cfg.n_heads), ("attention.head_count_kv", cfg.n_kv_heads),
                       ("attention.key_length", cfg.head_dim), ("attention.value_length", cfg.head_dim),
                       ("rope.freq_base", as_f32(cfg.rope.base)), ("attention.layer_norm_rms_epsilon", as_f32(cfg.rms_eps))):
        w.add(f"{arch}.{key}", value)
    if arch == "gemma3":
        w.add("gemma3.attention.sliding_window", cfg.swa_window)
        w.add("gemma3.attention.sliding_window_pattern", gguf.Typed(gguf.T_ARRAY, cfg.swa_layers, gguf.T_BOOL))
        w.add("gemma3.rope.freq_base_swa", as_f32(cfg.rope_swa.base))
    for key, value in meta.items():
        w.add(key, value)
    for name, tensor in model.state_dict().items():
        values = tensor.detach().numpy()
        w.add_tensor(gguf_name(name), values, ggml_type if values.ndim == 2 else gguf.F32)
    w.write(path)
    return model
