import type { EngineExports } from '../../sdk/src/binding.js';
import type { Shape } from './shapes.mjs';

/** The engine exports the probe uses. */
export type ProbeExports = Pick<
  EngineExports,
  'memory' | 'rg_alloc' | 'rg_free' | 'rg_model_new' | 'rg_tensor_reserve' | 'rg_model_ready' | 'rg_forward' | 'rg_logits' | 'rg_model_free' | 'rg_last_error'
>;

export type ProbeType = 'f32' | 'f16' | 'q4_0' | 'q5_0' | 'q8_0' | 'q4_k' | 'q6_k';
export declare const TYPES: Record<ProbeType, { id: number; blockBytes: number; blockValues: number }>;

export interface Probe {
  model: number;
  tokens: number;
  params: number;
  weightBytes: number;
  vocab: number;
  maxBatch: number;
}

export type Clock = () => number;

export declare function buildRandomModel(rg: ProbeExports, shape: Shape, type: ProbeType, options?: { ctx?: number; maxBatch?: number; seed?: number }): Probe;
export declare function decodeSteps(rg: ProbeExports, probe: Probe, steps: number, from?: number): void;
export declare function prefillPrompt(rg: ProbeExports, probe: Probe, n: number): void;
export declare function passes(rg: ProbeExports, probe: Probe, n: number, count: number, pos?: number): void;
export declare function timeDecode(rg: ProbeExports, probe: Probe, options: { steps?: number; rounds?: number; from?: number; clock: Clock }): { msPerStep: number; rounds: number[] };
export declare function timePrefill(rg: ProbeExports, probe: Probe, options: { n?: number; rounds?: number; clock: Clock }): { ms: number; rounds: number[] };
export declare function timePasses(rg: ProbeExports, probe: Probe, options: { sizes?: number[]; pos?: number; rounds?: number; perRound?: number; clock: Clock }): Record<number, number>;
export declare function freeModel(rg: ProbeExports, probe: Probe): void;
export declare function wasmFeatures(): { relaxedSimd: boolean };
