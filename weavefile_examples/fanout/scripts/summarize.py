"""Aggregate every per-sample profile into one table and one k-mer matrix.

Usage: python scripts/summarize.py PROFILE_JSON... --summary SUMMARY_TSV --matrix MATRIX_TSV

SUMMARY_TSV has one row per sample (reads, bases, GC %, most common k-mer);
MATRIX_TSV has one row per k-mer and one column per sample. Rows are sorted, so
the same profiles always give the same bytes.
"""

import argparse
import json


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+")
    parser.add_argument("--summary", required=True)
    parser.add_argument("--matrix", required=True)
    args = parser.parse_args()
    summary_path, matrix_path, profile_paths = args.summary, args.matrix, args.profiles
    profiles = []
    for path in profile_paths:
        with open(path) as f:
            profiles.append(json.load(f))
    profiles.sort(key=lambda p: p["sample"])

    with open(summary_path, "w") as out:
        out.write("sample\treads\tbases\tgc_percent\ttop_kmer\n")
        for p in profiles:
            top = min(p["kmers"].items(), key=lambda kv: (-kv[1], kv[0]))[0] if p["kmers"] else "-"
            out.write(
                f"{p['sample']}\t{p['reads']}\t{p['bases']}\t{100 * p['gc_fraction']:.2f}\t{top}\n"
            )

    all_kmers = sorted({kmer for p in profiles for kmer in p["kmers"]})
    with open(matrix_path, "w") as out:
        out.write("kmer\t" + "\t".join(p["sample"] for p in profiles) + "\n")
        for kmer in all_kmers:
            out.write(
                kmer + "\t" + "\t".join(str(p["kmers"].get(kmer, 0)) for p in profiles) + "\n"
            )

    total_reads = sum(p["reads"] for p in profiles)
    print(
        f"summarize: {len(profiles)} samples, {total_reads} reads -> {summary_path}, {matrix_path}"
    )


if __name__ == "__main__":
    main()
