"""Smoke run: train a tiny recycle head for a few steps on a tiny random base, export, reload.

Set SMOKE_OUT=DIR to keep the files (trainer.test.ts loads DIR/base-f16.gguf with the SDK).
"""
import contextlib
import io
import os
import tempfile
import unittest

import numpy as np

from . import convert, gguf, tokenizer, train
from .fixtures import WORDS, write_arch_base, write_random_tokens, write_tiny_base


class HeadSmoke(unittest.TestCase):
    def setUp(self):
        keep = os.environ.get("SMOKE_OUT")
        self._tmp = None if keep else tempfile.TemporaryDirectory()
        self.dir = keep or self._tmp.name
        os.makedirs(self.dir, exist_ok=True)

    def tearDown(self):
        if self._tmp:
            self._tmp.cleanup()

    def _path(self, name):
        return os.path.join(self.dir, name)

    def test_train_head_export_and_reload(self):
        base = write_tiny_base(self._path("base-f16.gguf"), gguf.F16)
        write_tiny_base(self._path("base-q8_0.gguf"), gguf.Q8_0)
        write_random_tokens(self._path("tokens.bin"), 4000, base.cfg.vocab_size)
        run = self._path("run")
        common = ["head", "--base", self._path("base-f16.gguf"), "--also-hash", self._path("base-q8_0.gguf"),
                  "--train-tokens", self._path("tokens.bin"), "--val-tokens", self._path("tokens.bin"),
                  "--out", run, "--name", "tiny", "--ctx", "32", "--batch", "4", "--lr", "3e-3",
                  "--warmup", "2", "--hidden-weight", "0.5", "--threads", "1", "--head-type", "q8_0",
                  "--eval-every", "4", "--save-every", "4"]
        train.main(common + ["--steps", "4"])
        first = convert.load_head(os.path.join(run, "tiny-recycle.gguf"))
        train.main(common + ["--steps", "8", "--resume"])  # continues from step 4

        head_file = gguf.GGUFFile.open(os.path.join(run, "tiny-recycle.gguf"))
        self.assertEqual(head_file.metadata["recycle.base.token_embd_hashes"],
                         [convert.token_embd_hash(self._path(n)) for n in ("base-f16.gguf", "base-q8_0.gguf")])
        self.assertEqual(head_file.tensors["recycle.blk.0.attn_q.weight"].ggml_type, gguf.Q8_0)
        reloaded_base, _ = convert.load_base(self._path("base-f16.gguf"))
        head = convert.load_head(os.path.join(run, "tiny-recycle.gguf"), reloaded_base)
        moved = np.abs(head.proj.weight.detach().numpy() - first.proj.weight.detach().numpy()).max()
        self.assertGreater(moved, 0, "resumed training did not update the head")

    def test_head_trains_on_every_architecture(self):
        for arch in ("qwen2", "qwen3", "gemma3"):
            with self.subTest(arch=arch):
                base = write_arch_base(self._path(f"{arch}.gguf"), arch, gguf.Q8_0)
                write_random_tokens(self._path("tokens.bin"), 2000, base.cfg.vocab_size)
                run = self._path(f"run-{arch}")
                with contextlib.redirect_stdout(io.StringIO()):
                    train.main(["head", "--base", self._path(f"{arch}.gguf"), "--train-tokens", self._path("tokens.bin"),
                                "--out", run, "--name", arch, "--ctx", "16", "--batch", "2", "--steps", "2",
                                "--threads", "1"])
                reloaded, _ = convert.load_base(self._path(f"{arch}.gguf"))
                head = convert.load_head(os.path.join(run, f"{arch}-recycle.gguf"), reloaded)
                # The head is llama-style whatever the base: head_dim = dim / heads, the base's global RoPE base.
                self.assertEqual((head.cfg.dim, head.cfg.n_heads, head.cfg.head_dim, head.cfg.rope_base),
                                 (base.cfg.dim, base.cfg.n_heads, base.cfg.dim // base.cfg.n_heads, base.cfg.rope.base))
                self.assertEqual(head.cfg.vocab_size, base.cfg.vocab_size)

    def test_joint_training_exports_all_quantizations(self):
        text = self._path("corpus.txt")
        rng = np.random.default_rng(0)
        with open(text, "w") as f:
            for _ in range(400):
                f.write(" ".join(rng.choice(WORDS, size=12)) + ".\n")
        model_path = tokenizer.train(text, self._path("tok"), vocab_size=300)
        tokenizer.encode_corpus(model_path, text, self._path("ids.bin"))
        run = self._path("joint")
        train.main(["joint", "--tokenizer", model_path, "--train-tokens", self._path("ids.bin"), "--out", run,
                    "--name", "j", "--dim", "64", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--ffn", "64",
                    "--ctx", "32", "--batch", "2", "--steps", "2", "--threads", "1"])
        hashes = gguf.GGUFFile.open(os.path.join(run, "j-recycle.gguf")).metadata["recycle.base.token_embd_hashes"]
        self.assertEqual(len(set(hashes)), 3)
        for kind, ggml_type in (("f16", gguf.F16), ("q8_0", gguf.Q8_0), ("q4_0", gguf.Q4_0)):
            f = gguf.GGUFFile.open(os.path.join(run, f"j-{kind}.gguf"))
            self.assertEqual(f.tensors["token_embd.weight"].ggml_type, ggml_type)
            self.assertIn(convert.token_embd_hash(os.path.join(run, f"j-{kind}.gguf")), hashes)
            self.assertEqual(f.metadata["tokenizer.ggml.tokens"][:3], ["<unk>", "<s>", "</s>"])
            types = f.metadata["tokenizer.ggml.token_type"]
            self.assertEqual(types[:3 + 256], [tokenizer.UNKNOWN] + [tokenizer.CONTROL] * 2 + [tokenizer.BYTE] * 256)
            self.assertEqual(f.metadata["tokenizer.ggml.tokens"][3 + 0x41], "<0x41>")

    def test_bad_inputs_exit_with_a_message(self):
        write_tiny_base(self._path("base.gguf"), gguf.F16)
        np.full(100, 5000, dtype="<u2").tofile(self._path("bad.bin"))
        cases = [
            (["--base", self._path("missing.gguf"), "--train-tokens", self._path("bad.bin")], "file not found"),
            (["--base", self._path("base.gguf"), "--train-tokens", self._path("bad.bin")], "outside the vocabulary"),
        ]
        for extra, message in cases:
            stderr = io.StringIO()
            with self.assertRaises(SystemExit) as ctx, contextlib.redirect_stderr(stderr):
                train.main(["head", "--out", self._path("r"), "--ctx", "16"] + extra)
            self.assertIn(message, f"{ctx.exception.code} {stderr.getvalue()}")


if __name__ == "__main__":
    unittest.main()
