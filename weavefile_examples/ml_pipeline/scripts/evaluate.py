"""Evaluate the trained model on the held-out test set.

Usage: python scripts/evaluate.py --model MODEL_DIR --test TEST_CSV --out METRICS_JSON

Writes accuracy, test log-loss, per-class precision/recall/F1 and the confusion
matrix as JSON with sorted keys and rounded numbers (no timestamps), so an
unchanged model gives a byte-identical report.
"""

import argparse
import csv
import json
import math
import os


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    with open(os.path.join(args.model, "model.json")) as f:
        model = json.load(f)
    with open(os.path.join(args.model, "meta.json")) as f:
        meta = json.load(f)
    with open(args.test, newline="") as f:
        rows = list(csv.reader(f))[1:]

    classes = model["classes"]
    k = len(classes)
    confusion = [[0] * k for _ in range(k)]  # confusion[true][predicted]
    log_loss = 0.0
    for row in rows:
        x = [float(v) for v in row[:-1]]
        truth = classes.index(row[-1])
        scores = [
            sum(w * v for w, v in zip(model["weights"][c], x)) + model["biases"][c]
            for c in range(k)
        ]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        log_loss -= math.log(max(exps[truth] / sum(exps), 1e-12))
        confusion[truth][scores.index(top)] += 1

    n = len(rows)
    per_class = {}
    for c, name in enumerate(classes):
        tp = confusion[c][c]
        predicted = sum(confusion[t][c] for t in range(k))
        actual = sum(confusion[c])
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": actual,
        }

    metrics = {
        "accuracy": round(sum(confusion[c][c] for c in range(k)) / n, 4),
        "test_log_loss": round(log_loss / n, 4),
        "test_rows": n,
        "per_class": per_class,
        "confusion_matrix": {"labels": classes, "rows_true_cols_predicted": confusion},
        "training": {
            "epochs": meta["epochs"],
            "learning_rate": meta["learning_rate"],
            "final_train_loss": round(meta["final_train_loss"], 4),
        },
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"evaluate: accuracy {metrics['accuracy']:.4f} on {n} test rows -> {args.out}")


if __name__ == "__main__":
    main()
