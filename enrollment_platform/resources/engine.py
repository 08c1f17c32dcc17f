"""The in-process job engine: DuckDB connections with bounded memory and spilling to disk."""

from pathlib import Path

import dagster as dg
import duckdb


class DuckDBEngine(dg.ConfigurableResource):
    """Opens in-memory DuckDB connections that read and write the lake's Parquet files."""

    memory_limit: str = "2GB"  # bounds the engine's share of a run's memory; bigger intermediates spill to disk
    threads: int = 0  # 0: DuckDB's default (one per core)
    temp_directory: str = ""

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{self.memory_limit}'")
        con.execute("SET preserve_insertion_order = true")
        if self.threads:
            con.execute(f"SET threads = {int(self.threads)}")
        if self.temp_directory:
            Path(self.temp_directory).mkdir(parents=True, exist_ok=True)
            con.execute(f"SET temp_directory = '{self.temp_directory}'")
        return con
