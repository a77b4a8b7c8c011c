"""The `orders-pipeline` command line: demo, simulator, backfill, status, order lookup and queries."""
