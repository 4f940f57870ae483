/** What the engine is told about a model: the words of `rg_model_new` and `rg_recycle_new`, as typed objects. */
import type { ArchitectureName } from './architectures.js';

/** A llama-style decoder stack's shape: what a recycle head has of its own (`rg_recycle_new`). */
export interface DecoderConfig {
  layers: number;
  heads: number;
  kvHeads: number;
  ffnDim: number;
  /** KV cache capacity in tokens. */
  contextLength: number;
  headDim: number;
  ropeDim: number;
  ropeFreqBase: number;
  rmsEps: number;
  kvType: 'f16' | 'f32';
  /** Tokens one forward takes at most. */
  maxBatch: number;
}

/** `<arch>.rope.scaling.*`: how RoPE frequencies are scaled past the trained context. */
export interface RopeScaling {
  /** llama.cpp's default when the key is absent is 'linear' (with factor 1: no scaling). */
  type: 'none' | 'linear' | 'yarn';
  /** `rope.scaling.factor` (or the older `rope.scale_linear`); 1 when absent. */
  factor: number;
  /** `rope.scaling.attn_factor`: multiplies every cos/sin (1 when absent). */
  attnFactor: number;
  /** YaRN's original context: `rope.scaling.original_context_length`, else the trained context. */
  originalContext: number;
}

/** Sliding-window attention (Gemma 3): see ArchitectureSpec.slidingWindow. */
export interface SlidingWindow {
  size: number;
  /** Layer l attends through the window unless l % pattern == pattern - 1. */
  pattern: number;
  /** RoPE base of the windowed layers. */
  ropeFreqBase: number;
}

/** A model of any supported architecture (`rg_model_new`). */
export interface ModelConfig extends DecoderConfig {
  architecture: ArchitectureName;
  vocabSize: number;
  dim: number;
  /** Independent KV caches a model keeps (base and head), one selected at a time; default 1. */
  sequences: number;
  ropeScaling: RopeScaling;
  slidingWindow?: SlidingWindow;
  /** The attention scale is 1/√attentionScaleDim (head_dim unless the architecture says otherwise). */
  attentionScaleDim: number;
  /** Logits become cap·tanh(logits / cap) (Gemma's `final_logit_softcapping`); 0 = none. */
  finalLogitSoftcap: number;
}

/** A recycle head's own hyperparameters; its vocabulary, width and KV sequences are the base's. */
export type RecycleConfig = DecoderConfig;
