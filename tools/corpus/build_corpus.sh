#!/usr/bin/env bash
# Builds corpus.txt, the English training text of the default model, from Debian packages alone, so
# that anyone on Debian 12 (bookworm) gets the same bytes. Usage:
#   tools/corpus/build_corpus.sh [OUTPUT_DIR]        (default: ./build/corpus)
# Writes OUTPUT_DIR/corpus.txt, corpus.sources.txt (the source of each document), corpus.sha256,
# versions.txt and pack/ (both texts compressed with xz -9, for carrying to a training machine).
# Needs apt-get (download works unprivileged; the bible-kjv program is installed with apt-get install,
# which needs root unless it is already there), dpkg-deb, xz and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-build/corpus}" && cd "${1:-build/corpus}" && pwd)
work="$out/work"
rm -rf "$work"
mkdir -p "$work/debs" "$work/root"

packages=(bible-kjv-text fortunes fortunes-min wordnet-base dict-gcide linux-doc-6.1 python3.11-doc
          perl-doc perl-modules-5.36 postgresql-doc-15 git-doc debian-handbook debian-reference-en developers-reference
          debian-policy rust-doc)
# The data packages are only downloaded and unpacked (nothing is installed), which keeps the host clean.
(cd "$work/debs" && apt-get download "${packages[@]}")
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done

# The KJV ships as a compressed index that only its own reader can expand, so the reader is installed.
if ! command -v bible >/dev/null; then
    apt-get install -y --no-install-recommends bible-kjv
fi
# `bible -f` prints whole verses ("Ge1:1 In the beginning ..."), one per line, Genesis 1:1 to Revelation 22:21.
# -p points the reader at the unpacked data, so the text is the downloaded package's.
bible -p "$work/root/usr/lib" -f 'gen1:1-rev22:21' > "$work/kjv.txt"

: > "$out/versions.txt"
for deb in "$work"/debs/*.deb; do
    dpkg-deb -f "$deb" Package Version | paste -d' ' - - >> "$out/versions.txt"
done

share="$work/root/usr/share"
linux="$share/doc/linux-doc-6.1/Documentation"
# The kernel's translations and its device-tree bindings (YAML schemas) are left out, as are the
# Debian handbook's other languages, the Rust API reference (generated from source) and the Rust book's
# old editions.
python3 "$here/assemble_corpus.py" \
    --kjv "$work/kjv.txt" \
    --fortunes "$share/games/fortunes" \
    --wordnet "$share/wordnet" \
    --gcide "$share/dictd" \
    --rst "linux-doc=$linux:translations,bindings,zh_CN,zh_TW,it_IT,ja_JP,ko_KR,sp_SP,ABI,output" \
    --rst "python-doc=$share/doc/python3.11/html/_sources" \
    --pod "perl-doc=$share/perl" \
    --asciidoc "git-doc=$share/doc/git-doc" \
    --html "postgresql-doc=$share/doc/postgresql-doc-15/html" \
    --html "debian-handbook=$share/doc/debian-handbook/html/en-US" \
    --html "debian-reference=$share/debian-reference" \
    --html "debian-developers-reference=$share/developers-reference" \
    --html "debian-policy=$share/doc/debian-policy/policy.html" \
    --html "rust-doc=$share/doc/rust-doc/html/book:2018-edition,first-edition,second-edition" \
    --html "rust-doc=$share/doc/rust-doc/html/reference:2018-edition,first-edition,second-edition" \
    --html "rust-doc=$share/doc/rust-doc/html/nomicon:2018-edition,first-edition,second-edition" \
    --html "rust-doc=$share/doc/rust-doc/html/rust-by-example:2018-edition,first-edition,second-edition" \
    --html "rust-doc=$share/doc/rust-doc/html/embedded-book:2018-edition,first-edition,second-edition" \
    --html "rust-doc=$share/doc/rust-doc/html/edition-guide:2018-edition,first-edition,second-edition" \
    --html "rust-doc=$share/doc/rust-doc/html/rustc:2018-edition,first-edition,second-edition" \
    --output "$out/corpus.txt"

(cd "$out" && sha256sum corpus.txt corpus.sources.txt | tee corpus.sha256)
mkdir -p "$out/pack"
xz -9 -T2 -c "$out/corpus.txt" > "$out/pack/corpus.txt.xz"
xz -9 -c "$out/corpus.sources.txt" > "$out/pack/corpus.sources.txt.xz"
ls -l "$out/corpus.txt" "$out"/pack/*
echo "package versions:"
cat "$out/versions.txt"
