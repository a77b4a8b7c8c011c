"""The dbt_like_sql runtime: load the SQL models, build them in DuckDB (incrementally), and write the warehouse file."""
