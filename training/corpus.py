"""Builds an offline, redistributable English corpus from Debian packages.

Sources (licences in models/demo/MODEL_CARD.md):
  python3.11-doc  reST sources of the Python documentation (PSF-2.0)
  jargon-text     The Jargon File 4.4.7 (public domain)
  dict-devil      The Devil's Dictionary, Ambrose Bierce 1911 (public domain)

Packages are fetched with `apt-get download` (no root, nothing installed) and
unpacked with `dpkg-deb -x`. Output: train.txt and heldout.txt, documents
separated by a line holding only DOC_SEPARATOR.

  /usr/bin/python3 -m training.corpus --out training/runs/data
"""
import argparse
import glob
import gzip
import os
import random
import re
import subprocess
import sys

PACKAGES = ("python3.11-doc", "jargon-text", "dict-devil")
DOC_SEPARATOR = "\x1e"  # ASCII record separator: never inside the text
CHUNK_CHARS = 3000


def fetch_packages(cache_dir: str) -> str:
    """Downloads and unpacks the .debs into cache_dir/root; returns that root."""
    root = os.path.join(cache_dir, "root")
    os.makedirs(root, exist_ok=True)
    for package in PACKAGES:
        debs = glob.glob(os.path.join(cache_dir, f"{package}_*.deb"))
        if not debs:
            run = subprocess.run(["apt-get", "download", package], cwd=cache_dir, capture_output=True, text=True)
            debs = glob.glob(os.path.join(cache_dir, f"{package}_*.deb"))
            if run.returncode or not debs:
                sys.exit(f"could not download Debian package {package}: {run.stderr.strip()}\n"
                         "run `apt-get update` or put the .deb in the cache directory by hand")
        subprocess.run(["dpkg-deb", "-x", debs[0], root], check=True)
    return root


_DIRECTIVE = re.compile(r"^\s*\.\. ")
_UNDERLINE = re.compile(r"^\s*([=\-~^*#+\"'`])\1{3,}\s*$")
_ROLE = re.compile(r":[a-z:]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`")
_FIELD = re.compile(r"^\s+:[a-z-]+:.*$")


def clean_rest(text: str) -> str:
    """Strips reST markup that is not English (directives, underlines, roles)."""
    lines = []
    for line in text.splitlines():
        if _DIRECTIVE.match(line) or _UNDERLINE.match(line) or _FIELD.match(line):
            continue
        lines.append(_ROLE.sub(r"\1", line).replace("``", "").rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def chunk_paragraphs(text: str, limit: int = CHUNK_CHARS):
    """Splits text at blank lines into documents of about `limit` characters."""
    chunk = []
    size = 0
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip("\n")
        if not paragraph.strip():
            continue
        chunk.append(paragraph)
        size += len(paragraph)
        if size >= limit:
            yield "\n\n".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield "\n\n".join(chunk)


def read_documents(root: str):
    """Yields (source, document) pairs."""
    sources = sorted(glob.glob(os.path.join(root, "usr/share/doc/python3.11/html/_sources/**/*.rst.txt"),
                               recursive=True))
    if not sources:
        sys.exit(f"no Python documentation sources under {root}")
    for path in sources:
        with open(path, encoding="utf-8", errors="replace") as f:
            for doc in chunk_paragraphs(clean_rest(f.read())):
                yield "python-docs", doc
    with gzip.open(os.path.join(root, "usr/share/doc/jargon-text/jargon.txt.gz"), "rt", encoding="latin-1") as f:
        for doc in chunk_paragraphs(f.read()):
            yield "jargon", doc
    # dictd's .dz is gzip with random-access extras; gzip reads it whole.
    with gzip.open(os.path.join(root, "usr/share/dictd/devil.dict.dz"), "rt", encoding="utf-8", errors="replace") as f:
        for doc in chunk_paragraphs(f.read()):
            yield "devil", doc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory for train.txt / heldout.txt")
    parser.add_argument("--cache", help="where .debs are downloaded and unpacked (default OUT/debs)")
    parser.add_argument("--heldout", type=float, default=0.02, help="fraction of documents held out")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    cache = args.cache or os.path.join(args.out, "debs")
    os.makedirs(cache, exist_ok=True)
    docs = list(read_documents(fetch_packages(cache)))
    random.Random(args.seed).shuffle(docs)
    n_heldout = max(1, int(len(docs) * args.heldout))
    counts = {}
    for name, part in (("heldout.txt", docs[:n_heldout]), ("train.txt", docs[n_heldout:])):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(f"\n{DOC_SEPARATOR}\n".join(doc for _, doc in part))
        for source, doc in part:
            counts[(name, source)] = counts.get((name, source), 0) + len(doc)
    for (name, source), chars in sorted(counts.items()):
        print(f"{name:12s} {source:12s} {chars / 1e6:7.2f} M chars")


if __name__ == "__main__":
    main()
