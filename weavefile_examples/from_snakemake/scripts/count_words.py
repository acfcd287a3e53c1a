"""Count the words of one text, ignoring case, punctuation and a few stop words.

Usage: python scripts/count_words.py TEXT > COUNTS_TSV

Writes `word<TAB>count`, most frequent first (ties alphabetical).
"""

import re
import sys
from collections import Counter

STOP_WORDS = set(
    "a an and any at down every he him his in it its more of on one or some than the their to"
    " two was were who".split()
)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        words = re.findall(r"[a-z']+", f.read().lower())
    counts = Counter(w for w in words if w not in STOP_WORDS)
    sys.stdout.write("word\tcount\n")
    for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        sys.stdout.write(f"{word}\t{count}\n")


if __name__ == "__main__":
    main()
