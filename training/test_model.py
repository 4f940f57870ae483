"""Model numerics and GGUF export/reload of the base and the recycle head."""
import math
import os
import tempfile
import unittest

import numpy as np
import torch

from . import convert, gguf
from .fixtures import tiny_config, tiny_tokenizer_metadata, write_tiny_base
from .model import Llama, RecycleHead, causal_attention, head_config_for, rope

torch.set_num_threads(1)


class Rope(unittest.TestCase):
    def test_rotates_adjacent_pairs_like_llama_cpp_normal_mode(self):
        x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 4)
        pos = 3
        got = rope(x, torch.tensor([pos]), 10000.0).view(-1)
        expected = []
        for i, (a, b) in enumerate(((1.0, 2.0), (3.0, 4.0))):
            theta = pos * 10000.0 ** (-2 * i / 4)
            expected += [a * np.cos(theta) - b * np.sin(theta), a * np.sin(theta) + b * np.cos(theta)]
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)

    def test_position_zero_is_identity(self):
        x = torch.randn(2, 3, 4, 8)
        self.assertTrue(torch.equal(rope(x, torch.zeros(3), 10000.0), x))


class ExportReload(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.tokens = torch.randint(0, 300, (2, 16))

    def tearDown(self):
        self.dir.cleanup()

    def _path(self, name):
        return os.path.join(self.dir.name, name)

    def test_f32_reload_is_exact(self):
        for tied in (True, False):
            model = write_tiny_base(self._path("b.gguf"), gguf.F32, tied=tied)
            reloaded, meta = convert.load_base(self._path("b.gguf"))
            self.assertEqual(head_config_for(reloaded.cfg), head_config_for(model.cfg))
            self.assertEqual(reloaded.cfg.tied_output, tied)
            self.assertEqual(meta["tokenizer.ggml.model"], "llama")
            with torch.no_grad():
                self.assertTrue(torch.equal(model(self.tokens), reloaded(self.tokens)))

    def test_quantized_reload_matches_dequantized_weights(self):
        for ggml_type, tolerance in ((gguf.F16, 0.01), (gguf.Q8_0, 0.05), (gguf.Q4_0, 0.6)):
            model = write_tiny_base(self._path("b.gguf"), ggml_type)
            reloaded, _ = convert.load_base(self._path("b.gguf"))
            f = gguf.GGUFFile.open(self._path("b.gguf"))
            self.assertEqual(f.tensors["blk.0.attn_q.weight"].ggml_type, ggml_type)
            self.assertEqual(f.tensors["blk.0.attn_norm.weight"].ggml_type, gguf.F32)
            self.assertEqual(f.metadata["general.file_type"], convert.FILE_TYPES[ggml_type])
            expected_q = gguf.dequantize(gguf.quantize(model.layers[1].attn_q.weight.detach().numpy(), ggml_type),
                                         ggml_type)
            np.testing.assert_array_equal(reloaded.layers[1].attn_q.weight.detach().numpy().ravel(), expected_q)
            with torch.no_grad():
                diff = (model(self.tokens) - reloaded(self.tokens)).abs().max().item()
            self.assertLess(diff, tolerance, f"type {ggml_type}")

    def test_llama_metadata(self):
        write_tiny_base(self._path("b.gguf"), gguf.Q8_0)
        m = gguf.GGUFFile.open(self._path("b.gguf")).metadata
        cfg = tiny_config(1)
        self.assertEqual(m["general.architecture"], "llama")
        self.assertEqual((m["llama.embedding_length"], m["llama.block_count"], m["llama.attention.head_count"],
                          m["llama.attention.head_count_kv"], m["llama.feed_forward_length"],
                          m["llama.rope.dimension_count"]),
                         (cfg.dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.ffn_dim, cfg.head_dim))
        self.assertTrue(m["tokenizer.ggml.add_bos_token"])
        self.assertEqual(m["tokenizer.ggml.tokens"][3], "<0x00>")

    def test_head_round_trip_and_spec(self):
        base = write_tiny_base(self._path("b.gguf"), gguf.F32)
        head = RecycleHead(head_config_for(base.cfg))
        convert.save_head(head, "tiny", ["0123456789abcdef"], self._path("h.gguf"), gguf.F32)
        f = gguf.GGUFFile.open(self._path("h.gguf"))
        self.assertEqual(f.metadata["general.architecture"], "recycle")
        self.assertEqual(f.metadata["recycle.base.token_embd_hashes"], ["0123456789abcdef"])
        self.assertEqual(f.tensors["recycle.proj.weight"].dims, (2 * base.cfg.dim, base.cfg.dim))
        self.assertIn("recycle.blk.0.ffn_down.weight", f.tensors)
        self.assertIn("recycle.output_norm.weight", f.tensors)
        reloaded = convert.load_head(self._path("h.gguf"), base)
        with torch.no_grad():
            hidden = base.hidden(self.tokens)
            self.assertTrue(torch.equal(head(base, hidden, self.tokens), reloaded(base, hidden, self.tokens)))

    def test_duplicate_tokens_are_refused(self):
        meta = tiny_tokenizer_metadata()
        meta["tokenizer.ggml.tokens"].value[-1] = meta["tokenizer.ggml.tokens"].value[-2]
        model = Llama(tiny_config(len(meta["tokenizer.ggml.tokens"].value)))
        with self.assertRaisesRegex(convert.ModelFileError, "unique"):
            convert.save_base(model, meta, self._path("b.gguf"), gguf.F32, "dup")

    def test_wrong_architecture_and_shape_errors(self):
        base = write_tiny_base(self._path("b.gguf"), gguf.F32)
        convert.save_head(RecycleHead(head_config_for(base.cfg)), "tiny", [], self._path("h.gguf"), gguf.F32)
        with self.assertRaisesRegex(convert.ModelFileError, "architecture 'recycle' is not supported"):
            convert.load_base(self._path("h.gguf"))
        other = write_tiny_base(self._path("b2.gguf"), gguf.F32)
        other.cfg.dim = 32  # pretend the base is another shape
        with self.assertRaisesRegex(convert.ModelFileError, "dim 64"):
            convert.load_head(self._path("h.gguf"), other)


class HeadAttention(unittest.TestCase):
    def test_the_empty_slot_adds_a_zero_score_and_nothing_else(self):
        # One query over its own key and the empty slot: weight e^s / (1 + e^s) on its value, the rest on zeros.
        torch.manual_seed(0)
        q, k, v = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
        score = (q * k).sum() / math.sqrt(8)
        got = causal_attention(q, k, v, empty_slot=True)
        torch.testing.assert_close(got, v * torch.sigmoid(score))
        # Without it, attention to a single key is that key's value.
        torch.testing.assert_close(causal_attention(q, k, v), v)

    def test_head_layers_have_it_and_base_layers_do_not(self):
        cfg = tiny_config(300)
        self.assertTrue(all(layer.empty_slot for layer in RecycleHead(head_config_for(cfg)).layers))
        self.assertFalse(any(layer.empty_slot for layer in Llama(cfg).layers))


class RecycleCausality(unittest.TestCase):
    def test_head_output_at_t_ignores_later_tokens(self):
        torch.manual_seed(0)
        cfg = tiny_config(300)
        base, head = Llama(cfg).eval(), RecycleHead(head_config_for(cfg)).eval()
        a = torch.randint(0, 300, (1, 12))
        b = a.clone()
        b[0, 8:] = (b[0, 8:] + 1) % 300
        with torch.no_grad():
            la = head(base, base.hidden(a), a)
            lb = head(base, base.hidden(b), b)
        self.assertTrue(torch.allclose(la[:, :8], lb[:, :8], atol=1e-6))
        self.assertFalse(torch.allclose(la[:, 8:], lb[:, 8:]))


if __name__ == "__main__":
    unittest.main()
