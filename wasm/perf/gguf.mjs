// Just enough GGUF for the perf scripts: metadata, tensor infos, and loading a llama file into the
// engine's bare C ABI (sdk/wasm/recyclegpt.wasm), the way the SDK's loader does it.
import { closeSync, openSync, readSync } from 'node:fs';

const KINDS = {
  token_embd: 0, output_norm: 1, output: 2, attn_norm: 3, attn_q: 4, attn_k: 5, attn_v: 6, attn_output: 7,
  ffn_norm: 8, ffn_gate: 9, ffn_up: 10, ffn_down: 11,
};
/** ggml type id → [name, block values, block bytes]. */
export const GGML = {
  0: ['F32', 1, 4], 1: ['F16', 1, 2], 2: ['Q4_0', 32, 18], 3: ['Q4_1', 32, 20], 6: ['Q5_0', 32, 22], 7: ['Q5_1', 32, 24],
  8: ['Q8_0', 32, 34], 10: ['Q2_K', 256, 84], 11: ['Q3_K', 256, 110], 12: ['Q4_K', 256, 144], 13: ['Q5_K', 256, 176],
  14: ['Q6_K', 256, 210], 30: ['BF16', 1, 2],
};

export function readGGUF(path) {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(64 << 20);
  const got = readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  let at = 0;
  const u32 = () => { const v = head.readUInt32LE(at); at += 4; return v; };
  const u64 = () => { const v = Number(head.readBigUInt64LE(at)); at += 8; return v; };
  const str = () => { const n = u64(); const s = head.toString('utf8', at, at + n); at += n; return s; };
  const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (t) => {
    if (t === 8) return str();
    if (t === 9) {
      const et = u32(), n = u64();
      if (et === 8) { for (let i = 0; i < n; i++) str(); return n; }
      at += n * SIZES[et];
      return n;
    }
    const v = { 0: () => head.readUInt8(at), 1: () => head.readInt8(at), 2: () => head.readUInt16LE(at), 3: () => head.readInt16LE(at), 4: () => head.readUInt32LE(at), 5: () => head.readInt32LE(at), 6: () => head.readFloatLE(at), 7: () => head.readUInt8(at), 10: () => Number(head.readBigUInt64LE(at)), 11: () => Number(head.readBigInt64LE(at)), 12: () => head.readDoubleLE(at) }[t]();
    at += SIZES[t];
    return v;
  };
  if (head.toString('latin1', 0, 4) !== 'GGUF') throw new Error(`${path}: not a GGUF`);
  at = 8;
  const nTensors = u64(), nKv = u64();
  const meta = {};
  for (let i = 0; i < nKv; i++) { const k = str(); meta[k] = value(u32()); }
  const tensors = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str(), nd = u32();
    const dims = Array.from({ length: nd }, u64);
    const type = u32(), offset = u64();
    const [, values, bytes] = GGML[type];
    const count = dims.reduce((a, b) => a * b, 1);
    tensors.push({ name, dims, type, offset, bytes: (count / values) * bytes });
  }
  if (at > got) throw new Error('GGUF header larger than 64 MiB');
  const align = meta['general.alignment'] ?? 32;
  return { meta, tensors, dataOffset: Math.ceil(at / align) * align };
}

/** Counts of each ggml type among the file's matrices, e.g. "Q4_K×120 Q6_K×30 …". */
export function typeMix(gguf) {
  const counts = {};
  for (const t of gguf.tensors) if (t.dims.length === 2) counts[GGML[t.type][0]] = (counts[GGML[t.type][0]] ?? 0) + 1;
  return Object.entries(counts).map(([k, v]) => `${k}×${v}`).join(' ');
}

function check(rg, ok, what) {
  if (!ok) throw new Error(`${what} failed: engine error ${rg.rg_last_error()}`);
}

/** Loads a llama GGUF into the engine `rg`; returns { model, cfg }. kv: 0 f32, 1 f16, 2 f16 widened. */
export function loadIntoEngine(rg, path, { ctx = 1024, maxBatch = 32, kv = 1 } = {}) {
  const g = readGGUF(path);
  const m = (k) => g.meta[`llama.${k}`];
  const heads = m('attention.head_count');
  const cfg = {
    vocab: g.tensors.find((t) => t.name === 'token_embd.weight').dims[1], dim: m('embedding_length'),
    layers: m('block_count'), heads, kvHeads: m('attention.head_count_kv'), ffn: m('feed_forward_length'), ctx,
    headDim: m('attention.key_length') ?? m('embedding_length') / heads,
  };
  // docs/ARCHITECTURE.md's 24 config words: a plain llama (no arch flags), one sequence, no RoPE scaling
  // (attention factor 1, original context = ctx), no sliding window, no soft-cap.
  const words = [cfg.vocab, cfg.dim, cfg.layers, cfg.heads, cfg.kvHeads, cfg.ffn, ctx, cfg.headDim, m('rope.dimension_count') ?? cfg.headDim, 0, 0, kv, maxBatch,
    0, 1, 0, 0, 0, ctx, 0, 0, 0, 0, 0];
  const ptr = rg.rg_alloc(words.length * 4) >>> 0;
  new Uint32Array(rg.memory.buffer, ptr, words.length).set(words);
  const f32 = new Float32Array(rg.memory.buffer, ptr, words.length);
  [f32[9], f32[10], f32[17]] = [m('rope.freq_base') ?? 10000, m('attention.layer_norm_rms_epsilon'), 1];
  const model = rg.rg_model_new(ptr, words.length);
  rg.rg_free(ptr, words.length * 4);
  check(rg, model, 'rg_model_new');
  const fd = openSync(path, 'r');
  for (const t of g.tensors) {
    const match = /^(?:blk\.(\d+)\.)?(\w+)\.weight$/.exec(t.name);
    const kind = KINDS[match?.[2]];
    if (kind === undefined) throw new Error(`unknown tensor ${t.name}`);
    const rows = t.dims[1] ?? 1;
    const dst = rg.rg_tensor_reserve(model, kind, Number(match[1] ?? 0), t.type, rows, t.dims[0]) >>> 0;
    check(rg, dst, `reserve ${t.name}`);
    readSync(fd, new Uint8Array(rg.memory.buffer, dst, t.bytes), 0, t.bytes, g.dataOffset + t.offset);
  }
  closeSync(fd);
  check(rg, rg.rg_model_ready(model) === 0, 'rg_model_ready');
  return { model, cfg, gguf: g };
}
