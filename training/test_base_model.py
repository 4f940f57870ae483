"""The frozen base of every architecture: reading GGUFs, hyperparameters as llama.cpp reads them, refusals,
and the numerics it shares with llama.cpp (RoPE angles, NEOX pairs, f16-table GELU, sliding windows).
base-parity.test.ts compares whole models with llama.cpp and the engine."""
import math
import os
import tempfile
import types
import unittest

import numpy as np
import torch

from . import convert, gguf
from .base_model import ModelFileError, config_from_gguf, gelu_like_ggml, load_base_model
from .fixtures import write_arch_base
from .model import apply_rope, rope_angles

torch.set_num_threads(1)
ARCHS = ("llama", "qwen2", "qwen3", "gemma3")


def fake_file(arch: str, layers: int = 2, **keys) -> types.SimpleNamespace:
    """What config_from_gguf reads of a file: metadata and the embedding's dims."""
    metadata = {"general.architecture": arch, f"{arch}.embedding_length": 64, f"{arch}.block_count": layers,
                f"{arch}.attention.head_count": 4, f"{arch}.feed_forward_length": 96,
                f"{arch}.context_length": 128, f"{arch}.attention.layer_norm_rms_epsilon": 1e-6}
    metadata.update({k if k.startswith("general.") else f"{arch}.{k}": v for k, v in keys.items()})
    return types.SimpleNamespace(path="fake.gguf", metadata=metadata,
                                 tensors={"token_embd.weight": types.SimpleNamespace(dims=(64, 300))})


class ReadsEveryArchitecture(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "base.gguf")
        self.tokens = torch.randint(0, 300, (2, 24), generator=torch.Generator().manual_seed(0))

    def tearDown(self):
        self.dir.cleanup()

    def test_f32_round_trip_is_exact(self):
        for arch in ARCHS:
            with self.subTest(arch=arch):
                model = write_arch_base(self.path, arch)
                reloaded, meta = convert.load_base(self.path)
                self.assertEqual(reloaded.cfg, model.cfg)
                self.assertEqual(meta["tokenizer.ggml.model"], "llama")
                with torch.no_grad():
                    self.assertTrue(torch.equal(model(self.tokens), reloaded(self.tokens)))

    def test_quantized_weights_are_the_dequantized_file(self):
        write_arch_base(self.path, "qwen3", gguf.Q8_0)
        f = gguf.GGUFFile.open(self.path)
        base = load_base_model(f)
        np.testing.assert_array_equal(base.layers[1].attn_k.weight.detach().numpy(), f.tensor("blk.1.attn_k.weight"))
        np.testing.assert_array_equal(base.layers[1].attn_k_norm.weight.detach().numpy(),
                                      f.tensor("blk.1.attn_k_norm.weight"))

    def test_each_option_reaches_the_output(self):
        # The file's values of each option's tensor matter: replacing them changes the logits.
        for arch, param in (("llama", "rope_freqs"), ("qwen2", "layers.0.attn_k.bias"),
                            ("qwen3", "layers.0.attn_q_norm.weight"), ("gemma3", "layers.1.post_ffw_norm.weight")):
            with self.subTest(arch=arch):
                base = write_arch_base(self.path, arch).eval()
                with torch.no_grad():
                    before = base(self.tokens)
                    state = base.state_dict()
                    state[param] = state[param] * 0 + 1
                    base.load_state_dict(state)
                    self.assertGreater((base(self.tokens) - before).abs().max().item(), 1e-3)

    def test_sliding_window_layers_see_only_their_window(self):
        # gemma3 with every layer windowed (pattern 0): 4 layers of window 5 reach 16 tokens back, no further.
        base = write_arch_base(self.path, "gemma3").eval()
        base.cfg.swa_layers = [True] * 4
        for layer in base.layers:
            layer.window = base.cfg.swa_window
        changed = self.tokens.clone()
        changed[:, 0] = (changed[:, 0] + 1) % 300
        with torch.no_grad():
            a, b = base(self.tokens), base(changed)
            self.assertTrue(torch.equal(a[:, 17:], b[:, 17:]))
            self.assertFalse(torch.equal(a[:, 16], b[:, 16]))

    def test_refusals_name_what_and_why(self):
        write_arch_base(self.path, "llama")
        f = gguf.GGUFFile.open(self.path)
        f.metadata["general.architecture"] = "phi3"
        with self.assertRaisesRegex(ModelFileError, "architecture 'phi3' is not supported; the trainer reads llama, qwen2, qwen3, gemma3"):
            load_base_model(f)

        f = gguf.GGUFFile.open(self.path)
        f.tensors["blk.0.attn_output.bias"] = f.tensors["output_norm.weight"]
        with self.assertRaisesRegex(ModelFileError, "tensor blk.0.attn_output.bias is not part of the llama architecture"):
            load_base_model(f)

        write_arch_base(self.path, "qwen3", gguf.Q4_0)
        f = gguf.GGUFFile.open(self.path)
        del f.tensors["blk.1.attn_q_norm.weight"]
        with self.assertRaisesRegex(ModelFileError, "missing tensor blk.1.attn_q_norm.weight"):
            load_base_model(f)

        f = gguf.GGUFFile.open(self.path)
        f.tensors["blk.0.ffn_up.weight"].ggml_type = 20  # IQ4_NL: Q4_0's block size, another format
        with self.assertRaisesRegex(ModelFileError, "tensor blk.0.ffn_up.weight is IQ4_NL; the trainer reads F32, F16, BF16, Q4_0"):
            load_base_model(f)

        f = gguf.GGUFFile.open(self.path)
        f.tensors["blk.0.attn_q.weight"].dims = (64, 64)
        with self.assertRaisesRegex(ModelFileError, r"blk.0.attn_q.weight has dims \[64, 64\], expected \[64, 128\]"):
            load_base_model(f)

        for keys, message in (({"rope.scaling.type": "longrope"}, "rope scaling 'longrope' is not supported"),
                              ({"attention.head_count_kv": [2, 4]}, "head_count_kv differs per layer"),
                              ({"attention.value_length": 8}, "value length 8 differs from key length 16"),
                              ({"attention.head_count_kv": 3}, "4 heads cannot share 3 KV heads")):
            with self.subTest(keys=keys), self.assertRaisesRegex(ModelFileError, message):
                config_from_gguf(fake_file("qwen2", **keys))


class Hyperparameters(unittest.TestCase):
    def test_gemma3_sliding_window_patterns(self):
        cases = (({}, [True] * 5 + [False] + [True] * 5 + [False]),  # llama.cpp's default: 6
                 ({"attention.sliding_window_pattern": 3}, [True, True, False] * 4),
                 ({"attention.sliding_window_pattern": [False, True] * 6}, [False, True] * 6))
        for keys, layers in cases:
            cfg = config_from_gguf(fake_file("gemma3", layers=12, **{"attention.sliding_window": 512}, **keys))
            self.assertEqual((cfg.swa_window, cfg.swa_layers), (512, layers))
            self.assertEqual(cfg.rope_swa.base, 10000.0)  # llama.cpp's default for the window layers
        self.assertEqual(config_from_gguf(fake_file("gemma3")).swa_layers, [False, False])

    def test_gemma3_attention_scale(self):
        self.assertEqual(config_from_gguf(fake_file("gemma3", **{"attention.key_length": 256})).attention_scale,
                         np.float32(1 / 16))
        # The 27B model (62 layers) scales by dim / heads instead (gemma_pytorch's query_pre_attn_scalar).
        cfg = config_from_gguf(fake_file("gemma3", layers=62, **{"attention.key_length": 256}))
        self.assertAlmostEqual(cfg.attention_scale, 1 / math.sqrt(16), places=7)

    def test_rope_scaling(self):
        def rope(**keys):
            return config_from_gguf(fake_file("llama", **keys)).rope
        self.assertEqual((rope().freq_scale, rope().ext_factor), (1.0, 0.0))
        # No type key means linear in llama.cpp, so a bare factor scales; "none" never does.
        self.assertEqual(rope(**{"rope.scaling.factor": 4.0}).freq_scale, 0.25)
        self.assertEqual(rope(**{"rope.scaling.type": "none", "rope.scaling.factor": 4.0}).freq_scale, 1.0)
        yarn = rope(**{"rope.scaling.type": "yarn", "rope.scaling.factor": 4.0,
                       "rope.scaling.original_context_length": 32})
        self.assertEqual((yarn.freq_scale, yarn.ext_factor, yarn.n_ctx_orig), (0.25, 1.0, 32))
        self.assertAlmostEqual(yarn.attn_factor, 1.0, places=6)  # ggml's kernel applies 1 + 0.1 ln 4 itself
        self.assertEqual(rope(**{"rope.scaling.attn_factor": 0.5}).attn_factor, 0.5)


class SharedNumerics(unittest.TestCase):
    def test_rope_angles_follow_the_closed_form(self):
        pos, d, base = np.arange(40), 64, 500000.0
        exact = pos[:, None] * base ** (-2 * np.arange(d // 2) / d)
        cos, sin = rope_angles(torch.arange(40), d, base)
        np.testing.assert_allclose(cos.numpy(), np.cos(exact), atol=2e-5)
        np.testing.assert_allclose(sin.numpy(), np.sin(exact), atol=2e-5)
        factors = np.linspace(1, 8, d // 2)
        cos, _ = rope_angles(torch.arange(40), d, base, freq_scale=0.25, freq_factors=factors)
        np.testing.assert_allclose(cos.numpy(), np.cos(exact / factors * 0.25), atol=2e-5)

    def test_yarn_blends_per_pair_and_scales_the_magnitude(self):
        # YaRN (Peng et al.): pairs rotating faster than beta_fast turns over the original context keep their
        # angle, slower than beta_slow ones are interpolated, a linear ramp between; magnitude 1 + 0.1 ln s.
        d, base, orig, s = 64, 10000.0, 64, 4.0
        i = np.arange(d // 2)
        corr = lambda beta: d * math.log(orig / (beta * 2 * math.pi)) / (2 * math.log(base))  # noqa: E731
        low, high = max(0, math.floor(corr(32))), min(d - 1, math.ceil(corr(1)))
        keep = 1 - np.clip((i - low) / max(0.001, high - low), 0, 1)
        theta = 100 * base ** (-2 * i / d)
        blended = theta / s * (1 - keep) + theta * keep
        cos, sin = rope_angles(torch.tensor([100]), d, base, freq_scale=1 / s, ext_factor=1.0, n_ctx_orig=orig)
        m = 1 + 0.1 * math.log(s)
        np.testing.assert_allclose(cos.numpy()[0], m * np.cos(blended), atol=5e-5)
        np.testing.assert_allclose(sin.numpy()[0], m * np.sin(blended), atol=5e-5)

    def test_neox_rotates_the_two_halves(self):
        x = torch.arange(8, dtype=torch.float32).view(1, 1, 1, 8)
        cos, sin = rope_angles(torch.tensor([3]), 8, 100.0)
        got = apply_rope(x, cos, sin, neox=True).view(-1).numpy()
        c, s, v = cos[0].numpy(), sin[0].numpy(), x.view(-1).numpy()
        np.testing.assert_allclose(got[:4], v[:4] * c - v[4:] * s, rtol=1e-6)
        np.testing.assert_allclose(got[4:], v[:4] * s + v[4:] * c, rtol=1e-6)
        partial = apply_rope(x, cos[:, :2], sin[:, :2], neox=True).view(-1).numpy()
        np.testing.assert_array_equal(partial[4:], v[4:])  # past the rotated dims, values pass through

    def test_gelu_is_ggml_s_f16_table(self):
        # ggml_table_gelu_f16[h] = f16(ggml_gelu_f32(h)) for every finite f16 h, in ggml's f32 operation order.
        halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
        h = halves[np.isfinite(halves)].astype(np.float32)
        f32 = np.float32
        table = (f32(0.5) * h * (f32(1) + np.tanh(f32(0.7978845608028654) * h * (f32(1) + f32(0.044715) * h * h))))
        expected = np.where(h <= -10, f32(0), np.where(h >= 10, h, table.astype(np.float16).astype(np.float32)))
        got = gelu_like_ggml(torch.from_numpy(h)).numpy()
        np.testing.assert_array_equal(got.astype(np.float16).astype(np.float32), got)  # f16 values, as the table's
        differ = got != expected
        # f32 tanh differs in the last bit between libraries (numpy, torch, each libm), which moves an f16
        # rounding now and then: one f16 step, or where 1 + tanh cancels (x < -3) a few steps of values < 1e-5.
        self.assertLess(differ.mean(), 1e-2)
        steps = np.abs(got.astype(np.float16).view(np.int16).astype(int) - expected.astype(np.float16).view(np.int16))
        self.assertLessEqual(steps[h > -3].max(), 1)
        self.assertLess(np.abs(got - expected)[h <= -3].max(), 1e-5)
        between = torch.tensor([0.09998, 0.09999, 0.1])  # all round to the f16 0.0999756: one table entry
        self.assertEqual(len(set(gelu_like_ggml(between).tolist())), 1)


if __name__ == "__main__":
    unittest.main()
