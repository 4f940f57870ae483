"""A llama model and the RecycleGPT recycle head, numerically like llama.cpp.

Module names mirror GGUF tensor names (layers.N.attn_q <-> blk.N.attn_q), so
conversion (convert.py) is a rename. RoPE uses llama.cpp's "normal" mode:
adjacent pairs (2i, 2i+1) rotate by pos * base^(-2i/rope_dim), the angles computed as ggml
computes them (rope_angles, shared with the frozen bases of base_model.py).
"""
import math
import struct
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LlamaConfig:
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    context_length: int = 256
    rope_base: float = 10000.0
    rms_eps: float = 1e-5
    tied_output: bool = True

    def __post_init__(self):
        # GGUF stores these as f32 (and llama.cpp computes with f32): round once here
        # so a model and its reload agree bit for bit.
        self.rms_eps = struct.unpack("<f", struct.pack("<f", self.rms_eps))[0]
        self.rope_base = struct.unpack("<f", struct.pack("<f", self.rope_base))[0]
        problems = []
        if self.dim % self.n_heads:
            problems.append(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            problems.append(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        if (self.dim // self.n_heads) % 2:
            problems.append("head_dim must be even for RoPE")
        if problems:
            raise ValueError("invalid model shape: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_angles(positions, n_dims: int, base: float, freq_scale: float = 1.0, ext_factor: float = 0.0,
                attn_factor: float = 1.0, n_ctx_orig: int = 0, freq_factors=None, beta_fast: float = 32.0,
                beta_slow: float = 1.0):
    """cos and sin, (T, n_dims/2) float32, of ggml's RoPE cache (ggml_rope_cache_init) in its float32
    order: theta_i = p·s·s·…·s (i factors, s = base^(-2/n_dims)), divided by the frequency factor
    (Llama 3's rope_freqs), times freq_scale (linear scaling) or YaRN-blended with the unscaled angle
    per pair (ext_factor 1), both times the magnitude scale."""
    f32 = np.float32
    half = n_dims // 2
    pos = np.asarray(positions.cpu() if torch.is_tensor(positions) else positions, dtype=f32)
    steps = np.empty((len(pos), half), dtype=f32)
    steps[:, 0] = pos
    steps[:, 1:] = np.power(f32(base), f32(-2.0) / f32(n_dims))
    theta = np.cumprod(steps, axis=1, dtype=f32)
    if freq_factors is not None:
        theta = theta / np.asarray(freq_factors, dtype=f32)[:half]
    interp = f32(freq_scale) * theta
    mscale = f32(attn_factor)
    if ext_factor:
        low, high = yarn_corr_dims(n_dims, n_ctx_orig, base, beta_fast, beta_slow)
        y = (np.arange(half, dtype=f32) - low) / max(f32(0.001), high - low)
        ramp = (f32(1) - np.minimum(f32(1), np.maximum(f32(0), y))) * f32(ext_factor)
        theta = interp * (f32(1) - ramp) + theta * ramp
        mscale = mscale * (f32(1) + f32(0.1) * np.log(f32(1) / f32(freq_scale)))
    else:
        theta = interp
    device = positions.device if torch.is_tensor(positions) else None
    return (torch.from_numpy(np.cos(theta) * mscale).to(device), torch.from_numpy(np.sin(theta) * mscale).to(device))


def yarn_corr_dims(n_dims: int, n_ctx_orig: int, base: float, beta_fast: float, beta_slow: float):
    """ggml_rope_yarn_corr_dims: the pair indices between which YaRN blends from extrapolation to interpolation."""
    f32 = np.float32

    def dim(n_rot):
        return f32(n_dims) * np.log(f32(n_ctx_orig) / (f32(n_rot) * f32(2 * math.pi))) / (f32(2) * np.log(f32(base)))

    return max(f32(0), np.floor(dim(beta_fast))), min(f32(n_dims - 1), np.ceil(dim(beta_slow)))


def apply_rope(x, cos, sin, neox: bool = False):
    """x: (B, T, H, head_dim). Rotates the first 2·cos.shape[-1] dims: adjacent pairs (2i, 2i+1) in
    llama.cpp's normal mode, pairs (i, i + n/2) in NEOX mode; the rest pass through."""
    half = cos.shape[-1]
    rot, rest = x[..., :2 * half].float(), x[..., 2 * half:]
    x0, x1 = (rot[..., :half], rot[..., half:]) if neox else (rot[..., 0::2], rot[..., 1::2])
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    a, b = x0 * cos - x1 * sin, x0 * sin + x1 * cos
    rotated = torch.cat([a, b], dim=-1) if neox else torch.stack([a, b], dim=-1).flatten(-2)
    return torch.cat([rotated.type_as(x), rest], dim=-1) if rest.shape[-1] else rotated.type_as(x)


def rope(x, positions, base: float):
    """llama.cpp's normal-mode RoPE over the whole head: x (B, T, H, head_dim)."""
    return apply_rope(x, *rope_angles(positions, x.shape[-1], base))


# torch >= 2.1 takes the scale; older versions (Debian's 1.13) use the explicit path below.
_SDPA_SCALE = hasattr(F, "scaled_dot_product_attention") and tuple(
    int(v) for v in torch.__version__.split(".")[:2]) >= (2, 1)


def causal_attention(q, k, v, scale: float = None, window: int = 0, empty_slot: bool = False):
    """q, k, v: (B, H, T, head_dim) -> (B, H, T, head_dim). Scores times `scale` (default
    1/sqrt(head_dim)); with a window, query t sees keys t-window+1..t (llama.cpp's standard SWA).
    `empty_slot`: every query also sees one key and value of zeros before the sequence (score 0,
    adding nothing but weight to the softmax), as the engine's recycle head sees the position-0 slot
    of its KV cache, which it never writes (its rows sit at positions 1, 2, ...)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if _SDPA_SCALE and not window and not empty_slot:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    i = torch.arange(q.shape[-2], device=q.device)
    allowed = i[None, :] <= i[:, None]
    if window:
        allowed &= i[:, None] - i[None, :] < window
    if empty_slot:
        k, v = (torch.cat([z.new_zeros(z.shape[:-2] + (1, z.shape[-1])), z], dim=-2) for z in (k, v))
        allowed = torch.cat([allowed.new_ones(allowed.shape[0], 1), allowed], dim=1)
    if _SDPA_SCALE:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
    scores = (q @ k.transpose(-2, -1)) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).type_as(q) @ v


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig, empty_slot: bool = False):
        super().__init__()
        self.cfg, self.empty_slot = cfg, empty_slot
        hd = cfg.head_dim
        self.attn_norm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.attn_q = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.attn_k = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.attn_v = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.attn_output = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.ffn_gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.ffn_up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.ffn_down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x, positions):
        cfg, (b, t, _) = self.cfg, x.shape
        h = self.attn_norm(x)
        q = rope(self.attn_q(h).view(b, t, cfg.n_heads, cfg.head_dim), positions, cfg.rope_base)
        k = rope(self.attn_k(h).view(b, t, cfg.n_kv_heads, cfg.head_dim), positions, cfg.rope_base)
        v = self.attn_v(h).view(b, t, cfg.n_kv_heads, cfg.head_dim)
        group = cfg.n_heads // cfg.n_kv_heads  # query head h reads kv head h // group
        k, v = (z.transpose(1, 2).repeat_interleave(group, dim=1) for z in (k, v))
        attn = causal_attention(q.transpose(1, 2), k, v, empty_slot=self.empty_slot).transpose(1, 2).reshape(b, t, -1)
        x = x + self.attn_output(attn)
        h = self.ffn_norm(x)
        return x + self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h))


def _init_weights(module: nn.Module, n_layers: int) -> None:
    for name, p in module.named_parameters():
        if p.dim() == 2:
            std = 0.02 / math.sqrt(2 * n_layers) if name.endswith(("attn_output.weight", "ffn_down.weight")) else 0.02
            nn.init.normal_(p, std=std)


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.token_embd = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.output_norm = RMSNorm(cfg.dim, cfg.rms_eps)
        self.output = None if cfg.tied_output else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        _init_weights(self, cfg.n_layers)

    def hidden(self, tokens, start_pos: int = 0):
        """Final-normed hidden states (what the output matrix consumes): (B, T, dim)."""
        positions = torch.arange(start_pos, start_pos + tokens.shape[1], device=tokens.device)
        x = self.token_embd(tokens)
        for layer in self.layers:
            x = layer(x, positions)
        return self.output_norm(x)

    def logits(self, hidden):
        weight = self.token_embd.weight if self.output is None else self.output.weight
        return F.linear(hidden, weight)

    def forward(self, tokens):
        return self.logits(self.hidden(tokens))


class RecycleHead(nn.Module):
    """Predicts x_{t+2} from [h_t ; embed(x_{t+1})] through the base's embedding and output.

    The head's sequence index t runs at RoPE position t + 1 (the position of x_{t+1}); its attention
    also sees the empty position-0 slot of the engine's head cache (causal_attention's empty_slot).
    cfg.vocab_size is the base's vocabulary; the head owns no vocab-sized tensor.
    """

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.proj = nn.Linear(2 * cfg.dim, cfg.dim, bias=False)
        self.layers = nn.ModuleList(DecoderLayer(cfg, empty_slot=True) for _ in range(cfg.n_layers))
        self.output_norm = RMSNorm(cfg.dim, cfg.rms_eps)
        _init_weights(self, cfg.n_layers)

    def hidden(self, base: Llama, base_hidden, next_tokens, start_pos: int = 0):
        x = self.proj(torch.cat([base_hidden, base.token_embd(next_tokens)], dim=-1))
        positions = torch.arange(start_pos + 1, start_pos + 1 + x.shape[1], device=x.device)
        for layer in self.layers:
            x = layer(x, positions)
        return self.output_norm(x)

    def forward(self, base: Llama, base_hidden, next_tokens):
        return base.logits(self.hidden(base, base_hidden, next_tokens))


def head_config_for(base, n_layers: int = 1) -> LlamaConfig:
    """A head shaped like one of the base's layers (same heads and ffn; head_dim = dim / heads,
    whatever the base's), for a LlamaConfig or any base_model.BaseConfig."""
    return LlamaConfig(vocab_size=base.vocab_size, dim=base.dim, n_layers=n_layers, n_heads=base.n_heads,
                       n_kv_heads=base.n_kv_heads, ffn_dim=base.ffn_dim, context_length=base.context_length,
                       rope_base=base.rope_base, rms_eps=base.rms_eps, tied_output=True)


def recycle_losses(base, head: RecycleHead, tokens, hidden_weight: float = 0.0, lm: bool = True):
    """LM loss (zero unless `lm`: a frozen base needs none), recycle loss (x_{t+2} from h_t, x_{t+1})
    and optional hidden regression.

    tokens: (B, T+1) ids; the base reads tokens[:, :-1] and predicts tokens[:, 1:].
    """
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    hidden = base.hidden(inputs)
    lm_loss = hidden.new_zeros(())
    if lm:
        lm_loss = F.cross_entropy(base.logits(hidden).flatten(0, 1).float(), targets.flatten())
    # h_t with x_{t+1} = targets[:, t] predicts x_{t+2} = targets[:, t+1].
    head_hidden = head.hidden(base, hidden[:, :-1], targets[:, :-1])
    head_logits = base.logits(head_hidden)
    recycle_loss = F.cross_entropy(head_logits.flatten(0, 1).float(), targets[:, 1:].flatten())
    regression = head_hidden.new_zeros(())
    if hidden_weight:
        # The head's state should look like h_{t+1}, the base's state that predicts x_{t+2}.
        regression = F.mse_loss(head_hidden.float(), hidden[:, 1:].detach().float())
    return lm_loss, recycle_loss, regression
