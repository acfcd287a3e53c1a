"""Classify one flower with the exported bundle (not part of the build; try it afterwards).

Usage: python scripts/predict.py dist/iris_classifier.json SEPAL_LENGTH SEPAL_WIDTH PETAL_LENGTH PETAL_WIDTH
Example: python scripts/predict.py dist/iris_classifier.json 6.1 2.8 4.7 1.2
"""

import json
import math
import sys


def main():
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        bundle = json.load(f)
    raw = [float(v) for v in sys.argv[2:]]
    x = [(v - m) / s for v, m, s in zip(raw, bundle["scaler"]["mean"], bundle["scaler"]["std"])]
    scores = [
        sum(w * v for w, v in zip(ws, x)) + b for ws, b in zip(bundle["weights"], bundle["biases"])
    ]
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    for name, e in sorted(zip(bundle["classes"], exps), key=lambda pair: -pair[1]):
        print(f"{name:<12} {e / total:.3f}")


if __name__ == "__main__":
    main()
