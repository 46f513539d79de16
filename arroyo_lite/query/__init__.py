"""DuckDB over the live tables: snapshot queries, views, continuous plans, ``arroyo_status``."""
