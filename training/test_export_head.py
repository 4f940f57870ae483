"""export_head: a head re-exported at another type, or for other base files, keeps its math and says which bases it fits."""
import contextlib
import io
import os
import tempfile
import unittest

import torch

from . import convert, export_head, gguf
from .fixtures import write_tiny_base
from .model import RecycleHead


class ExportHead(unittest.TestCase):
    def test_retype_and_restamp(self):
        with tempfile.TemporaryDirectory() as d:
            path = lambda name: os.path.join(d, name)
            base = write_tiny_base(path("base-f16.gguf"), gguf.F16)
            write_tiny_base(path("base-q8_0.gguf"), gguf.Q8_0)
            torch.manual_seed(0)
            head = RecycleHead(base.cfg)
            convert.save_head(head, "tiny", ["0123456789abcdef"], path("head.gguf"), gguf.F16)

            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(export_head.main(["--head", path("head.gguf"), "--type", "q8_0", "--out", path("q8.gguf")]), 0)
                self.assertEqual(export_head.main(["--head", path("q8.gguf"), "--out", path("restamped.gguf"),
                                                   "--base", path("base-f16.gguf"), "--base", path("base-q8_0.gguf")]), 0)
            q8 = gguf.GGUFFile.open(path("q8.gguf"))
            self.assertEqual(q8.tensors["recycle.proj.weight"].ggml_type, gguf.Q8_0)
            self.assertEqual(q8.metadata["recycle.base.token_embd_hashes"], ["0123456789abcdef"])
            restamped = gguf.GGUFFile.open(path("restamped.gguf"))
            self.assertEqual(restamped.tensors["recycle.proj.weight"].ggml_type, gguf.Q8_0)
            self.assertEqual(restamped.metadata["recycle.base.token_embd_hashes"],
                             [convert.token_embd_hash(path("base-f16.gguf")), convert.token_embd_hash(path("base-q8_0.gguf"))])
            # Q8_0 weights are the F16 ones up to quantization error.
            original = dict(head.state_dict())
            for name, value in convert.load_head(path("q8.gguf")).state_dict().items():
                self.assertLess((value - original[name]).abs().max().item(), 0.02 * original[name].abs().max().item() + 1e-6)

    def test_missing_file_is_a_clear_error(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(export_head.main(["--head", "/nonexistent.gguf", "--out", "/tmp/x.gguf"]), 1)
        self.assertIn("export_head: error:", err.getvalue())


if __name__ == "__main__":
    unittest.main()
