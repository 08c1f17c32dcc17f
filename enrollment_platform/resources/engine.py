"""The in-process job engine: DuckDB connections with bounded memory and spilling to disk."""

import os
import re
import threading
from pathlib import Path

import dagster as dg
import duckdb

_SHARED: dict[tuple[str, int, str], duckdb.DuckDBPyConnection] = {}  # the process's databases, by settings
_SHARED_LOCK = threading.Lock()


class DuckDBEngine(dg.ConfigurableResource):
    """Opens in-memory DuckDB connections that read and write the lake's Parquet files."""

    memory_limit: str = "2GB"  # bounds the engine's share of a run's memory; bigger intermediates spill to disk
    threads: int = 0  # 0: DuckDB's default (one per core)
    temp_directory: str = ""

    def connect(self, threads: int = 0, share: int = 1, private: bool = False) -> duckdb.DuckDBPyConnection:
        """A connection; `threads`: its own thread count, `share`: how many such connections run side by side
        (each gets that share of the memory limit, so together they stay within it).

        By default it is a cursor of one database per process and settings: starting a database costs about
        17 ms, some 60 times per run. Its temp tables and views are its own, its memory limit the database's.
        Own threads, a share of the memory or `private` (e.g. for Python UDFs, which a database holds once)
        start a database of its own."""
        if threads or share > 1 or private:
            return self._configured(duckdb.connect(), threads, share)
        return self._shared().cursor()

    def _shared(self) -> duckdb.DuckDBPyConnection:
        """The process's database for these settings, started on first use."""
        settings = (self.memory_limit, self.threads, self.temp_directory)
        with _SHARED_LOCK:
            if settings not in _SHARED:
                _SHARED[settings] = self._configured(duckdb.connect())
            return _SHARED[settings]

    def _configured(self, con: duckdb.DuckDBPyConnection, threads: int = 0, share: int = 1):
        con.execute(f"SET memory_limit = '{_memory_share(self.memory_limit, share)}'")
        con.execute("SET preserve_insertion_order = false")  # lets DuckDB write Parquet row groups in parallel
        if threads or self.threads:
            con.execute(f"SET threads = {int(threads or self.threads)}")
        if self.temp_directory:
            Path(self.temp_directory).mkdir(parents=True, exist_ok=True)
            con.execute(f"SET temp_directory = '{self.temp_directory}'")
        return con

    def workers(self) -> int:
        """How many independent pieces of work (e.g. raw files) to run side by side, each on one thread."""
        return max(1, int(self.threads or os.cpu_count() or 1))


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _memory_share(limit: str, share: int) -> str:
    """`limit` divided by `share` (as bytes); the limit as given when there is nothing to divide or it is not a size
    (DuckDB then says what is wrong with it)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", limit)
    if share <= 1 or not match or match.group(2).upper() not in _UNITS:
        return limit
    return f"{int(float(match.group(1)) * _UNITS[match.group(2).upper()] / share)}B"
