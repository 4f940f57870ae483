"""SentencePiece BPE tokenizer training, corpus encoding and GGUF tokenizer metadata.

BPE (not unigram) because llama.cpp's SPM tokenizer merges by piece score,
which reproduces SentencePiece BPE exactly. Normalization is off (identity),
add_dummy_prefix on, byte fallback on: llama.cpp tokenizes like SentencePiece.

  /usr/bin/python3 -m training.tokenizer train --input train.txt --prefix models/demo/tokenizer
  /usr/bin/python3 -m training.tokenizer encode --model tokenizer.model --input train.txt --out train.bin
"""
import argparse
import os
import sys

import numpy as np

from . import gguf
from .corpus import DOC_SEPARATOR

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
UINT16_VOCAB = 1 << 16  # token files hold uint16 ids up to this vocabulary size, uint32 above (encode.ts agrees)
# llama.cpp token types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _spm():
    import sentencepiece  # imported lazily: only the tokenizer commands need it
    return sentencepiece


def train(input_path: str, prefix: str, vocab_size: int = 4096, max_sentences: int = 2_000_000) -> str:
    if not os.path.exists(input_path):
        sys.exit(f"corpus file not found: {input_path} (build it with `python3 -m training.corpus`)")
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    _spm().SentencePieceTrainer.train(
        input=input_path, model_prefix=prefix, vocab_size=vocab_size, model_type="bpe",
        character_coverage=0.9995, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, max_sentence_length=16384,
        input_sentence_size=max_sentences, shuffle_input_sentence=True,
        unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=-1, num_threads=1, minloglevel=2)
    return prefix + ".model"


def load(model_path: str):
    if not os.path.exists(model_path):
        sys.exit(f"tokenizer model not found: {model_path}")
    return _spm().SentencePieceProcessor(model_file=model_path)


def gguf_metadata(model_path: str) -> dict:
    """tokenizer.ggml.* keys of a llama (SPM) tokenizer, as llama.cpp expects them."""
    sp = load(model_path)
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(UNKNOWN)
        elif sp.is_control(i):
            types.append(CONTROL)
        elif sp.is_byte(i):
            types.append(BYTE)
        elif sp.is_unused(i):
            types.append(UNUSED)
        else:
            types.append(NORMAL)
    return spm_metadata(tokens, scores, types, sp.bos_id(), sp.eos_id(), sp.unk_id())


def spm_metadata(tokens, scores, types, bos=BOS_ID, eos=EOS_ID, unk=UNK_ID) -> dict:
    """tokenizer.ggml.* keys of a llama (SPM) vocabulary: BOS added, EOS not, a dummy space prefix."""
    return {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": gguf.Typed(gguf.T_ARRAY, tokens, gguf.T_STRING),
        "tokenizer.ggml.scores": gguf.Typed(gguf.T_ARRAY, scores, gguf.T_F32),
        "tokenizer.ggml.token_type": gguf.Typed(gguf.T_ARRAY, types, gguf.T_I32),
        "tokenizer.ggml.bos_token_id": bos,
        "tokenizer.ggml.eos_token_id": eos,
        "tokenizer.ggml.unknown_token_id": unk,
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.ggml.add_eos_token": False,
        "tokenizer.ggml.add_space_prefix": True,
    }


def token_dtype(vocab_size: int) -> str:
    """The element type of a token file for a vocabulary of this size."""
    return "<u2" if vocab_size <= UINT16_VOCAB else "<u4"


def encode_corpus(model_path: str, input_path: str, out_path: str) -> int:
    """Writes the ids (each document is BOS + tokens) as a token file. Returns the token count."""
    sp = load(model_path)
    with open(input_path, encoding="utf-8") as f:
        docs = f.read().split(f"\n{DOC_SEPARATOR}\n")
    ids = [tok for doc in sp.encode(docs) for tok in [BOS_ID] + doc]
    np.asarray(ids, dtype=token_dtype(sp.get_piece_size())).tofile(out_path)
    return len(ids)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a SentencePiece BPE model")
    t.add_argument("--input", required=True)
    t.add_argument("--prefix", required=True, help="writes PREFIX.model and PREFIX.vocab")
    t.add_argument("--vocab", type=int, default=4096)
    e = sub.add_parser("encode", help="encode a corpus text file into a token file")
    e.add_argument("--model", required=True)
    e.add_argument("--input", required=True)
    e.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "train":
        print("wrote", train(args.input, args.prefix, args.vocab))
    else:
        print(f"wrote {encode_corpus(args.model, args.input, args.out)} tokens to {args.out}")


if __name__ == "__main__":
    main()
