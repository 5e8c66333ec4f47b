"""The heavy mix of OpenLineage events, built with openlineage-python's own classes.

What a busy Airflow or Spark deployment sends, about 10 KB an event:
schemas of 3 to 20 fields with descriptions, column lineage (with
transformations) on a third of the outputs, a parent run, the job's SQL, a
nominal time, output statistics. START + COMPLETE pairs of a thousand jobs
over five thousand datasets, seeded. Serialised by the client's `Serde`, as
its transports do.

`generate(path, events)` writes NDJSON, like `bench_ingest.generate` does
for the light mix.
"""

from __future__ import annotations

import functools
import random
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    OutputDatasetFacet,
    column_lineage_dataset,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.serde import Serde

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/1.14.0"
TYPES = ("INTEGER", "BIGINT", "VARCHAR", "TIMESTAMP", "BOOLEAN", "NUMERIC(18,2)", "DATE", "JSONB")
NAMESPACES = ("postgres://warehouse.internal:5432", "s3://lake-bucket", "bigquery")
WORDS: tuple[str, ...] = ("customer", "order", "line", "item", "amount", "currency", "region")
WORDS += ("created", "updated", "status", "source", "account", "invoice", "product", "price")


class HeavyWorld:
    """The jobs and datasets of the heavy mix; `pair(n)` is the START and COMPLETE of run n."""

    def __init__(self, seed: int = 7, datasets: int = 5000, jobs: int = 1000) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.datasets = [
            (NAMESPACES[i % len(NAMESPACES)], f"analytics.schema_{i % 40}.table_{i}")
            for i in range(datasets)
        ]
        self.fields = []
        for _ in range(datasets):
            names = [
                f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{j}" for j in range(rng.randint(3, 20))
            ]
            self.fields.append(
                [
                    (name, rng.choice(TYPES), f"The {name.split('_')[0]}." if j % 2 else None)
                    for j, name in enumerate(names)
                ]
            )
        self.jobs = []
        for j in range(jobs):
            picked = rng.sample(range(datasets), rng.randint(3, 7))
            cut = rng.randint(1, min(4, len(picked) - 1))
            self.jobs.append((f"dag_{j // 10}.task_{j}", picked[:cut], picked[cut:]))
        self.start = datetime(2024, 6, 1, tzinfo=UTC)

    @functools.cache  # noqa: B019 (one world a run)
    def _schema(self, i: int) -> schema_dataset.SchemaDatasetFacet:
        return schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=d)
                for n, t, d in self.fields[i]
            ],
            producer=PRODUCER,
        )

    def _column_lineage(
        self, output: int, inputs: list[int]
    ) -> column_lineage_dataset.ColumnLineageDatasetFacet:
        fields = {}
        for name, _, _ in self.fields[output]:
            sources = []
            for i in inputs[:1]:
                source_field = self.fields[i][zlib.crc32(name.encode()) % len(self.fields[i])][0]
                namespace, dataset = self.datasets[i]
                sources.append(
                    column_lineage_dataset.InputField(
                        namespace=namespace,
                        name=dataset,
                        field=source_field,
                        transformations=[
                            column_lineage_dataset.Transformation(
                                type="DIRECT",
                                subtype="TRANSFORMATION",
                                description="",
                                masking=False,
                            )
                        ],
                    )
                )
            fields[name] = column_lineage_dataset.Fields(inputFields=sources)
        return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)

    def pair(self, n: int) -> list[RunEvent]:
        rng = self.rng
        job_index = rng.randrange(len(self.jobs))
        job_name, inputs, outputs = self.jobs[job_index]
        run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        dag_run = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        when = self.start + timedelta(seconds=n * 7)
        columns = ", ".join(name for name, _, _ in self.fields[outputs[0]])
        sources = " JOIN ".join(self.datasets[i][1] for i in inputs)
        job = Job(
            namespace="airflow-prod",
            name=job_name,
            facets={
                "sql": sql_job.SQLJobFacet(
                    query=f"INSERT INTO {self.datasets[outputs[0]][1]} SELECT {columns} "
                    f"FROM {sources} WHERE updated_at >= '{{{{ ds }}}}'",
                    producer=PRODUCER,
                )
            },
        )
        run_facets = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=dag_run),
                job=parent_run.Job(namespace="airflow-prod", name=job_name.split(".")[0]),
                producer=PRODUCER,
            ),
            "nominalTime": nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=when.isoformat(),
                nominalEndTime=(when + timedelta(hours=1)).isoformat(),
                producer=PRODUCER,
            ),
        }
        events = []
        for state, offset in ((RunState.START, 0), (RunState.COMPLETE, 45)):
            complete = state == RunState.COMPLETE
            outs = []
            for o in outputs:
                facets: dict = {"schema": self._schema(o)}
                if o % 3 == 0:
                    facets["columnLineage"] = self._column_lineage(o, inputs)
                out_facets: dict[str, OutputDatasetFacet] = {}
                if complete:
                    out_facets["outputStatistics"] = (
                        output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                            rowCount=rng.randint(1, 10**7),
                            size=rng.randint(1, 10**10),
                            producer=PRODUCER,
                        )
                    )
                namespace, name = self.datasets[o]
                outs.append(
                    OutputDataset(
                        namespace=namespace, name=name, facets=facets, outputFacets=out_facets
                    )
                )
            ins = [
                InputDataset(
                    namespace=self.datasets[i][0],
                    name=self.datasets[i][1],
                    facets={"schema": self._schema(i)},
                )
                for i in inputs
            ]
            events.append(
                RunEvent(
                    eventType=state,
                    eventTime=(when + timedelta(seconds=offset)).isoformat(),
                    run=Run(runId=run_id, facets=run_facets),
                    job=job,
                    producer=PRODUCER,
                    inputs=ins,
                    outputs=outs,
                )
            )
        return events


def generate(path: Path, events: int, seed: int = 7) -> int:
    """Write `events` heavy events (START/COMPLETE pairs) as NDJSON; returns how many."""
    world = HeavyWorld(seed)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for n in range(events // 2):
            for event in world.pair(n):
                out.write(Serde.to_json(event) + "\n")
                written += 1
    return written
