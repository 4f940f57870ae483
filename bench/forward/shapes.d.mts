export interface Shape {
  label: string;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  /** Output projection tied to token_embd (no output.weight). */
  tied: boolean;
  ropeFreqBase: number;
  rmsEps: number;
  trainedContext: number;
}

export declare const SHAPES: Record<'smollm2-135m' | 'qwen3-0.6b' | 'llama30m' | 'matvec-dram' | 'matvec-cache', Shape>;
export type ShapeName = keyof typeof SHAPES;
