"""Lossless multi-format ingest (CSV of any common delimiter/encoding, Parquet)."""

from leadctl.ingest.load import (
    IngestOptions,
    IngestSummary,
    NoDataFiles,
    check_zone,
    ingest_paths,
    options_from_rules,
)

__all__ = ["IngestOptions", "IngestSummary", "NoDataFiles", "check_zone", "ingest_paths",
           "options_from_rules"]
