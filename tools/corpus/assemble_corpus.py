#!/usr/bin/env python3
"""Turns unpacked Debian text and documentation packages into corpus.txt: shuffled documents, one record each.

Sources (each optional; the ones given are used):
  --kjv        a KJV chapter per document (its verses, one a line, references stripped)
  --fortunes   one fortune cookie per document
  --wordnet    one WordNet gloss per document, written as "lemma: gloss" (all synsets)
  --gcide      one dictionary entry per document (GCIDE, the 1913 Webster and its successors)
  --rst        reStructuredText documentation trees (plain or gzipped .rst / .txt files), one file each
  --pod        Perl POD files and the POD of Perl modules, one file each
  --asciidoc   AsciiDoc text files (git's manual pages and guides), one file each
  --html       HTML documentation (DocBook or Publican output), one page each
A --rst, --pod, --asciidoc or --html argument is NAME=DIR[:EXCLUDED,...]: NAME labels the source (the
same NAME may be given for several folders) and EXCLUDED lists folder names under DIR that are skipped
(translations, device-tree bindings, old editions).

Markup is stripped to plain text (headings stay as lines of their own, code blocks keep their lines).
Exact duplicate documents are dropped, and so is every paragraph after the third copy of it anywhere
in the corpus (navigation, licence headers, boilerplate). Documents are separated by a line holding
only the ASCII record separator (0x1E), a byte no source contains, so the trainer can split them
exactly and put the end-of-sequence token between them. The shuffle uses a fixed seed: same packages,
same bytes. corpus.sources.txt beside the output names the source of each document, one a line.
"""
import argparse
import base64
import gzip
import html
import random
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

RECORD_SEPARATOR = "\x1e"
SHUFFLE_SEED = 20261123
# ASCII drawings teach a language model nothing about English prose.
FORTUNE_FILES_SKIPPED = {"art", "ascii-art"}
VERSE = re.compile(r"^(?P<book>[1-3]?[A-Za-z]+)(?P<chapter>\d+):(?P<verse>\d+) (?P<text>.*)$")
WORDNET_PARTS = ("noun", "verb", "adj", "adv")
PARAGRAPH_COPIES_KEPT = 3
MIN_DOCUMENT_CHARS = 40
# Pages that only repeat or index the others (mdBook's one-page print version, tables of contents).
SKIPPED_FILES = {"print.html", "toc.html", "404.html", "SUMMARY.html", "genindex.html", "search.html"}


def clean_text(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, no control characters but newline and tab."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def read_maybe_gzipped(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------------
# The sources of the first corpus


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
    return glosses


# ---------------------------------------------------------------------------------------------------
# GCIDE (dictd format: a gzip-compatible data file and an index of headword, base64 offset, length)

B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def b64_number(text: str) -> int:
    value = 0
    for c in text:
        value = value * 64 + B64[c]
    return value


def gcide_entries(directory: Path) -> list[str]:
    data = gzip.decompress((directory / "gcide.dict.dz").read_bytes())
    spans = set()
    for line in (directory / "gcide.index").read_text(encoding="utf-8").splitlines():
        word, offset, length = line.split("\t")
        if word.startswith("00-database"):
            continue
        spans.add((b64_number(offset), b64_number(length)))
    entries = []
    for offset, length in sorted(spans):
        text = data[offset:offset + length].decode("utf-8", errors="replace")
        # Source tags ("[1913 Webster]", "[WordNet 1.5]") on lines of their own, then the markup:
        # \Pro*nun"ci*a`tion\ goes, {cross references} and [accents] lose their brackets.
        text = re.sub(r"^\s*\[[^\]\n]*(Webster|WordNet|PJC|Century|Dict|Wordnet)[^\]\n]*\]\s*$", "", text,
                      flags=re.MULTILINE)
        text = re.sub(r"\\[^\\\n]*\\", "", text)
        text = text.replace("{", "").replace("}", "")
        text = re.sub(r" +,", ",", text)
        text = "\n".join(line.strip() for line in text.splitlines())
        entries.append(clean_text(text))
    return entries


# ---------------------------------------------------------------------------------------------------
# Markup languages


def files_under(spec: str, suffixes: tuple[str, ...]) -> tuple[str, list[Path]]:
    name, _, rest = spec.partition("=")
    root, _, excluded = rest.partition(":")
    skip = {e for e in excluded.split(",") if e}
    paths = []
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        if any(part in skip for part in path.relative_to(root).parts) or path.name in SKIPPED_FILES:
            continue
        plain = path.name[:-3] if path.name.endswith(".gz") else path.name
        if plain.endswith(suffixes):
            paths.append(path)
    return name, paths


RST_UNDERLINE = re.compile(r"^([=\-~^*#+`'\".:_])\1{2,}\s*$")
RST_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::(.*)$")
RST_COMMENT = re.compile(r"^(\s*)\.\.(\s|$)")
RST_KEPT_DIRECTIVES = {"note", "warning", "tip", "important", "caution", "attention", "hint", "danger",
                       "seealso", "code-block", "code", "sourcecode", "admonition", "topic", "sidebar",
                       "rubric", "epigraph", "describe", "function", "method", "class", "attribute",
                       "data", "exception", "decorator", "module", "c:function", "c:type", "c:macro",
                       "c:member", "c:var", "py:function", "py:method", "py:class", "py:attribute",
                       "productionlist", "parsed-literal", "literalinclude"}
RST_ROLE = re.compile(r":[\w:.+-]+:`([^`]+)`")
RST_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]+>`__?")


def rst_inline(text: str) -> str:
    def role(match: re.Match) -> str:
        inner = match.group(1)
        target = re.match(r"^(.*?)\s*<[^<>]+>$", inner, flags=re.DOTALL)
        if target and target.group(1):
            inner = target.group(1)
        return inner.lstrip("~!")

    text = RST_ROLE.sub(role, text)
    text = RST_LINK.sub(r"\1", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"`([^`]+)`_{0,2}", r"\1", text)
    text = re.sub(r"\*\*([^*\n]+)\*\*", r"\1", text)
    text = re.sub(r"\|(\w[\w -]*)\|_?", r"\1", text)
    text = re.sub(r"::$", ":", text, flags=re.MULTILINE)
    text = re.sub(r"\\([*`_|\\])", r"\1", text)
    return text


def rst_to_text(text: str) -> str:
    out = []
    skip_indent = None  # inside a dropped block: lines indented deeper than this are dropped too
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not line.strip() or indent > skip_indent:
                continue
            skip_indent = None
        if RST_UNDERLINE.match(line):
            continue
        directive = RST_DIRECTIVE.match(line)
        if directive:
            name = directive.group(2)
            if name in RST_KEPT_DIRECTIVES:
                argument = directive.group(3).strip()
                if argument and name not in ("code-block", "code", "sourcecode", "literalinclude"):
                    out.append(directive.group(1) + argument)
                # their options (":linenos:") are dropped below; their bodies stay
            else:
                skip_indent = indent
            continue
        if RST_COMMENT.match(line):  # comments, substitution and link targets
            skip_indent = indent
            continue
        if re.match(r"^\s+:[\w -]+:(\s|$)", line) and out and (not out[-1].strip() or out[-1].strip().startswith(":")):
            continue  # a directive's options
        out.append(line)
    return clean_text(rst_inline("\n".join(out)))


def pod_to_text(text: str) -> str:
    out = []
    # A .pod file is documentation from its first line; in a .pm module only the POD blocks are.
    in_pod = text.startswith("=")
    for line in text.split("\n"):
        if line.startswith("=cut"):
            in_pod = False
            continue
        if line.startswith("=") and re.match(r"^=[a-zA-Z]", line):
            in_pod = True
            command, _, rest = line.partition(" ")
            if command in ("=head1", "=head2", "=head3", "=head4", "=item"):
                rest = rest.strip()
                if rest and rest not in ("*", "-") and not re.fullmatch(r"\d+\.?", rest):
                    out.append(rest)
                    out.append("")
            continue
        if in_pod:
            out.append(line)
    text = "\n".join(out)
    # Formatting codes, innermost first: C<< a > b >> (the double form), then X<...> until none are left.
    text = re.sub(r"[A-Z]<<+\s+(.*?)\s+>>+", r"\1", text, flags=re.DOTALL)
    escapes = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&", "apos": "'"}

    def code(match: re.Match) -> str:
        kind, inner = match.group(1), match.group(2)
        if kind == "E":
            if inner.isdigit():
                return chr(int(inner))
            return escapes.get(inner, html.unescape(f"&{inner};"))
        if kind in ("X", "Z"):
            return ""
        if kind == "L":
            inner = inner.split("|", 1)[0] if "|" in inner else inner.replace("/", " ").strip('"')
        return inner

    for _ in range(6):
        text, count = re.subn(r"([A-Z])<([^<>]*)>", code, text)
        if not count:
            break
    return clean_text(text)


def asciidoc_to_text(text: str) -> str:
    out = []
    for line in text.split("\n"):
        stripped = line.strip()
        if re.fullmatch(r"([-=~.+*_/])\1{3,}", stripped) or re.fullmatch(r"[-=~^]{2,}", stripped):
            continue  # delimiters and heading underlines
        if re.fullmatch(r"\[\[.*\]\]|\[[\w ,=\"'-]*\]", stripped):
            continue  # anchors and block attributes
        if re.match(r"^(include|ifdef|ifndef|endif|ifeval)::", stripped) or stripped.startswith("//"):
            continue
        if stripped == "+":
            out.append("")
            continue
        line = re.sub(r"^=+\s+", "", line)
        out.append(line)
    text = "\n".join(out)
    text = re.sub(r"linkgit:([\w-]+)\[(\d)\]", r"\1(\2)", text)
    text = re.sub(r"(?:link|https?):\S+?\[([^\]]*)\]", lambda m: m.group(1), text)
    text = re.sub(r"<<[^,>]*,([^>]*)>>", r"\1", text)
    text = re.sub(r"<<([^>]*)>>", r"\1", text)
    for attribute, value in (("{litdd}", "--"), ("{tilde}", "~"), ("{caret}", "^"), ("{startsb}", "["),
                             ("{endsb}", "]"), ("{plus}", "+"), ("{empty}", ""), ("{nbsp}", " ")):
        text = text.replace(attribute, value)
    text = re.sub(r"::$", ":", text, flags=re.MULTILINE)
    return clean_text(text)


class HtmlText(HTMLParser):
    BLOCKS = {"p", "div", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl",
              "dt", "dd", "table", "tr", "blockquote", "pre", "br", "hr", "title", "caption", "figure"}
    SKIPPED_TAGS = {"script", "style", "head", "noscript", "svg", "button", "form", "nav"}
    SKIPPED_CLASSES = {"navheader", "navfooter", "docnav", "toc", "breadcrumbs", "footer", "sidebar",
                       "related", "sphinxsidebar", "producttitle", "indexterm", "navigation", "footnote-ref",
                       "headerlink", "lot", "index", "menu-bar", "theme-popup", "boring", "nav-wrapper",
                       "nav-wide-wrapper", "mobile-nav-chapters", "buttons"}
    VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "param", "source",
            "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if self.skip_depth:
            if tag not in self.VOID:
                self.skip_depth += 1
            return
        classes = set((dict(attrs).get("class") or "").split())
        if tag in self.SKIPPED_TAGS or classes & self.SKIPPED_CLASSES:
            if tag not in self.VOID:
                self.skip_depth = 1
            return
        if tag == "pre":
            self.pre += 1
        if tag in self.BLOCKS:
            self.parts.append("\n" if tag in ("br", "li", "dt", "tr") else "\n\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if self.skip_depth:
            if tag not in self.VOID:
                self.skip_depth -= 1
            return
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in self.BLOCKS:
            self.parts.append("\n\n" if tag not in ("li", "dt", "tr") else "\n")

    def handle_data(self, data):
        if self.skip_depth:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        text = "".join(self.parts)
        text = "\n".join(line.strip() if not line.startswith("  ") else line.rstrip() for line in text.split("\n"))
        return clean_text(text)


def html_to_text(text: str) -> str:
    parser = HtmlText()
    parser.feed(text)
    parser.close()
    return parser.text()


CONVERTERS = {
    "rst": ((".rst", ".txt"), rst_to_text),
    "pod": ((".pod", ".pm"), pod_to_text),
    "asciidoc": ((".txt",), asciidoc_to_text),
    "html": ((".html", ".htm"), html_to_text),
}


def markup_documents(kind: str, spec: str) -> tuple[str, list[str]]:
    suffixes, convert = CONVERTERS[kind]
    name, paths = files_under(spec, suffixes)
    documents = [convert(read_maybe_gzipped(path)) for path in paths]
    return name, documents


# ---------------------------------------------------------------------------------------------------


def drop_repeated_paragraphs(sources: dict[str, list[str]]) -> int:
    """Keeps the first PARAGRAPH_COPIES_KEPT copies of every paragraph of 40 characters or more."""
    seen: Counter = Counter()
    dropped = 0
    for name, docs in sources.items():
        kept_docs = []
        for doc in docs:
            kept = []
            for paragraph in doc.split("\n\n"):
                key = paragraph.strip()
                if len(key) >= 40:
                    seen[key] += 1
                    if seen[key] > PARAGRAPH_COPIES_KEPT:
                        dropped += 1
                        continue
                kept.append(paragraph)
            kept_docs.append("\n\n".join(kept).strip("\n"))
        sources[name] = kept_docs
    return dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kjv", type=Path, help="output of `bible -f gen1:1-rev22:21`")
    parser.add_argument("--fortunes", type=Path, help="unpacked /usr/share/games/fortunes")
    parser.add_argument("--wordnet", type=Path, help="unpacked /usr/share/wordnet")
    parser.add_argument("--gcide", type=Path, help="unpacked /usr/share/dictd (gcide.dict.dz, gcide.index)")
    for kind in CONVERTERS:
        parser.add_argument(f"--{kind}", action="append", default=[], metavar="NAME=DIR[:EXCLUDED,...]")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    sources: dict[str, list[str]] = {}
    if args.kjv:
        sources["kjv"] = kjv_chapters(args.kjv)
    if args.fortunes:
        sources["fortunes"] = fortunes(args.fortunes)
    if args.wordnet:
        sources["wordnet"] = wordnet_glosses(args.wordnet)
    if args.gcide:
        sources["gcide"] = gcide_entries(args.gcide)
    for kind in CONVERTERS:
        for spec in getattr(args, kind):
            name, docs = markup_documents(kind, spec)
            sources.setdefault(name, []).extend(docs)
    dropped = drop_repeated_paragraphs(sources)
    print(f"paragraphs dropped as repeats (beyond {PARAGRAPH_COPIES_KEPT} copies): {dropped}")

    documents: list[tuple[str, str]] = []
    seen = set()
    for name, docs in sources.items():
        docs = [doc for doc in docs if len(doc) >= MIN_DOCUMENT_CHARS or name in ("fortunes", "wordnet")]
        unique = [doc for doc in docs if doc.strip() and not (doc in seen or seen.add(doc))]
        print(f"{name}: {len(docs)} documents, {len(unique)} unique, {sum(map(len, unique))} characters")
        documents.extend((name, doc) for doc in unique)
    for _, doc in documents:
        if RECORD_SEPARATOR in doc:
            raise ValueError(f"document contains the record separator: {doc[:80]!r}")
    random.Random(SHUFFLE_SEED).shuffle(documents)
    with args.output.open("w", encoding="utf-8", newline="\n") as out:
        for _, doc in documents:
            out.write(doc)
            out.write(f"\n{RECORD_SEPARATOR}\n")
    sources_path = args.output.with_name(args.output.stem + ".sources.txt")
    sources_path.write_text("".join(f"{name}\n" for name, _ in documents), encoding="utf-8")
    print(f"{args.output}: {len(documents)} documents, {args.output.stat().st_size} bytes")


if __name__ == "__main__":
    main()
