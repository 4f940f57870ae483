"""Rewrites a recycle head sidecar: at another weight type, and/or for other base files.

  /usr/bin/python3 -m training.export_head --head demo-recycle.gguf --type q8_0 --out demo-recycle-q8_0.gguf
  /usr/bin/python3 -m training.export_head --head head.gguf --base my-base-q5.gguf --out head-for-q5.gguf

The engine matches a head to its base by the FNV-1a hash of the base's token_embd bytes; --base
replaces the list of accepted hashes with those of the given files (same weights, other quantization).
"""
import argparse
import sys

from . import convert, gguf

TYPES = {"f16": gguf.F16, "q8_0": gguf.Q8_0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--head", required=True, help="recycle head GGUF to read")
    p.add_argument("--out", required=True, help="where to write the new head")
    p.add_argument("--type", choices=sorted(TYPES), help="weight type of the new head's matrices (default: keep)")
    p.add_argument("--base", action="append", default=[], help="base GGUF the head should accept (repeatable)")
    args = p.parse_args(argv)
    try:
        source = gguf.GGUFFile.open(args.head)
        head = convert.load_head(args.head)
        hashes = [convert.token_embd_hash(b) for b in args.base] or list(source.metadata["recycle.base.token_embd_hashes"])
        ggml_type = TYPES[args.type] if args.type else source.tensors["recycle.proj.weight"].ggml_type
        convert.save_head(head, source.metadata["recycle.base.name"], hashes, args.out, ggml_type)
    except (OSError, gguf.GGUFError, convert.ModelFileError, KeyError) as error:
        print(f"export_head: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(hashes)} base hash{'es' if len(hashes) != 1 else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
