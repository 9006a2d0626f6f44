"""Tags (`rules/tags.yaml`): model, parse, one class per kind, the shared feature pass,
the tag stage (run, dry-run diff, history), its tables and its explanation.

Nothing is imported here, so importing one module of the package stays cheap.
"""
