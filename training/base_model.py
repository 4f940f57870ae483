"""The frozen base of recycle-head training: a GGUF of any architecture the engine runs (llama, qwen2,
qwen3, gemma3), with weights of any type it runs dequantized to float32, computing what llama.cpp
computes (src/models/{llama,qwen2,qwen3,gemma3}.cpp, hyperparameters as llama_model::load_hparams reads
them, RoPE as ggml's CPU kernel, GELU through ggml's f16 table).

Each architecture is data (ARCHITECTURES: its tensors and options, as llama.cpp's tensor tables and
sdk/src/contract/architectures.ts describe it); one decoder layer runs them all. Module names mirror
the GGUF tensor names (layers.N.attn_q <-> blk.N.attn_q), so loading is a rename.
"""
import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import gguf, quants
from .model import RMSNorm, apply_rope, causal_attention, rope_angles


class ModelFileError(ValueError):
    """A model file does not have the architecture, keys, tensors or shapes we need."""


@dataclass(frozen=True)
class Architecture:
    neox_rope: bool  # RoPE pairs (i, i + n/2) instead of (2i, 2i+1)
    gelu: bool  # FFN gate activation GELU (tanh) instead of SiLU
    qk_norm: bool = False  # per-head RMSNorm of Q and K before RoPE
    post_norms: bool = False  # RMSNorm of the attention and FFN outputs before each residual add
    scale_embedding: bool = False  # input embeddings times sqrt(dim)
    sliding_window: bool = False  # interleaved sliding-window layers (attention.sliding_window)
    rope_freqs: bool = False  # Llama 3's rope_freqs.weight frequency factors


ARCHITECTURES = {
    "llama": Architecture(neox_rope=False, gelu=False, rope_freqs=True),
    "qwen2": Architecture(neox_rope=True, gelu=False),
    "qwen3": Architecture(neox_rope=True, gelu=False, qk_norm=True),
    "gemma3": Architecture(neox_rope=True, gelu=True, qk_norm=True, post_norms=True, scale_embedding=True,
                           sliding_window=True),
}
SWA_DEFAULT_PATTERN = 6  # gemma3: five sliding-window layers, then a global one
ROPE_SCALING_TYPES = ("none", "linear", "yarn")


@dataclass
class RopeConfig:
    """One RoPE as llama.cpp's ggml_rope_ext receives it."""
    dims: int
    base: float
    freq_scale: float = 1.0
    ext_factor: float = 0.0
    attn_factor: float = 1.0
    n_ctx_orig: int = 0


@dataclass
class BaseConfig:
    arch: str
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    context_length: int
    rms_eps: float
    rope: RopeConfig
    attention_scale: float
    tied_output: bool = True
    qkv_bias: bool = False
    # gemma3: the window, which layers use it, and their own RoPE (no frequency scaling)
    swa_window: int = 0
    swa_layers: List[bool] = field(default_factory=list)
    rope_swa: Optional[RopeConfig] = None
    final_softcap: float = 0.0

    @property
    def rope_base(self) -> float:
        """The global layers' RoPE base (what a recycle head of this base uses)."""
        return self.rope.base

    @property
    def spec(self) -> Architecture:
        return ARCHITECTURES[self.arch]

    def to_dict(self) -> dict:
        return asdict(self)


def f32(x: float) -> float:
    """x as the f32 a GGUF stores and llama.cpp computes with."""
    return float(np.float32(x))


# -- hyperparameters, as llama.cpp reads them ---------------------------------------------
def config_from_gguf(f: gguf.GGUFFile) -> BaseConfig:
    arch = f.metadata.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise ModelFileError(f"{f.path}: architecture {arch!r} is not supported; the trainer reads "
                             f"{', '.join(ARCHITECTURES)}")

    def key(name, default=None):
        value = f.metadata.get(f"{arch}.{name}", default)
        if value is None:
            raise ModelFileError(f"{f.path}: missing metadata key {arch}.{name}")
        if isinstance(value, list):
            raise ModelFileError(f"{f.path}: {arch}.{name} differs per layer, which the trainer does not support")
        return value

    if "token_embd.weight" not in f.tensors:
        raise ModelFileError(f"{f.path}: missing tensor token_embd.weight")
    dim, n_heads = key("embedding_length"), key("attention.head_count")
    n_layers = key("block_count")
    head_dim = key("attention.key_length", dim // n_heads)
    if key("attention.value_length", head_dim) != head_dim:
        raise ModelFileError(f"{f.path}: value length {key('attention.value_length')} differs from key length "
                             f"{head_dim}, which the trainer does not support")
    context_length = key("context_length")
    rope_dims = key("rope.dimension_count", head_dim)
    if rope_dims > head_dim or rope_dims % 2:
        raise ModelFileError(f"{f.path}: rope dimension count {rope_dims} must be even and at most head_dim {head_dim}")
    scaling = key("rope.scaling.type", "linear")  # llama.cpp's default when the key is absent
    if scaling not in ROPE_SCALING_TYPES:
        raise ModelFileError(f"{f.path}: rope scaling {scaling!r} is not supported (the trainer reads "
                             f"{', '.join(ROPE_SCALING_TYPES)})")
    factor = f.metadata.get(f"{arch}.rope.scaling.factor", f.metadata.get(f"{arch}.rope.scale_linear", 0.0))
    freq_scale = 1.0 if scaling == "none" or not factor else f32(1.0 / np.float32(factor))
    ext_factor, attn_factor = (1.0, _yarn_attn_factor(freq_scale)) if scaling == "yarn" else (0.0, 1.0)
    attn_factor = f32(np.float32(attn_factor) * np.float32(key("rope.scaling.attn_factor", 1.0)))
    rope = RopeConfig(dims=rope_dims, base=f32(key("rope.freq_base", 10000.0)), freq_scale=freq_scale,
                      ext_factor=ext_factor, attn_factor=attn_factor,
                      n_ctx_orig=key("rope.scaling.original_context_length", context_length))
    cfg = BaseConfig(
        arch=arch, vocab_size=f.tensors["token_embd.weight"].dims[1], dim=dim, n_layers=n_layers,
        n_heads=n_heads, n_kv_heads=key("attention.head_count_kv", n_heads), head_dim=head_dim,
        ffn_dim=key("feed_forward_length"), context_length=context_length,
        rms_eps=f32(key("attention.layer_norm_rms_epsilon")), rope=rope,
        attention_scale=f32(1.0 / math.sqrt(head_dim)), tied_output="output.weight" not in f.tensors,
        qkv_bias="blk.0.attn_q.bias" in f.tensors, swa_layers=[False] * n_layers)
    if cfg.n_heads % cfg.n_kv_heads:
        raise ModelFileError(f"{f.path}: {n_heads} heads cannot share {cfg.n_kv_heads} KV heads evenly")
    if arch == "gemma3":
        _gemma3_options(f, cfg, key)
    return cfg


def _yarn_attn_factor(freq_scale: float) -> float:
    """llama_context's yarn_attn_factor: get_mscale(factor), cancelled by 1/(1 + 0.1 ln factor) since
    ggml's kernel applies that itself; the net magnitude is the kernel's."""
    one, tenth = np.float32(1), np.float32(0.1)
    factor = one / np.float32(freq_scale)
    mscale = one if factor <= 1 else tenth * np.log(factor) + one
    return f32(mscale * (one / (one + tenth * np.log(factor))))


def _gemma3_options(f: gguf.GGUFFile, cfg: BaseConfig, key) -> None:
    cfg.final_softcap = f32(key("final_logit_softcapping", 0.0))
    # gemma_pytorch's query scale: 1/sqrt(dim / heads) for the 27B model (62 layers), 1/sqrt(head_dim) otherwise.
    if cfg.n_layers == 62:
        cfg.attention_scale = f32(1.0 / math.sqrt(cfg.dim // cfg.n_heads))
    window = key("attention.sliding_window", 0)
    if not window:
        return
    pattern = f.metadata.get("gemma3.attention.sliding_window_pattern", SWA_DEFAULT_PATTERN)
    if isinstance(pattern, list):
        if len(pattern) != cfg.n_layers:
            raise ModelFileError(f"{f.path}: sliding_window_pattern has {len(pattern)} entries for {cfg.n_layers} layers")
        cfg.swa_layers = [bool(p) for p in pattern]
    else:
        cfg.swa_layers = [pattern == 0 or il % pattern < pattern - 1 for il in range(cfg.n_layers)]
    cfg.swa_window = window
    # The sliding-window layers keep their own base (llama.cpp's default 10000) and no frequency scaling.
    cfg.rope_swa = RopeConfig(dims=cfg.rope.dims, base=f32(key("rope.freq_base_swa", 10000.0)),
                              ext_factor=cfg.rope.ext_factor, attn_factor=cfg.rope.attn_factor,
                              n_ctx_orig=cfg.rope.n_ctx_orig)


# -- the model ----------------------------------------------------------------------------------
def gelu_like_ggml(x):
    """ggml's CPU GELU (tanh approximation): the input rounded to f16, the result of the f16 table
    (an f16-rounded value), the identity from 10 up and 0 from -10 down. llama.cpp and the engine
    compute this, so the trainer does too."""
    h = x.half().float()
    y = 0.5 * h * (1.0 + torch.tanh(0.7978845608028654 * h * (1.0 + 0.044715 * h * h)))
    y = y.half().float()
    return torch.where(x <= -10.0, torch.zeros_like(x), torch.where(x >= 10.0, x, y)).type_as(x)


class BaseLayer(nn.Module):
    def __init__(self, cfg: BaseConfig, il: int):
        super().__init__()
        spec, hd = cfg.spec, cfg.head_dim
        self.cfg, self.spec = cfg, spec
        self.window = cfg.swa_window if cfg.swa_layers[il] else 0
        self.attn_norm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.attn_q = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=cfg.qkv_bias)
        self.attn_k = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=cfg.qkv_bias)
        self.attn_v = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=cfg.qkv_bias)
        if spec.qk_norm:
            self.attn_q_norm = RMSNorm(hd, cfg.rms_eps)
            self.attn_k_norm = RMSNorm(hd, cfg.rms_eps)
        self.attn_output = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.ffn_gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.ffn_up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.ffn_down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)
        if spec.post_norms:
            self.post_attention_norm = RMSNorm(cfg.dim, cfg.rms_eps)
            self.post_ffw_norm = RMSNorm(cfg.dim, cfg.rms_eps)

    def forward(self, x, angles):
        cfg, spec, (b, t, _) = self.cfg, self.spec, x.shape
        h = self.attn_norm(x)
        q = self.attn_q(h).view(b, t, cfg.n_heads, cfg.head_dim)
        k = self.attn_k(h).view(b, t, cfg.n_kv_heads, cfg.head_dim)
        v = self.attn_v(h).view(b, t, cfg.n_kv_heads, cfg.head_dim)
        if spec.qk_norm:
            q, k = self.attn_q_norm(q), self.attn_k_norm(k)
        q, k = apply_rope(q, *angles, neox=spec.neox_rope), apply_rope(k, *angles, neox=spec.neox_rope)
        scale = cfg.attention_scale
        if spec.gelu:  # Gemma's graphs scale the queries, then attend with scale 1
            q, scale = q * cfg.attention_scale, 1.0
        group = cfg.n_heads // cfg.n_kv_heads  # query head h reads kv head h // group
        k, v = (z.transpose(1, 2).repeat_interleave(group, dim=1) for z in (k, v))
        attn = causal_attention(q.transpose(1, 2), k, v, scale, self.window).transpose(1, 2).reshape(b, t, -1)
        out = self.attn_output(attn)
        if spec.post_norms:
            out = self.post_attention_norm(out)
        x = x + out
        h = self.ffn_norm(x)
        act = gelu_like_ggml if spec.gelu else F.silu
        out = self.ffn_down(act(self.ffn_gate(h)) * self.ffn_up(h))
        if spec.post_norms:
            out = self.post_ffw_norm(out)
        return x + out


class BaseModel(nn.Module):
    """hidden() gives h_t (after the final norm, what the output matrix reads), logits() the output."""

    def __init__(self, cfg: BaseConfig):
        super().__init__()
        self.cfg = cfg
        self.token_embd = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(BaseLayer(cfg, il) for il in range(cfg.n_layers))
        self.output_norm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.output = None if cfg.tied_output else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.register_buffer("rope_freqs", None)

    def _angles(self, rope: RopeConfig, positions):
        return rope_angles(positions, rope.dims, rope.base, rope.freq_scale, rope.ext_factor, rope.attn_factor,
                           rope.n_ctx_orig, None if self.rope_freqs is None else self.rope_freqs.cpu().numpy())

    def hidden(self, tokens, start_pos: int = 0):
        cfg = self.cfg
        positions = torch.arange(start_pos, start_pos + tokens.shape[1], device=tokens.device)
        angles = self._angles(cfg.rope, positions)
        angles_swa = self._angles(cfg.rope_swa, positions) if cfg.rope_swa else None
        x = self.token_embd(tokens)
        if cfg.spec.scale_embedding:
            x = x * f32(math.sqrt(np.float32(cfg.dim)))
        for layer in self.layers:
            x = layer(x, angles_swa if layer.window else angles)
        return self.output_norm(x)

    def logits(self, hidden):
        logits = F.linear(hidden, self.token_embd.weight if self.output is None else self.output.weight)
        if self.cfg.final_softcap:
            logits = torch.tanh(logits / self.cfg.final_softcap) * self.cfg.final_softcap
        return logits

    def forward(self, tokens):
        return self.logits(self.hidden(tokens))


# -- reading a GGUF --------------------------------------------------------------------------------
def gguf_name(state_name: str) -> str:
    """The GGUF tensor a state_dict entry is read from."""
    if state_name == "rope_freqs":
        return "rope_freqs.weight"
    return state_name.replace("layers.", "blk.", 1)


def expected_tensors(model: BaseModel) -> Dict[str, Tuple[int, ...]]:
    """GGUF name -> numpy shape of every tensor the model reads."""
    return {gguf_name(name): tuple(t.shape) for name, t in model.state_dict().items()}


def load_base_model(f: gguf.GGUFFile) -> BaseModel:
    """The model of a base GGUF with every weight dequantized to float32; every tensor of the file must
    be one the architecture reads (a weight left unread would change the function silently)."""
    cfg = config_from_gguf(f)
    model = BaseModel(cfg)
    if "rope_freqs.weight" in f.tensors and cfg.spec.rope_freqs:
        model.rope_freqs = torch.zeros(cfg.rope.dims // 2)
    expected = expected_tensors(model)
    unknown = sorted(set(f.tensors) - set(expected))
    if unknown:
        raise ModelFileError(f"{f.path}: tensor {unknown[0]} is not part of the {cfg.arch} architecture the "
                             f"trainer reads" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    for name, shape in expected.items():
        info = f.tensors.get(name)
        if info is None:
            raise ModelFileError(f"{f.path}: missing tensor {name}")
        if tuple(reversed(info.dims)) != shape:
            raise ModelFileError(f"{f.path}: tensor {name} has dims {list(info.dims)}, expected {list(reversed(shape))}")
        type_name = gguf.type_name(info.ggml_type)
        if type_name not in quants.TYPES:
            raise ModelFileError(f"{f.path}: tensor {name} is {type_name}; the trainer reads {', '.join(quants.TYPES)}")
    with torch.no_grad():  # one tensor at a time into the model's own storage: the peak is the model plus one tensor
        for name, target in model.state_dict().items():
            target.copy_(torch.from_numpy(np.ascontiguousarray(f.tensor(gguf_name(name)))))
    return model
