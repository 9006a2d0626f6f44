"""The Spark engine: runs the stages' builder SQL on Apache Spark (`pip install leadctl[spark]`).

`translate` turns each DuckDB statement into a Spark action (pure, testable
without Spark); `executor.SparkWorkspace` runs those actions with the same
methods stages call on a DuckDB `Workspace`; `pipeline.run_spark` chains the
stages and writes the result tables as Parquet.
"""
