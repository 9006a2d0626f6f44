"""Lead routing: `rules/routing.yaml` → pools, owners and statuses, with the lifecycle.

- `model`: the typed rules (RoutingRules, Pool, Rep, Route, Lifecycle), statuses, causes;
- `parse`: YAML → model with every problem located (and the `rules check` hook);
- `allocation`: one entry per allocation (round_robin, weighted, least_loaded, claim)
  and the set-based dealing they share;
- `sql`: the other pure SQL builders of the route stage and of lifecycle commands;
- `stage`: the route stage (`run_routing`) and its `rules test` values;
- `lifecycle`: claim, follow-up status and sale (rep commands between runs);
- `explain`: one person's routing state and the route that placed it (`leadctl explain`);
- `tables`: DDL of the tables routing owns, and the route stage's working tables.
"""
