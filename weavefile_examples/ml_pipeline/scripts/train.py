"""Train a softmax-regression (multinomial logistic) classifier on the Iris training set.

Usage: python scripts/train.py [--epochs N] [--lr X] [--seed S] --out MODEL_DIR TRAIN_CSV

Writes MODEL_DIR/model.json (weights and biases) and MODEL_DIR/meta.json (classes,
hyper-parameters, final loss). Pure Python, full-batch gradient descent, seeded
initialisation: the same inputs give byte-identical outputs on every run.

The Weavefile gives this rule `resources = { gpu = 1 }`, so Weave exports the id of
the GPU it reserved in CUDA_VISIBLE_DEVICES. A deep-learning framework would put
the model on that device; this tiny model always computes on the CPU, and falls
back to saying so when no GPU is present.
"""

import argparse
import csv
import json
import math
import os
import random
import shutil


def pick_device():
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [i.strip() for i in visible.split(",") if i.strip() and i.strip() != "-1"]
    if not ids:
        return "cpu", "no GPU assigned (CUDA_VISIBLE_DEVICES is unset or empty)"
    if shutil.which("nvidia-smi") is None:
        return "cpu", f"CUDA_VISIBLE_DEVICES={visible} but no GPU found on this machine"
    return f"cuda:{ids[0]}", f"CUDA_VISIBLE_DEVICES={visible}"


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    features = [[float(x) for x in row[:-1]] for row in rows]
    labels = [row[-1] for row in rows]
    return header[:-1], features, labels


def softmax(scores):
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True)
    parser.add_argument("train_csv")
    args = parser.parse_args()

    device, why = pick_device()
    print(f"train: device {device} ({why}); this pure-Python model computes on the CPU")

    feature_names, xs, labels = load(args.train_csv)
    classes = sorted(set(labels))
    ys = [classes.index(label) for label in labels]
    n, d, k = len(xs), len(feature_names), len(classes)

    rng = random.Random(args.seed)
    weights = [[rng.uniform(-0.01, 0.01) for _ in range(d)] for _ in range(k)]
    biases = [0.0] * k

    loss = 0.0
    for epoch in range(1, args.epochs + 1):
        grad_w = [[0.0] * d for _ in range(k)]
        grad_b = [0.0] * k
        loss = 0.0
        for x, y in zip(xs, ys):
            probs = softmax(
                [sum(w * v for w, v in zip(weights[c], x)) + biases[c] for c in range(k)]
            )
            loss -= math.log(max(probs[y], 1e-12))
            for c in range(k):
                err = probs[c] - (1.0 if c == y else 0.0)
                grad_b[c] += err
                for j in range(d):
                    grad_w[c][j] += err * x[j]
        loss /= n
        for c in range(k):
            biases[c] -= args.lr * grad_b[c] / n
            for j in range(d):
                weights[c][j] -= args.lr * grad_w[c][j] / n
        if epoch % 100 == 0 or epoch == args.epochs:
            print(f"train: epoch {epoch:4d}  loss {loss:.4f}")

    correct = 0
    for x, y in zip(xs, ys):
        scores = [sum(w * v for w, v in zip(weights[c], x)) + biases[c] for c in range(k)]
        correct += scores.index(max(scores)) == y

    os.makedirs(args.out, exist_ok=True)
    model = {
        "classes": classes,
        "features": feature_names,
        "weights": [[round(w, 6) for w in row] for row in weights],
        "biases": [round(b, 6) for b in biases],
    }
    meta = {
        "model": "softmax_regression",
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "seed": args.seed,
        "train_rows": n,
        "final_train_loss": round(loss, 6),
        "train_accuracy": round(correct / n, 6),
    }
    for name, payload in (("model.json", model), ("meta.json", meta)):
        with open(os.path.join(args.out, name), "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.write("\n")
    print(f"train: wrote {args.out} (train accuracy {correct}/{n})")


if __name__ == "__main__":
    main()
