"""Random-weight GGUFs in real models' shapes, for the engine's kernel work (not the bench: bench/ owns
the published rows). Writes an F16 llama file, then asks llama.cpp's own quantizer
(llama_model_quantize on node-llama-cpp's libllama, one thread) for each file type, so that mixes such
as Q4_K_M are laid out exactly as llama-quantize lays them out (576-wide rows fall back to Q5_0 / Q8_0).

Run from the repository root: python3 wasm/perf/models.py SHAPE FTYPE...   (e.g. smollm2 Q8_0 Q4_0 Q4_K_M)
FTYPE may end in `-pure` (llama-quantize --pure: every matrix in that type). Files go to wasm/perf/.cache/.
"""
import ctypes, glob, os, struct, sys

import numpy as np

SHAPES = {
    # SmolLM2-135M: llama, tied embeddings.
    'smollm2': dict(dim=576, layers=30, heads=9, kv_heads=3, head_dim=64, ffn=1536, vocab=49152, rope_base=100000.0, eps=1e-5),
    # Qwen3-0.6B's tensor sizes as a llama file (no q/k norms): head_dim 128 on a 1024 residual, tied.
    'qwen3': dict(dim=1024, layers=28, heads=16, kv_heads=8, head_dim=128, ffn=3072, vocab=151936, rope_base=1e6, eps=1e-6),
    # Kernel probe: ~21 M weights in every matrix type a file type makes (all rows multiples of 256).
    'kern': dict(dim=1024, layers=2, heads=8, kv_heads=8, head_dim=128, ffn=3072, vocab=4096, rope_base=1e4, eps=1e-5),
}
FTYPES = {'F16': 1, 'Q4_0': 2, 'Q4_1': 3, 'Q8_0': 7, 'Q5_0': 8, 'Q5_1': 9, 'Q2_K': 10, 'Q3_K_M': 12, 'Q4_K_S': 14,
          'Q4_K_M': 15, 'Q5_K_M': 17, 'Q6_K': 18, 'BF16': 32}
CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '.cache')
CTX = 2048


def gguf_string(s):
    b = s.encode()
    return struct.pack('<Q', len(b)) + b


def kv(key, vtype, value):
    out = gguf_string(key) + struct.pack('<I', vtype)
    if vtype == 4:  # u32
        return out + struct.pack('<I', value)
    if vtype == 6:  # f32
        return out + struct.pack('<f', value)
    if vtype == 8:  # string
        return out + gguf_string(value)
    raise ValueError(vtype)


def array_kv(key, elem, values):
    out = gguf_string(key) + struct.pack('<II', 9, elem) + struct.pack('<Q', len(values))
    if elem == 8:
        return out + b''.join(gguf_string(v) for v in values)
    return out + np.asarray(values, dtype={6: '<f4', 5: '<i4'}[elem]).tobytes()


def write_f16(path, s):
    rng = np.random.default_rng(1)
    q, kvd = s['heads'] * s['head_dim'], s['kv_heads'] * s['head_dim']
    tensors = [('token_embd.weight', (s['dim'], s['vocab']), 3 / np.sqrt(s['dim']))]
    for l in range(s['layers']):
        p = f'blk.{l}.'
        tensors += [(p + 'attn_norm.weight', (s['dim'],), None),
                    (p + 'attn_q.weight', (s['dim'], q), 1 / np.sqrt(s['dim'])),
                    (p + 'attn_k.weight', (s['dim'], kvd), 1 / np.sqrt(s['dim'])),
                    (p + 'attn_v.weight', (s['dim'], kvd), 1 / np.sqrt(s['dim'])),
                    (p + 'attn_output.weight', (q, s['dim']), 1 / np.sqrt(q)),
                    (p + 'ffn_norm.weight', (s['dim'],), None),
                    (p + 'ffn_gate.weight', (s['dim'], s['ffn']), 1 / np.sqrt(s['dim'])),
                    (p + 'ffn_up.weight', (s['dim'], s['ffn']), 1 / np.sqrt(s['dim'])),
                    (p + 'ffn_down.weight', (s['ffn'], s['dim']), 1 / np.sqrt(s['ffn']))]
    tensors.append(('output_norm.weight', (s['dim'],), None))
    # Tokens: <unk> <s> </s>, the 256 byte tokens, then filler pieces (the prompts are token ids).
    tokens = ['<unk>', '<s>', '</s>'] + [f'<0x{b:02X}>' for b in range(256)]
    tokens += [f'\u2581t{i}' for i in range(s['vocab'] - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (s['vocab'] - 259)
    meta = [kv('general.architecture', 8, 'llama'), kv('general.name', 8, 'perf'), kv('general.file_type', 4, 1),
            kv('llama.context_length', 4, CTX), kv('llama.embedding_length', 4, s['dim']),
            kv('llama.block_count', 4, s['layers']), kv('llama.feed_forward_length', 4, s['ffn']),
            kv('llama.attention.head_count', 4, s['heads']), kv('llama.attention.head_count_kv', 4, s['kv_heads']),
            kv('llama.attention.key_length', 4, s['head_dim']), kv('llama.attention.value_length', 4, s['head_dim']),
            kv('llama.rope.dimension_count', 4, s['head_dim']), kv('llama.rope.freq_base', 6, s['rope_base']),
            kv('llama.attention.layer_norm_rms_epsilon', 6, s['eps']),
            kv('tokenizer.ggml.model', 8, 'llama'), array_kv('tokenizer.ggml.tokens', 8, tokens),
            array_kv('tokenizer.ggml.scores', 6, [0.0] * len(tokens)), array_kv('tokenizer.ggml.token_type', 5, types),
            kv('tokenizer.ggml.bos_token_id', 4, 1), kv('tokenizer.ggml.eos_token_id', 4, 2)]
    infos, offset = [], 0
    for name, dims, _ in tensors:
        ttype = 0 if len(dims) == 1 else 1
        infos.append(gguf_string(name) + struct.pack('<I', len(dims)) + struct.pack(f'<{len(dims)}Q', *dims)
                     + struct.pack('<IQ', ttype, offset))
        size = int(np.prod(dims)) * (4 if ttype == 0 else 2)
        offset += (size + 31) // 32 * 32
    with open(path + '.partial', 'wb') as f:
        f.write(b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(meta)) + b''.join(meta) + b''.join(infos))
        f.write(b'\0' * (-f.tell() % 32))
        for name, dims, std in tensors:
            if std is None:
                data = (1 + 0.1 * rng.standard_normal(dims[0])).astype('<f4')
            else:
                data = (std * rng.standard_normal(int(np.prod(dims)), dtype=np.float32)).astype('<f2')
                if name == 'token_embd.weight':  # EOS never wins a greedy pick: its logit is exactly 0
                    data[2 * dims[0]:3 * dims[0]] = 0
            f.write(data.tobytes())
            f.write(b'\0' * (-f.tell() % 32))
    os.rename(path + '.partial', path)


def quantize(src, dst, ftype, pure):
    bins = glob.glob('tools/peers/node_modules/@node-llama-cpp/linux-x64/bins/*/')[0]
    llama = ctypes.CDLL(glob.glob(bins + 'libllama.*so')[0])

    class Params(ctypes.Structure):
        # llama_model_quantize_params: nthread, ftype, output_tensor_type, token_embedding_type,
        # then the bools allow_requantize, quantize_output_tensor, only_copy, pure, keep_split, …
        _fields_ = [('nthread', ctypes.c_int32), ('ftype', ctypes.c_int32), ('output_type', ctypes.c_int32),
                    ('embd_type', ctypes.c_int32), ('allow_requantize', ctypes.c_bool),
                    ('quantize_output_tensor', ctypes.c_bool), ('only_copy', ctypes.c_bool), ('pure', ctypes.c_bool),
                    ('rest', ctypes.c_uint8 * 496)]

    llama.llama_model_quantize_default_params.restype = Params
    llama.llama_model_quantize.restype = ctypes.c_uint32
    params = llama.llama_model_quantize_default_params()
    params.nthread, params.ftype, params.pure = 1, ftype, pure
    if llama.llama_model_quantize(src.encode(), (dst + '.partial').encode(), ctypes.byref(params)) != 0:
        sys.exit(f'llama_model_quantize failed for {dst}')
    os.rename(dst + '.partial', dst)


def main():
    shape = sys.argv[1]
    os.makedirs(CACHE, exist_ok=True)
    src = os.path.join(CACHE, f'{shape}-F16.gguf')
    if not os.path.exists(src):
        write_f16(src, SHAPES[shape])
    for name in sys.argv[2:]:
        base, pure = (name[:-5], True) if name.endswith('-pure') else (name, False)
        dst = os.path.join(CACHE, f'{shape}-{name}.gguf')
        if base != 'F16' and not os.path.exists(dst):
            quantize(src, dst, FTYPES[base], pure)
        print(dst)


if __name__ == '__main__':
    main()
