"""Per-sample quality control for a FASTA file of short reads.

Usage: python scripts/trim.py --min-length N RAW_FASTA > TRIMMED_FASTA

Upper-cases every read (soft-masked bases become ordinary bases), trims N bases
from both ends, and drops reads that still contain an N or are shorter than N
bases. Writes the kept reads, one sequence per line, to standard output.
"""

import argparse
import sys


def read_fasta(path):
    name, chunks = None, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                if name is not None:
                    yield name, "".join(chunks)
                name, chunks = line[1:].split()[0], []
            else:
                chunks.append(line)
    if name is not None:
        yield name, "".join(chunks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-length", type=int, default=40)
    parser.add_argument("fasta")
    args = parser.parse_args()

    kept = dropped = 0
    for name, seq in read_fasta(args.fasta):
        seq = seq.upper().strip("N")
        if "N" in seq or len(seq) < args.min_length:
            dropped += 1
            continue
        kept += 1
        sys.stdout.write(f">{name}\n{seq}\n")
    print(f"trim: {args.fasta}: kept {kept}, dropped {dropped}", file=sys.stderr)


if __name__ == "__main__":
    main()
