"""Total units and revenue per product for one region's sales CSV.

Usage: python scripts/totals.py [--decimals N] SALES_CSV > TOTALS_CSV
"""

import argparse
import csv
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decimals", type=int, default=2)
    parser.add_argument("sales_csv")
    args = parser.parse_args()

    region = os.path.splitext(os.path.basename(args.sales_csv))[0]
    units, revenue = {}, {}
    with open(args.sales_csv, newline="") as f:
        for row in csv.DictReader(f):
            product = row["product"]
            units[product] = units.get(product, 0) + int(row["units"])
            revenue[product] = revenue.get(product, 0.0) + int(row["units"]) * float(
                row["unit_price"]
            )

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["region", "product", "units", "revenue"])
    for product in sorted(units):
        out.writerow([region, product, units[product], f"{revenue[product]:.{args.decimals}f}"])


if __name__ == "__main__":
    main()
