"""Split the Iris CSV into train/test sets and standardise the features.

Usage: python scripts/preprocess.py [--holdout-every N] IRIS_CSV TRAIN_CSV TEST_CSV SCALER_JSON

The split is deterministic (no randomness): within each species, every N-th row
goes to the test set. Feature means and standard deviations are computed on the
training rows only and applied to both sets; they are saved so that the exported
model can standardise raw measurements itself. Standard library only.
"""

import argparse
import csv
import json
import math
import os

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def write_csv(path, rows):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(FEATURES + ["species"])
        for features, species in rows:
            writer.writerow([f"{x:.6f}" for x in features] + [species])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout-every", type=int, default=5)
    parser.add_argument("iris_csv")
    parser.add_argument("train_csv")
    parser.add_argument("test_csv")
    parser.add_argument("scaler_json")
    args = parser.parse_args()

    with open(args.iris_csv, newline="") as f:
        records = list(csv.DictReader(f))

    train, test = [], []
    seen_per_species = {}
    for record in records:
        species = record["species"]
        index = seen_per_species.get(species, 0)
        seen_per_species[species] = index + 1
        row = ([float(record[name]) for name in FEATURES], species)
        (test if index % args.holdout_every == args.holdout_every - 1 else train).append(row)

    n = len(train)
    means = [sum(features[j] for features, _ in train) / n for j in range(len(FEATURES))]
    stds = [
        math.sqrt(sum((features[j] - means[j]) ** 2 for features, _ in train) / n)
        for j in range(len(FEATURES))
    ]

    def standardise(rows):
        return [
            ([(x - m) / s for x, m, s in zip(features, means, stds)], y) for features, y in rows
        ]

    write_csv(args.train_csv, standardise(train))
    write_csv(args.test_csv, standardise(test))
    os.makedirs(os.path.dirname(args.scaler_json) or ".", exist_ok=True)
    with open(args.scaler_json, "w") as f:
        scaler = {
            "features": FEATURES,
            "mean": [round(m, 6) for m in means],
            "std": [round(s, 6) for s in stds],
        }
        json.dump(scaler, f, indent=2, sort_keys=True)
        f.write("\n")

    print(f"preprocess: {len(train)} training rows, {len(test)} test rows")


if __name__ == "__main__":
    main()
