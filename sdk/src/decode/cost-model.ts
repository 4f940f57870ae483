/**
 * What drafting costs on the WASM engine, counted instead of timed: where the clock stands still while code runs
 * (production Workers), adaptive `exact`/`chain` and jump-forward judge drafting by this model. A pass of k tokens streams the weights
 * (and the K/V attention reads) once and computes every multiply-add k times:
 *
 *   t(k) = BYTE_COST · bytes + k · macs
 *
 * in units of one Q8_0 multiply-add, with each type's multiply-adds weighted by what its kernel costs (MAC_COST).
 * The constants are calibrated by `bench/draft-costs.ts` (CPU time in Node, where the clock works) and stated there
 * and in bench/README.md. They describe the machine they were measured on: a CPU that waits longer on memory
 * (a larger BYTE_COST) makes a k-token pass relatively cheaper, so the model errs towards not drafting.
 */
import { kvWord } from '../binding.js';
import type { ModelConfig, RecycleConfig } from '../contract/config.js';
import { ggmlTypeName } from '../contract/ggml-types.js';
import type { GGUFTensorInfo } from '../gguf/types.js';
import type { DraftCost } from './context.js';

/** Cost of streaming one byte (weights, K/V), in Q8_0 multiply-adds. */
export const BYTE_COST = 0.5;

/**
 * Cost of one multiply-add by weight type, relative to Q8_0's (the SIMD128 kernels'). Types without a measurement
 * take Q8_0's: their kernels dot the same 8-bit activations after unpacking.
 */
export const MAC_COST: Readonly<Record<string, number>> = { Q8_0: 1, Q4_0: 1, F16: 3, BF16: 3, F32: 2 };
const ATTENTION_MAC_COST = 2; // f32 dots over the K/V cache

/** Position the modeled passes attend from (as the timed calibration's). */
export const MODEL_POSITION = 128;

/** One stack's pass, counted: bytes it streams once per pass, and (type-weighted) multiply-adds per token. */
export interface PassCount {
  bytes: number;
  macs: number;
}

/** A base pass and a head row, counted. */
export interface DraftCounts {
  base: PassCount;
  head: PassCount;
}

/** The relative costs of drafting `drafts` tokens that the counts give. */
export function modeledDraftCost(counts: DraftCounts, drafts: number): DraftCost {
  const time = (pass: PassCount, tokens: number) => BYTE_COST * pass.bytes + tokens * pass.macs;
  const one = time(counts.base, 1);
  return { pass: time(counts.base, drafts + 1) / one, head: time(counts.head, 1) / one, source: 'modeled' };
}

type Stack = Pick<RecycleConfig, 'layers' | 'heads' | 'kvHeads' | 'headDim' | 'kvType' | 'contextLength'>;

/**
 * Counts a base pass and a head row from the files' tensors: every matrix but the embedding (read a row a token;
 * counted once as the output matrix when tied), plus attention over MODEL_POSITION positions. A head row computes
 * `outputRows` rows of the base's output matrix (the whole vocabulary, or a shortlist); without a head (grammar
 * drafts need none) it counts nothing.
 */
export function countDraftCosts(
  base: { tensors: GGUFTensorInfo[]; config: Stack & Pick<ModelConfig, 'sequences'> },
  head?: { tensors: GGUFTensorInfo[]; config: Stack; outputRows: number },
): DraftCounts {
  const matrices = base.tensors.filter((t) => t.dims.length === 2 && t.dims[1]! > 1);
  const tied = !matrices.some((t) => t.name === 'output.weight');
  const output = matrices.find((t) => t.name === (tied ? 'token_embd.weight' : 'output.weight'))!;
  const layers = matrices.filter((t) => t.name !== 'token_embd.weight' && t.name !== 'output.weight');
  const sequences = base.config.sequences;
  const sum = (counts: PassCount[]) => counts.reduce((a, b) => ({ bytes: a.bytes + b.bytes, macs: a.macs + b.macs }), { bytes: 0, macs: 0 });
  const headMatrices = head ? head.tensors.filter((t) => t.dims.length === 2 && t.dims[1]! > 1) : [];
  return {
    base: sum([...[...layers, output].map((t) => matrix(t)), attention(base.config, sequences)]),
    head: head ? sum([...headMatrices.map((t) => matrix(t)), matrix(output, head.outputRows / output.dims[1]!), attention(head.config, sequences)]) : { bytes: 0, macs: 0 },
  };
}

/** A matrix's bytes and multiply-adds (of `share` of its rows). */
function matrix(tensor: GGUFTensorInfo, share = 1): PassCount {
  const values = tensor.dims[0]! * tensor.dims[1]! * share;
  return { bytes: tensor.byteSize * share, macs: values * (MAC_COST[ggmlTypeName(tensor.type)] ?? 1) };
}

/** Attention at MODEL_POSITION: every layer reads the K/V rows before it and dots each query head with them. */
function attention(stack: Stack, sequences: number): PassCount {
  const kvBytes = kvWord({ ...stack, sequences }) === 1 ? 2 : 4;
  const rows = stack.layers * MODEL_POSITION;
  return { bytes: rows * 2 * stack.kvHeads * stack.headDim * kvBytes, macs: rows * 2 * stack.heads * stack.headDim * ATTENTION_MAC_COST };
}
