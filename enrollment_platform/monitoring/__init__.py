"""Monitoring: the DQ trend chart, warehouse performance metrics with regression warnings, and run status.

- `dq_trend`: pass rate per rule over the last runs, from the `dq_results` rows, as a PNG in the lake;
- `warehouse_metrics` (with `history` and `regressions`): table sizes and row counts, the slowest statements and
  the load time of each warehouse table per run, kept in the lake, and the loads or statements that became slower
  than their history;
- `status`: what `enrollment-platform status` reports — the last runs, failing checks, raw files still pending.
"""
