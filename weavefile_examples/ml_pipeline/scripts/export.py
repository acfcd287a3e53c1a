"""Bundle the model, its feature scaler and its test metrics into one portable file.

Usage: python scripts/export.py --model MODEL_DIR --scaler SCALER_JSON --metrics METRICS_JSON --out BUNDLE_JSON

The bundle takes raw measurements in centimetres (it carries the training-set
means and standard deviations) and is what `scripts/predict.py` serves from.
"""

import argparse
import json
import os


def load(path):
    with open(path) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--scaler", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    model = load(os.path.join(args.model, "model.json"))
    scaler = load(args.scaler)
    metrics = load(args.metrics)
    if scaler["features"] != model["features"]:
        raise SystemExit("export: scaler and model disagree on the feature order")

    bundle = {
        "format": "weave-example-softmax/1",
        "classes": model["classes"],
        "features": model["features"],
        "scaler": {"mean": scaler["mean"], "std": scaler["std"]},
        "weights": model["weights"],
        "biases": model["biases"],
        "test_accuracy": metrics["accuracy"],
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(bundle, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"export: wrote {args.out} (test accuracy {metrics['accuracy']:.4f})")


if __name__ == "__main__":
    main()
