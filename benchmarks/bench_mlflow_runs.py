"""Scanning an MLflow experiment of 10,000 runs: first scan, unchanged re-scan, one new run.

`python -m benchmarks mlflow_runs [--runs N]`. The store is SQLite, written
by MLflow's client: template runs (params, metrics, tags, half of them with a
logged training dataset; one registered model), then copied row for row in
its own tables up to N runs (MLflow's client writes a run in several
transactions: 10,000 would take minutes). The baseline is MLflow's own
`search_runs` over the same store, every run in one call (what any reader
of the runs pays at least). Figures, never asserts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

from benchmarks.common import report, timed

TEMPLATES = 20


def build(root: Path, runs: int) -> tuple[Path, str]:
    """A store of `runs` runs in one experiment; its path and the experiment id."""
    import mlflow
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag

    db = root / "mlflow.db"
    uri = f"sqlite:///{db}"
    client = mlflow.MlflowClient(uri, uri)
    experiment = client.create_experiment("bench", (root / "artifacts").as_uri())
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0]})
    first = ""
    for i in range(TEMPLATES):
        run_id = client.create_run(experiment, start_time=1_700_000_000_000 + i).info.run_id
        first = first or run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, 0.5 + i / 100, 1_700_000_000_000, 0) for k in ("auc", "f1", "loss")],
            params=[Param(k, str(i)) for k in ("alpha", "depth", "lr", "seed", "n")],
            tags=[RunTag("team", "growth")],
        )
        if i % 2 == 0:
            ds = from_pandas(frame, name=f"train-{i}")
            tags = [InputTag("mlflow.data.context", "training")]
            client.log_inputs(run_id, datasets=[DatasetInput(ds._to_mlflow_entity(), tags)])
        client.set_terminated(run_id, "FINISHED", end_time=1_700_000_000_500 + i)
    client.create_registered_model("bench-model")
    client.create_model_version("bench-model", f"runs:/{first}/model", run_id=first)
    with sqlite3.connect(db) as conn:
        _copy(conn, runs)
    return db, str(experiment)


def _copy(conn: sqlite3.Connection, runs: int) -> None:
    """Copy the template runs (and their params, tags, metrics, inputs) up to `runs` runs."""
    templates = [r[0] for r in conn.execute("SELECT run_uuid FROM runs")]
    columns = {t: [c[1] for c in conn.execute(f"PRAGMA table_info({t})")] for t in TABLES}
    rows = {
        t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in (*TABLES, "inputs", "input_tags")
    }
    input_columns = [c[1] for c in conn.execute("PRAGMA table_info(inputs)")]
    tag_columns = [c[1] for c in conn.execute("PRAGMA table_info(input_tags)")]
    copies = (runs - len(templates)) // len(templates)
    for n in range(1, copies + 1):
        new = {old: uuid.uuid4().hex for old in templates}
        for table, cols in columns.items():
            key = cols.index("run_uuid")
            out = []
            for row in rows[table]:
                values = list(row)
                values[key] = new[values[key]]
                if table == "runs":
                    if "run_id" in cols:  # older stores kept it twice
                        values[cols.index("run_id")] = values[key]
                    values[cols.index("name")] = f"{values[cols.index('name')]}-{n}"
                    for name in ("start_time", "end_time"):
                        values[cols.index(name)] += n * 1000
                out.append(values)
            marks = ", ".join("?" * len(cols))
            conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", out)
        inputs, tags = [], []
        renamed: dict[str, str] = {}
        for row in rows["inputs"]:
            values = dict(zip(input_columns, row, strict=True))
            if values["destination_id"] not in new:
                continue
            renamed[values["input_uuid"]] = uuid.uuid4().hex
            values["input_uuid"] = renamed[values["input_uuid"]]
            values["destination_id"] = new[values["destination_id"]]
            inputs.append(list(values.values()))
        for row in rows["input_tags"]:
            values = dict(zip(tag_columns, row, strict=True))
            if values["input_uuid"] in renamed:
                values["input_uuid"] = renamed[values["input_uuid"]]
                tags.append(list(values.values()))
        conn.executemany(
            f"INSERT INTO inputs VALUES ({', '.join('?' * len(input_columns))})", inputs
        )
        conn.executemany(
            f"INSERT INTO input_tags VALUES ({', '.join('?' * len(tag_columns))})", tags
        )


TABLES = ("runs", "params", "tags", "latest_metrics", "metrics")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks mlflow_runs")
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    import mlflow
    from mlflow.entities import ViewType

    from catalog.db import Store
    from connectors.scanning import run_scan

    with tempfile.TemporaryDirectory(prefix="steward-bench-mlflow-") as tmp:
        root = Path(tmp)
        built, (db, experiment) = timed(lambda: build(root, args.runs))
        print(f"store: {args.runs:,} runs written in {built:.1f} s", flush=True)
        uri = f"sqlite:///{db}"
        client = mlflow.MlflowClient(uri, uri)
        client.search_runs([experiment], max_results=10)  # MLflow's store opened once before
        baseline, found = timed(
            lambda: client.search_runs([experiment], max_results=50_000, run_view_type=ViewType.ALL)
        )
        report(f"MLflow search_runs, {len(found):,} runs (baseline)", baseline)
        store = Store(f"sqlite:///{root / 'catalog.db'}")
        url = f"mlflow+sqlite://{db}"

        def scan() -> Any:
            return run_scan(lambda: store, url)

        first, outcome = timed(scan)
        report(f"steward first scan ({outcome.plan.runs:,} runs written)", first, baseline)
        again, outcome = timed(scan)
        report(f"steward unchanged re-scan ({outcome.plan.runs} written)", again, baseline)
        extra = client.create_run(experiment).info.run_id
        client.set_terminated(extra, "FINISHED")
        one, outcome = timed(scan)
        report(f"steward re-scan after one new run ({outcome.plan.runs} written)", one, baseline)
        store.dispose()
