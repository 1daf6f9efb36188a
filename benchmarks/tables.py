"""mlpcli on tables with text columns and missing cells, against scikit-learn's pipeline.

    python benchmarks/tables.py [--seeds 5] [--only penguins houses]

For each seed, mlpcli trains the shipped config (configs/penguins.yaml, configs/houses.yaml:
no `features` list, the column kinds inferred) and scikit-learn trains
make_pipeline(ColumnTransformer([SimpleImputer + StandardScaler on the numeric columns,
SimpleImputer + OneHotEncoder on the categorical ones]), MLPClassifier / MLPRegressor) with the
same hidden layers, optimizer (Adam), learning rate, batch size and epoch budget, on exactly
the same train / test rows (the rows of mlpcli's split, found by their line numbers), with the
same columns (the ID that mlpcli ignores is left out for both). Each early-stops on its own
held-out rows: mlpcli on its val part, scikit-learn on 15% of its training rows (its
`early_stopping=True`), so each has the train + val rows mlpcli has. Prints a Markdown table:
test accuracy / R² mean ± std over seeds, and the difference. Needs the bench extra.
"""

import argparse
import csv
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from bench import cpu_model  # benchmarks/bench.py: this script's folder is on sys.path

from mlpcli.config import RunConfig, load_config
from mlpcli.data import load_dataset
from mlpcli.data.files import MISSING_TOKENS
from mlpcli.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"penguins": ("penguins.yaml", "accuracy"), "houses": ("houses.yaml", "r2")}


def read_rows(path: Path) -> tuple[list[str], dict[int, list[str]]]:
    """The header and each data row by its line number (as mlpcli's parts record them)."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = {}
        for row in reader:
            rows[reader.line_num] = row
    return header, rows


def peer_arrays(header, rows, lines, columns, target):
    """Numeric columns as floats (NaN missing), categorical ones as text (None missing)."""
    picked = [rows[int(line)] for line in lines]
    out = []
    for c in columns:
        j = header.index(c["name"])
        cells = [r[j].strip() for r in picked]
        if c["kind"] == "numeric":
            out.append(
                np.array(
                    [np.nan if v.lower() in MISSING_TOKENS else float(v) for v in cells],
                    dtype=object,
                )
            )
        else:
            out.append(
                np.array([None if v.lower() in MISSING_TOKENS else v for v in cells], dtype=object)
            )
    y = [r[header.index(target)] for r in picked]
    return np.stack(out, axis=1), y


def sklearn_score(cfg: RunConfig, data, header, rows, task: str, seed: int) -> float:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = [c for c in data.preprocess["columns"] if c["kind"] != "ignore"]
    numeric = [i for i, c in enumerate(columns) if c["kind"] == "numeric"]
    categorical = [i for i, c in enumerate(columns) if c["kind"] == "categorical"]
    strategy = "median" if cfg.data.missing == "median" else "mean"
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy=strategy), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(missing_values=None, strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    fit_lines = np.concatenate([data.parts["train"].lines, data.parts["val"].lines])
    X_fit, y_fit = peer_arrays(header, rows, fit_lines, columns, data.target_name)
    X_test, y_test = peer_arrays(header, rows, data.parts["test"].lines, columns, data.target_name)
    X_fit = np.where(X_fit == None, None, X_fit)  # noqa: E711 - object arrays
    kwargs = dict(
        hidden_layer_sizes=tuple(layer.units for layer in cfg.model.hidden),
        activation="relu",
        solver="adam",
        learning_rate_init=cfg.optimizer.lr,
        batch_size=cfg.training.batch_size,
        max_iter=cfg.training.epochs,
        alpha=0.0,
        early_stopping=True,
        validation_fraction=len(data.parts["val"]) / len(fit_lines),
        n_iter_no_change=cfg.training.early_stopping.patience
        if cfg.training.early_stopping
        else 10,
        random_state=seed,
    )
    if task == "accuracy":
        model = make_pipeline(pre, MLPClassifier(**kwargs))
        model.fit(X_fit, y_fit)
        return float(accuracy_score(y_test, model.predict(X_test)))
    model = make_pipeline(pre, MLPRegressor(**kwargs))
    model.fit(X_fit, np.array(y_fit, dtype=float))
    return float(r2_score(np.array(y_test, dtype=float), model.predict(X_test)))


def compare(name: str, seeds: int) -> tuple[list[float], list[float], float, float]:
    config, metric = TABLES[name]
    ours, peers, t_ours, t_peer = [], [], 0.0, 0.0
    for seed in range(seeds):
        cfg = load_config(ROOT / "configs" / config, [f"seed={seed}"])
        start = time.perf_counter()
        data = load_dataset(cfg.data, cfg.seed, dtype=cfg.training.dtype)
        result = Trainer(cfg, data).run()
        t_ours += time.perf_counter() - start
        ours.append(result.final["test"][metric])
        header, rows = read_rows(Path(cfg.data.source or ""))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
            peers.append(sklearn_score(cfg, data, header, rows, metric, seed))
        t_peer += time.perf_counter() - start
        print(
            f"  {name} seed {seed}: mlpcli {ours[-1]:.4f}  scikit-learn {peers[-1]:.4f}",
            file=sys.stderr,
        )
    return ours, peers, t_ours, t_peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=list(TABLES), default=list(TABLES))
    args = parser.parse_args()
    import sklearn

    print(f"CPU: {cpu_model()}; scikit-learn {sklearn.__version__}; seeds 0..{args.seeds - 1}\n")
    print("| table | metric | mlpcli | scikit-learn pipeline | mlpcli - sklearn | time |")
    print("|---|---|---|---|---|---|")
    for name in args.only:
        ours, peers, t_ours, t_peer = compare(name, args.seeds)
        metric = TABLES[name][1]
        diff = statistics.mean(ours) - statistics.mean(peers)
        mean, std = statistics.mean, statistics.stdev
        print(
            f"| {name} | test {metric} | {mean(ours):.4f} ± {std(ours):.4f} "
            f"| {mean(peers):.4f} ± {std(peers):.4f} | {diff:+.4f} "
            f"| mlpcli {t_ours:.1f} s, sklearn {t_peer:.1f} s |"
        )


if __name__ == "__main__":
    main()
