"""Read-only views of the published state: portrait, find, export, report, explain."""
