"""Profile one trimmed sample: read count, bases, GC fraction and k-mer counts.

Usage: python scripts/profile.py --k K --sample NAME TRIMMED_FASTA > PROFILE_JSON
"""

import argparse
import json
import sys
from collections import Counter


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--sample", required=True)
    parser.add_argument("fasta")
    args = parser.parse_args()

    with open(args.fasta) as f:
        reads = [line.strip() for line in f if line.strip() and not line.startswith(">")]

    bases = sum(len(r) for r in reads)
    gc = sum(r.count("G") + r.count("C") for r in reads)
    kmers = Counter(r[i : i + args.k] for r in reads for i in range(len(r) - args.k + 1))
    profile = {
        "sample": args.sample,
        "k": args.k,
        "reads": len(reads),
        "bases": bases,
        "gc_fraction": round(gc / bases, 4) if bases else 0.0,
        "kmers": dict(kmers),
    }
    json.dump(profile, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
