#!/usr/bin/env bash
# Builds corpus.txt, the English training text of the default model, from Debian packages alone, so
# that anyone on Debian 12 (bookworm) gets the same bytes. Usage:
#   tools/corpus/build_corpus.sh [OUTPUT_DIR]        (default: ./build/corpus)
# Needs apt-get (download works unprivileged; the bible-kjv program is installed with apt-get install,
# which needs root unless it is already there) and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-build/corpus}" && cd "${1:-build/corpus}" && pwd)
work="$out/work"
rm -rf "$work"
mkdir -p "$work/debs" "$work/root"

# The data packages are only downloaded and unpacked (nothing is installed), which keeps the host clean.
(cd "$work/debs" && apt-get download bible-kjv-text fortunes fortunes-min wordnet-base)
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

dpkg-deb -f "$work"/debs/bible-kjv-text_*.deb Package Version > "$work/versions.txt"
for deb in "$work"/debs/fortunes_*.deb "$work"/debs/fortunes-min_*.deb "$work"/debs/wordnet-base_*.deb; do
    dpkg-deb -f "$deb" Package Version >> "$work/versions.txt"
done

python3 "$here/assemble_corpus.py" \
    --kjv "$work/kjv.txt" \
    --fortunes "$work/root/usr/share/games/fortunes" \
    --wordnet "$work/root/usr/share/wordnet" \
    --output "$out/corpus.txt"

sha256sum "$out/corpus.txt" | tee "$out/corpus.sha256"
echo "package versions:"
paste -d' ' - - < "$work/versions.txt"
