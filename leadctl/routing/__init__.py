"""Lead routing: `rules/routing.yaml` → pools, owners and statuses, with the lifecycle.

- `model`: the typed rules (RoutingRules, Pool, Rep, Route, Lifecycle), statuses, causes;
- `parse`: YAML → model with every problem located (and the `rules check` hook);
- `sql`: the pure SQL builders of the route stage (allocation included) and of the
  lifecycle commands;
- `stage`: the route stage (`run_routing`) and its `rules test` values;
- `lifecycle`: claim, follow-up status and sale (rep commands between runs);
- `explain`: one person's routing state and the route that placed it (`leadctl explain`);
- `tables`: DDL of the tables routing owns, and the route stage's working tables.
"""
