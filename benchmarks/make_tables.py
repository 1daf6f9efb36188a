"""Write the two synthetic tables shipped in datasets/ (deterministic: seed 0).

- penguins.csv: modelled on the Palmer Penguins data (Gorman, Williams and Fraser 2014):
  344 rows, the species as a text target in the first column, an ID column, the island and
  sex as categories, four measurements drawn per species and sex from that dataset's
  published means and (1.8x widened) standard deviations, NA cells where the real data has
  them (two birds without measurements, eleven without a recorded sex). Synthetic: not the
  real birds.
- houses.csv: a regression table, 1500 rows: a price from area, rooms, age, a
  neighbourhood (categorical) and a condition (categorical, some missing), with about 5% of
  area and age cells missing.

    python benchmarks/make_tables.py    # rewrites datasets/penguins.csv and houses.csv
"""

import csv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# species: (rows, islands with weights, (mean, sd) of bill length, bill depth, flipper, mass)
SPECIES = {
    "Adelie": (
        152,
        {"Biscoe": 44, "Dream": 56, "Torgersen": 52},
        [(38.8, 2.66), (18.3, 1.22), (190.0, 6.5), (3700.0, 458.0)],
    ),
    "Chinstrap": (68, {"Dream": 68}, [(48.8, 3.34), (18.4, 1.14), (195.8, 7.1), (3733.0, 384.0)]),
    "Gentoo": (124, {"Biscoe": 124}, [(47.5, 3.08), (15.0, 0.98), (217.2, 6.5), (5076.0, 504.0)]),
}
# The published standard deviations, widened: the real species barely overlap (every peer
# scores ~1.0 on them); wider spreads leave a few birds that a model can get wrong.
SPREAD = 1.8
MEASURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def penguins(rng: np.random.Generator) -> list[list[str]]:
    rows = []
    for species, (n, islands, stats) in SPECIES.items():
        names = [i for i, k in islands.items() for _ in range(k)]
        island = rng.permutation(names)[:n]
        sex = rng.permutation(["male", "female"] * (n // 2 + 1))[:n]
        shared = rng.normal(size=n)  # body size: the measurements go together
        for i in range(n):
            shift = 0.8 if sex[i] == "male" else -0.8  # males are larger, by about 1.6 sd
            values = []
            for m, (mean, sd) in enumerate(stats):
                z = 0.6 * shift + 0.5 * shared[i] + 0.6 * rng.normal()
                value = mean + SPREAD * sd * z
                values.append(
                    f"{value:.1f}"
                    if m < 2
                    else f"{round(value / (25 if m == 3 else 1)) * (25 if m == 3 else 1):.0f}"
                )
            year = str(2007 + int(rng.integers(0, 3)))
            rows.append([species, island[i], *values, sex[i], year])
    order = rng.permutation(len(rows))
    rows = [rows[k] for k in order]
    for k in rng.choice(len(rows), 2, replace=False):  # two birds without measurements
        rows[k][2:6] = ["NA"] * 4
        rows[k][6] = "NA"
    for k in rng.choice(len(rows), 9, replace=False):  # more without a recorded sex
        rows[k][6] = "NA"
    header = ["species", "id", "island", *MEASURES, "sex", "year"]
    return [header] + [[r[0], f"PAL{k + 1:04d}", *r[1:]] for k, r in enumerate(rows)]


NEIGHBOURHOODS = {
    "Centre": 1.6,
    "Riverside": 1.3,
    "Hillside": 1.1,
    "Old Town": 1.0,
    "Outskirts": 0.75,
}
CONDITIONS = {"poor": -25.0, "fair": 0.0, "good": 20.0}


def houses(rng: np.random.Generator, n: int = 1500) -> list[list[str]]:
    header = ["area_m2", "rooms", "age_years", "neighbourhood", "condition", "price_k"]
    rows = [header]
    hoods = list(NEIGHBOURHOODS)
    for _ in range(n):
        area = float(np.clip(rng.lognormal(np.log(90), 0.35), 25, 400))
        rooms = int(np.clip(round(area / 28 + rng.normal(0, 0.7)), 1, 12))
        age = float(rng.uniform(0, 100))
        hood = hoods[int(rng.integers(0, len(hoods)))]
        condition = str(rng.choice(list(CONDITIONS), p=[0.2, 0.5, 0.3]))
        price = NEIGHBOURHOODS[hood] * (2.2 * area + 8 * rooms) * (1 - 0.003 * age)
        price += CONDITIONS[condition] + 15 * np.sin(age / 15) + rng.normal(0, 12)
        cells = [f"{area:.1f}", str(rooms), f"{age:.0f}", hood, condition, f"{price:.1f}"]
        if rng.random() < 0.05:
            cells[0] = ""
        if rng.random() < 0.05:
            cells[2] = "NA"
        if rng.random() < 0.04:
            cells[4] = ""
        rows.append(cells)
    return rows


def main() -> None:
    for name, rows in (
        ("penguins", penguins(np.random.default_rng(0))),
        ("houses", houses(np.random.default_rng(1))),
    ):
        path = ROOT / "datasets" / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
        print(f"{path}: {len(rows) - 1} rows")


if __name__ == "__main__":
    main()
