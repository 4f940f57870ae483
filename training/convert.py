"""GGUF <-> PyTorch for the llama base and the recycle head sidecar.

Base files use llama.cpp's tensor names and llama.* metadata so that they load
in llama.cpp unchanged. The head sidecar format is specified in README.md.
"""
from typing import Dict, List, Tuple

import numpy as np
import torch

from . import gguf
from .base_model import BaseModel, ModelFileError, load_base_model
from .model import Llama, LlamaConfig, RecycleHead

# general.file_type values (llama_ftype) for files whose matrices all share one type.
FILE_TYPES = {gguf.F32: 0, gguf.F16: 1, gguf.Q4_0: 2, gguf.Q8_0: 7}


def _gguf_name(param_name: str, prefix: str = "") -> str:
    return prefix + param_name.replace("layers.", "blk.", 1)


def _shape_metadata(w: gguf.GGUFWriter, arch: str, cfg: LlamaConfig) -> None:
    w.add(f"{arch}.context_length", cfg.context_length)
    w.add(f"{arch}.embedding_length", cfg.dim)
    w.add(f"{arch}.block_count", cfg.n_layers)
    w.add(f"{arch}.feed_forward_length", cfg.ffn_dim)
    w.add(f"{arch}.attention.head_count", cfg.n_heads)
    w.add(f"{arch}.attention.head_count_kv", cfg.n_kv_heads)
    w.add(f"{arch}.rope.dimension_count", cfg.head_dim)
    w.add(f"{arch}.rope.freq_base", gguf.Typed(gguf.T_F32, float(cfg.rope_base)))
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", gguf.Typed(gguf.T_F32, float(cfg.rms_eps)))


def _add_weights(w: gguf.GGUFWriter, module: torch.nn.Module, ggml_type: int, prefix: str = "") -> None:
    for name, tensor in module.state_dict().items():
        values = tensor.detach().float().cpu().numpy()
        # Norm vectors stay F32, as in llama.cpp's own conversions.
        w.add_tensor(_gguf_name(name, prefix), values, ggml_type if values.ndim == 2 else gguf.F32)


def save_base(model: Llama, tokenizer_metadata: Dict, path: str, ggml_type: int, name: str) -> None:
    tokens = tokenizer_metadata["tokenizer.ggml.tokens"]
    tokens = tokens.value if isinstance(tokens, gguf.Typed) else tokens
    if len(set(tokens)) != len(tokens) or len(tokens) != model.cfg.vocab_size:
        raise ModelFileError(f"tokenizer has {len(tokens)} tokens ({len(set(tokens))} unique) for a model "
                             f"with vocab {model.cfg.vocab_size}; llama.cpp needs one unique token per id")
    w = gguf.GGUFWriter()
    w.add("general.architecture", "llama")
    w.add("general.name", name)
    w.add("general.file_type", FILE_TYPES[ggml_type])
    _shape_metadata(w, "llama", model.cfg)
    w.add("llama.vocab_size", model.cfg.vocab_size)
    for key, value in tokenizer_metadata.items():
        w.add(key, value)
    _add_weights(w, model, ggml_type)
    w.write(path)


def _require_arch(f: gguf.GGUFFile, arch: str) -> None:
    found = f.metadata.get("general.architecture")
    if found != arch:
        raise ModelFileError(f"{f.path}: general.architecture is {found!r}, expected {arch!r}")


def _config_from(f: gguf.GGUFFile, arch: str, vocab_size: int, tied: bool) -> LlamaConfig:
    try:
        dim = f.require(f"{arch}.embedding_length")
        n_heads = f.require(f"{arch}.attention.head_count")
        cfg = LlamaConfig(
            vocab_size=vocab_size, dim=dim, n_layers=f.require(f"{arch}.block_count"),
            n_heads=n_heads, n_kv_heads=f.metadata.get(f"{arch}.attention.head_count_kv", n_heads),
            ffn_dim=f.require(f"{arch}.feed_forward_length"),
            context_length=f.metadata.get(f"{arch}.context_length", 2048),
            rope_base=f.metadata.get(f"{arch}.rope.freq_base", 10000.0),
            rms_eps=f.require(f"{arch}.attention.layer_norm_rms_epsilon"), tied_output=tied)
    except ValueError as e:
        raise ModelFileError(f"{f.path}: {e}") from None
    rope_dim = f.metadata.get(f"{arch}.rope.dimension_count", cfg.head_dim)
    if rope_dim != cfg.head_dim:
        raise ModelFileError(f"{f.path}: partial RoPE (rope dim {rope_dim} != head dim {cfg.head_dim}) is not supported")
    return cfg


def _load_weights(f: gguf.GGUFFile, module: torch.nn.Module, prefix: str = "") -> None:
    state = {}
    for name, param in module.state_dict().items():
        gname = _gguf_name(name, prefix)
        if gname not in f.tensors:
            raise ModelFileError(f"{f.path}: missing tensor {gname}")
        values = f.tensor(gname)
        if tuple(values.shape) != tuple(param.shape):
            raise ModelFileError(f"{f.path}: tensor {gname} has shape {tuple(values.shape)[::-1]} (GGUF dims), "
                                 f"expected {tuple(param.shape)[::-1]}")
        state[name] = torch.from_numpy(np.ascontiguousarray(values))
    module.load_state_dict(state)


TOKENIZER_KEY_PREFIX = "tokenizer."


def load_base(path: str) -> Tuple[BaseModel, Dict]:
    """(the base of any supported architecture with float32 weights, its tokenizer metadata)."""
    f = gguf.GGUFFile.open(path)
    model = load_base_model(f)
    tokenizer_meta = {k: v for k, v in f.metadata.items() if k.startswith(TOKENIZER_KEY_PREFIX)}
    return model, tokenizer_meta


def token_embd_hash(path: str) -> str:
    return gguf.fnv1a64_hex(gguf.GGUFFile.open(path).raw("token_embd.weight"))


def save_head(head: RecycleHead, base_name: str, base_hashes: List[str], path: str, ggml_type: int) -> None:
    cfg = head.cfg
    w = gguf.GGUFWriter()
    w.add("general.architecture", "recycle")
    w.add("general.name", f"{base_name}-recycle")
    w.add("general.file_type", FILE_TYPES[ggml_type])
    _shape_metadata(w, "recycle", cfg)
    w.add("recycle.base.name", base_name)
    w.add("recycle.base.vocab_size", cfg.vocab_size)
    w.add("recycle.base.embedding_length", cfg.dim)
    w.add("recycle.base.token_embd_hashes", gguf.Typed(gguf.T_ARRAY, list(base_hashes), gguf.T_STRING))
    _add_weights(w, head, ggml_type, prefix="recycle.")
    w.write(path)


def load_head(path: str, base: BaseModel = None) -> RecycleHead:
    f = gguf.GGUFFile.open(path)
    _require_arch(f, "recycle")
    vocab = f.require("recycle.base.vocab_size")
    cfg = _config_from(f, "recycle", vocab, tied=True)
    if base is not None and (base.cfg.dim, base.cfg.vocab_size) != (cfg.dim, vocab):
        raise ModelFileError(f"{path}: head is for a base with dim {cfg.dim} and vocab {vocab}, "
                             f"but the base has dim {base.cfg.dim} and vocab {base.cfg.vocab_size}")
    head = RecycleHead(cfg)
    _load_weights(f, head, prefix="recycle.")
    return head
