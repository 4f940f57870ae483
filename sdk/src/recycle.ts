/** The recycle head sidecar (training/README.md): what it must say about its base, and its hyperparameters. */
import type { ModelConfig, RecycleConfig } from './contract/config.js';
import { GGUFError, InvalidArgumentError, UnsupportedError } from './errors.js';
import type { GGUFHeader } from './gguf/types.js';
import { architectureOf, decoderShape } from './model-file.js';

/** The head's hyperparameters, after checking that it was made for this base. */
export function recycleConfig(header: GGUFHeader, base: ModelConfig, baseName: string, baseEmbdHash: string): RecycleConfig {
  const meta = header.metadata;
  const arch = architectureOf(meta);
  if (arch !== 'recycle') {
    throw new UnsupportedError(`the recycle head file has general.architecture '${arch}'; expected 'recycle' (a head made by training/train.py)`);
  }
  const shape = decoderShape(meta, 'recycle');
  const madeFor = typeof meta['recycle.base.name'] === 'string' ? meta['recycle.base.name'] : 'an unnamed model';
  const mismatch = (what: string) =>
    new InvalidArgumentError(`this recycle head was made for ${madeFor}, not for ${baseName || 'this model'}: ${what}`);
  if (meta['recycle.base.vocab_size'] !== base.vocabSize) {
    throw mismatch(`vocabulary ${String(meta['recycle.base.vocab_size'])} vs ${base.vocabSize}`);
  }
  if (meta['recycle.base.embedding_length'] !== base.dim || shape.dim !== base.dim) {
    throw mismatch(`width ${String(meta['recycle.base.embedding_length'])} vs ${base.dim}`);
  }
  const hashes = meta['recycle.base.token_embd_hashes'];
  if (!Array.isArray(hashes) || !hashes.every((h: unknown) => typeof h === 'string')) {
    throw new GGUFError("the recycle head lacks 'recycle.base.token_embd_hashes' (strings): it cannot be matched to a base");
  }
  if (!(hashes as string[]).includes(baseEmbdHash)) {
    throw mismatch(`its token embedding hash ${baseEmbdHash} is not among the head's (${hashes.join(', ')}); train or export a head for this file (training/README.md)`);
  }
  const { dim: _dim, trainedContextLength: _trained, ...decoder } = shape;
  return {
    ...decoder,
    // Head rows follow the base position by position, so its cache spans the base's.
    contextLength: base.contextLength,
    kvType: base.kvType,
    maxBatch: base.maxBatch,
  };
}

/** FNV-1a 64-bit, as lowercase hex, in 32-bit halves (BigInt would be ~50x slower on megabytes). */
export function fnv1a64(bytes: Uint8Array): string {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo ^= bytes[i];
    // h * 0x100000001b3 = h * 0x1b3 + (h << 40), modulo 2^64.
    const a = (lo & 0xffff) * 0x1b3;
    const b = (lo >>> 16) * 0x1b3 + (a >>> 16);
    hi = (Math.imul(hi, 0x1b3) + (b >>> 16) + (lo << 8)) >>> 0;
    lo = (((b & 0xffff) << 16) | (a & 0xffff)) >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}
