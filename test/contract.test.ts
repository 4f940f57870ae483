/**
 * The one model contract (sdk/src/contract) against its mirrors: the Rust engine through its ABI (`rg_type_info`,
 * `rg_kind_info`: block layouts, tensor shapes, presence per architecture, global/vector flags), and the trainer's
 * Python type table (training/gguf.py, run with python3).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelWords, type EngineExports } from '../sdk/src/binding.js';
import { ARCHITECTURE_NAMES, ARCHITECTURES, TENSOR_KINDS, architecture, isGlobalKind, type Size, type TensorKindName } from '../sdk/src/contract/architectures.js';
import type { ModelConfig } from '../sdk/src/contract/config.js';
import { GGML_TYPES } from '../sdk/src/contract/ggml-types.js';

const ERR_UNSUPPORTED_TYPE = -6;
const ERR_UNKNOWN_KIND = -4;

let rg: EngineExports;

beforeAll(async () => {
  const bytes = readFileSync(fileURLToPath(new URL('../sdk/wasm/recyclegpt.wasm', import.meta.url)));
  rg = (await WebAssembly.instantiate(bytes, {})).instance.exports as unknown as EngineExports;
});

/** Calls an rg_* contract hook with the config words and a 4-word out buffer; returns [status, out]. */
function query(call: (cfg: number, words: number, out: number) => number, words: number[] = []): [number, number[]] {
  const cfg = rg.rg_alloc(4 * Math.max(words.length, 1)) >>> 0;
  const out = rg.rg_alloc(16) >>> 0;
  new Uint32Array(rg.memory.buffer, cfg, words.length).set(words);
  try {
    const status = call(cfg, words.length, out);
    return [status, Array.from(new Uint32Array(rg.memory.buffer, out, 4))];
  } finally {
    rg.rg_free(cfg, 4 * Math.max(words.length, 1));
    rg.rg_free(out, 16);
  }
}

describe('ggml types: TS table vs the engine', () => {
  it.each(GGML_TYPES.map((t) => [t.name, t] as const))('%s', (name, type) => {
    const [status, [blockSize, blockBytes]] = query((_, __, out) => rg.rg_type_info(type.id, out));
    if (type.engine) {
      expect(status).toBe(0);
      expect([blockSize, blockBytes]).toEqual([type.blockSize, type.blockBytes]);
    } else {
      expect(status, `the engine runs ${name}, which the contract says it does not`).toBe(ERR_UNSUPPORTED_TYPE);
    }
  });

  it('knows no type the contract does not list', () => {
    const known = new Set(GGML_TYPES.map((t) => t.id));
    for (let id = 0; id < 64; id++) {
      if (!known.has(id)) expect(query((_, __, out) => rg.rg_type_info(id, out))[0], `type id ${id}`).toBe(ERR_UNSUPPORTED_TYPE);
    }
  });
});

/** A config of `arch` with every size distinct, so a swapped dimension shows. */
function sampleConfig(arch: ModelConfig['architecture']): ModelConfig {
  return {
    architecture: arch,
    vocabSize: 300, dim: 96, layers: 6, heads: 6, kvHeads: 2, ffnDim: 160, contextLength: 40, headDim: 20, ropeDim: 12,
    ropeFreqBase: 10000, rmsEps: 1e-6, kvType: 'f16', maxBatch: 4, sequences: 2,
    ropeScaling: { type: 'linear', factor: 1, attnFactor: 1, originalContext: 40 },
    slidingWindow: architecture(arch).slidingWindow ? { size: 8, pattern: 6, ropeFreqBase: 10000 } : undefined,
    attentionScaleDim: 20,
    finalLogitSoftcap: 0,
  };
}

function size(s: Size, c: ModelConfig): number {
  return { vocab: c.vocabSize, dim: c.dim, qDim: c.heads * c.headDim, kvDim: c.kvHeads * c.headDim, ffn: c.ffnDim, headDim: c.headDim, ropePairs: c.ropeDim / 2 }[s];
}

describe('tensor kinds per architecture: TS data vs the engine', () => {
  const kinds = Object.keys(TENSOR_KINDS) as TensorKindName[];

  it('has one engine kind per contract kind, in id order', () => {
    expect(kinds.map((k) => TENSOR_KINDS[k].id)).toEqual(kinds.map((_, i) => i));
    const words = modelWords(sampleConfig('llama'));
    expect(query((cfg, n, out) => rg.rg_kind_info(kinds.length, cfg, n, out), words)[0]).toBe(ERR_UNKNOWN_KIND);
  });

  describe.each(ARCHITECTURE_NAMES)('%s', (arch) => {
    const config = sampleConfig(arch);
    it.each(kinds)('%s', (kind) => {
      const [status, [rows, cols, flags, presence]] = query((cfg, n, out) => rg.rg_kind_info(TENSOR_KINDS[kind].id, cfg, n, out), modelWords(config));
      expect(status).toBe(0);
      const dims = TENSOR_KINDS[kind].dims.map((d) => size(d, config));
      expect([cols, rows]).toEqual([dims[0], dims[1] ?? 1]);
      expect({ global: (flags! & 1) === 1, vector: (flags! & 2) === 2 }).toEqual({ global: isGlobalKind(kind), vector: dims.length === 1 });
      const want = ARCHITECTURES[arch].tensors as Partial<Record<TensorKindName, string>>;
      expect(['absent', 'optional', 'required'][presence!]).toBe(want[kind] ?? 'absent');
    });
  });
});

describe('training/gguf.py type table vs the TS table', () => {
  it('lists every type with the same name and block layout', () => {
    const script = 'import json; from training import gguf; print(json.dumps({str(k): v for k, v in gguf.GGML_TYPES.items()}))';
    const root = fileURLToPath(new URL('..', import.meta.url));
    const python = JSON.parse(execFileSync('python3', ['-c', script], { cwd: root, encoding: 'utf8' })) as Record<string, [string, number, number]>;
    expect(python).toEqual(Object.fromEntries(GGML_TYPES.map((t) => [String(t.id), [t.name, t.blockSize, t.blockBytes]])));
  });
});
