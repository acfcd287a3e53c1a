"""Combine per-region totals into a Markdown report.

Usage: python scripts/report.py TOTALS_CSV... > REPORT_MD
"""

import csv
import sys


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    regions = {}
    for path in sys.argv[1:]:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                regions.setdefault(row["region"], []).append(row)

    lines = [
        "# Sales report",
        "",
        "| region | units | revenue | best seller |",
        "|---|---:|---:|---|",
    ]
    grand_units, grand_revenue = 0, 0.0
    for region in sorted(regions):
        rows = regions[region]
        units = sum(int(r["units"]) for r in rows)
        revenue = sum(float(r["revenue"]) for r in rows)
        best = max(rows, key=lambda r: (float(r["revenue"]), r["product"]))["product"]
        grand_units += units
        grand_revenue += revenue
        lines.append(f"| {region} | {units} | {revenue:.2f} | {best} |")
    lines.append(f"| **all** | **{grand_units}** | **{grand_revenue:.2f}** | |")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
