"""Logits of base GGUFs as the trainer computes them, for comparison with other engines.

  /usr/bin/python3 -m training.dump_logits REQUEST.json

REQUEST.json: a list of {"path": base.gguf, "ids": [token ids], "out": file}. For each entry the
base is read (any supported architecture and type), the ids run as one sequence from position 0, and
the logits after every position written to `out` as raw little-endian float32, (len(ids), vocab) row
major. With "head": head.gguf and "head_out": file, the recycle head's logits for x_{t+2} from h_t and
x_{t+1} = ids[t+1] go to head_out too, (len(ids) - 1, vocab). One line of JSON per entry goes to stdout:
the architecture and the file's tensor types.
"""
import collections
import json
import sys

import numpy as np
import torch

from . import convert, gguf


def _write(logits: torch.Tensor, out: str) -> None:
    np.ascontiguousarray(logits.numpy(), dtype="<f4").tofile(out)


@torch.no_grad()
def dump(path: str, ids, out: str, head_path: str = None, head_out: str = None) -> dict:
    base, _ = convert.load_base(path)
    tokens = torch.tensor([ids], dtype=torch.long)
    hidden = base.eval().hidden(tokens)
    _write(base.logits(hidden)[0], out)
    if head_path:
        head = convert.load_head(head_path, base).eval()
        _write(head(base, hidden[:, :-1], tokens[:, 1:])[0], head_out)
    types = collections.Counter(gguf.type_name(t.ggml_type) for t in gguf.GGUFFile.open(path).tensors.values())
    return {"path": path, "arch": base.cfg.arch, "types": dict(sorted(types.items())), "vocab": base.cfg.vocab_size}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    with open(argv[0]) as f:
        request = json.load(f)
    for entry in request:
        try:
            print(json.dumps(dump(entry["path"], entry["ids"], entry["out"], entry.get("head"), entry.get("head_out"))),
                  flush=True)
        except (gguf.GGUFError, convert.ModelFileError) as e:
            sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
