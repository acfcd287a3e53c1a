"""Summarise the word counts of every book.

Usage: python scripts/summarize.py COUNTS_TSV... --top N --summary SUMMARY_TSV --top-words TOP_TSV

SUMMARY_TSV: one row per book (words counted, distinct words, most frequent word).
TOP_TSV: the N most frequent words of each book.
"""

import argparse
import csv
import os


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", nargs="+")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--top-words", required=True)
    args = parser.parse_args()

    books = {}
    for path in args.counts:
        book = os.path.splitext(os.path.basename(path))[0]
        with open(path, newline="") as f:
            books[book] = [(r["word"], int(r["count"])) for r in csv.DictReader(f, delimiter="\t")]

    with open(args.summary, "w") as out:
        out.write("book\twords\tdistinct\ttop_word\n")
        for book in sorted(books):
            rows = books[book]
            top = rows[0][0] if rows else "-"
            out.write(f"{book}\t{sum(c for _, c in rows)}\t{len(rows)}\t{top}\n")

    with open(args.top_words, "w") as out:
        out.write("book\trank\tword\tcount\n")
        for book in sorted(books):
            for rank, (word, count) in enumerate(books[book][: args.top], start=1):
                out.write(f"{book}\t{rank}\t{word}\t{count}\n")
    print(f"summarize: {len(books)} books -> {args.summary}, {args.top_words}")


if __name__ == "__main__":
    main()
