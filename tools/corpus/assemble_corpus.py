#!/usr/bin/env python3
"""Turns the unpacked Debian text packages into corpus.txt: shuffled documents, one record each.

A document is a KJV chapter (its verses, one a line, references stripped), one fortune cookie, or
one WordNet gloss written as "lemma: gloss" (a fixed sample of them). Documents are separated by a line holding only the ASCII
record separator (0x1E), a byte none of the sources contains, so the trainer can split them exactly and
put the end-of-sequence token between them. The shuffle uses a fixed seed: same packages, same bytes.
"""
import argparse
import random
import re
from pathlib import Path

RECORD_SEPARATOR = "\x1e"
SHUFFLE_SEED = 20261123
# ASCII drawings teach a language model nothing about English prose.
FORTUNE_FILES_SKIPPED = {"art", "ascii-art"}
VERSE = re.compile(r"^(?P<book>[1-3]?[A-Za-z]+)(?P<chapter>\d+):(?P<verse>\d+) (?P<text>.*)$")
WORDNET_PARTS = ("noun", "verb", "adj", "adv")
# All 117k glosses would make definitions 60% of the text; a fixed sample keeps prose the larger share
# and the corpus near 12 MB.
WORDNET_GLOSSES_KEPT = 65_000


def kjv_chapters(path: Path) -> list[str]:
    chapters: dict[tuple[str, str], list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        match = VERSE.match(line)
        if match is None:
            raise ValueError(f"{path}: not a verse line: {line[:80]!r}")
        chapters.setdefault((match["book"], match["chapter"]), []).append(match["text"].strip())
    return ["\n".join(verses) for verses in chapters.values()]


def fortunes(directory: Path) -> list[str]:
    cookies = []
    for path in sorted(directory.iterdir()):
        # The .dat files are strfile indexes and the .u8 names are links to the plain files.
        if path.is_symlink() or path.suffix in (".dat", ".u8") or path.name in FORTUNE_FILES_SKIPPED:
            continue
        text = path.read_text(encoding="utf-8")
        for cookie in re.split(r"^%$", text, flags=re.MULTILINE):
            lines = [line.rstrip() for line in cookie.strip("\n").splitlines()]
            if any(lines):
                cookies.append("\n".join(lines).strip("\n"))
    return cookies


def wordnet_glosses(directory: Path) -> list[str]:
    glosses = []
    for part in WORDNET_PARTS:
        for line in (directory / f"data.{part}").read_text(encoding="utf-8").splitlines():
            # The licence header lines start with two spaces; synset lines start with their offset.
            if line.startswith("  ") or " | " not in line:
                continue
            fields, gloss = line.split(" | ", 1)
            lemma = fields.split(" ")[4]
            # Adjective lemmas may carry a syntactic marker such as "(a)" or "(p)".
            lemma = re.sub(r"\([a-z]+\)$", "", lemma).replace("_", " ")
            glosses.append(f"{lemma}: {gloss.strip()}")
    return random.Random(SHUFFLE_SEED).sample(glosses, WORDNET_GLOSSES_KEPT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kjv", type=Path, required=True, help="output of `bible -f gen1:1-rev22:21`")
    parser.add_argument("--fortunes", type=Path, required=True, help="unpacked /usr/share/games/fortunes")
    parser.add_argument("--wordnet", type=Path, required=True, help="unpacked /usr/share/wordnet")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    sources = {
        "kjv chapters": kjv_chapters(args.kjv),
        "fortunes": fortunes(args.fortunes),
        "wordnet glosses": wordnet_glosses(args.wordnet),
    }
    documents = []
    seen = set()
    for name, docs in sources.items():
        unique = [doc for doc in docs if not (doc in seen or seen.add(doc))]
        print(f"{name}: {len(docs)} documents, {len(unique)} unique, {sum(map(len, unique))} characters")
        documents.extend(unique)
    for doc in documents:
        if RECORD_SEPARATOR in doc:
            raise ValueError(f"document contains the record separator: {doc[:80]!r}")
    random.Random(SHUFFLE_SEED).shuffle(documents)
    with args.output.open("w", encoding="utf-8", newline="\n") as out:
        for doc in documents:
            out.write(doc)
            out.write(f"\n{RECORD_SEPARATOR}\n")
    print(f"{args.output}: {len(documents)} documents, {args.output.stat().st_size} bytes")


if __name__ == "__main__":
    main()
