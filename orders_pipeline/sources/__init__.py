"""Order sources behind one seam: each API yields the shared raw tables for a UTC window (no Dagster here)."""
