#!/usr/bin/env python3
"""The default model's held-out documents: every 100th document of corpus.txt, which train_default.py never trains on.

As a module (train_default.py uses it): read_corpus() and held_out(). As a script, it writes the held-out text for
`ember perplexity`: the documents joined by blank lines in OUT/held_out.txt, and those of each source in
OUT/held_out.SOURCE.txt; --max-bytes keeps only the documents that start within the first N bytes of the joined text
(the same prefix for every model scored on it). Needs only Python 3.

Usage: held_out.py --corpus corpus.txt --out DIR [--max-bytes N]
"""
import argparse
import re
from pathlib import Path

RECORD_SEPARATOR_LINE = "\n\x1e\n"  # ends every document of corpus.txt (tools/corpus/README.md)
HELD_OUT_EVERY_NTH_DOCUMENT = 100
DOCUMENT_JOINER = "\n\n"


def read_corpus(corpus: Path) -> tuple[list[str], list[str]]:
    """Documents and their source names (corpus.sources.txt beside the corpus, if it is there)."""
    text = corpus.read_text(encoding="utf-8")
    parts = text.split(RECORD_SEPARATOR_LINE)
    if parts and parts[-1].strip() == "":
        parts = parts[:-1]
    sources_path = corpus.with_name(corpus.stem + ".sources.txt")
    if sources_path.exists():
        sources = sources_path.read_text(encoding="utf-8").splitlines()
        if len(sources) != len(parts):
            raise ValueError(f"{sources_path}: {len(sources)} lines for {len(parts)} documents")
    else:
        sources = ["corpus"] * len(parts)
    kept = [(d, s) for d, s in zip(parts, sources) if d.strip()]
    return [d for d, _ in kept], [s for _, s in kept]


def is_held_out(index: int) -> bool:
    return index % HELD_OUT_EVERY_NTH_DOCUMENT == 0


def held_out(documents: list[str], sources: list[str]) -> tuple[list[str], list[str]]:
    """The held-out documents and their sources, in corpus order."""
    kept = [(d, s) for i, (d, s) in enumerate(zip(documents, sources)) if is_held_out(i)]
    return [d for d, _ in kept], [s for _, s in kept]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-bytes", type=int, default=0, help="keep the documents that start within the first N bytes")
    args = parser.parse_args()
    documents, sources = held_out(*read_corpus(args.corpus))
    if args.max_bytes:
        offset, count = 0, 0
        while count < len(documents) and offset < args.max_bytes:
            offset += len((documents[count] + DOCUMENT_JOINER).encode("utf-8"))
            count += 1
        documents, sources = documents[:count], sources[:count]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "held_out.txt").write_text(DOCUMENT_JOINER.join(documents), encoding="utf-8")
    for name in sorted(set(sources)):
        mine = [d for d, s in zip(documents, sources) if s == name]
        (args.out / f"held_out.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.txt").write_text(DOCUMENT_JOINER.join(mine),
                                                                                        encoding="utf-8")
        print(f"{name}: {len(mine)} documents, {len(DOCUMENT_JOINER.join(mine).encode('utf-8')):,} bytes")
    print(f"held_out.txt: {len(documents)} documents, {len(DOCUMENT_JOINER.join(documents).encode('utf-8')):,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
