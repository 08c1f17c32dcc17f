"""The job engine's connections: one database per process and settings, a private one where it must be."""

import duckdb
import pytest

from enrollment_platform.pii.duckdb_functions import PiiEngine
from enrollment_platform.resources.engine import DuckDBEngine, _memory_share


def setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return con.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def test_connections_share_a_database_but_not_their_temp_tables(tmp_path):
    engine = DuckDBEngine(memory_limit="1GB", temp_directory=str(tmp_path / "spill"))
    first, second = engine.connect(), engine.connect()
    first.execute("CREATE TEMP TABLE rejected AS SELECT 1 AS x")
    second.execute("CREATE TEMP TABLE rejected AS SELECT 2 AS x")  # no clash: each has its own
    assert first.execute("SELECT x FROM rejected").fetchone() == (1,)
    assert second.execute("SELECT x FROM rejected").fetchone() == (2,)
    first.close()
    assert second.execute("SELECT x FROM rejected").fetchone() == (2,)  # closing one leaves the others open
    assert setting(second, "preserve_insertion_order") is False
    assert setting(second, "memory_limit") == setting(duckdb.connect(config={"memory_limit": "1GB"}), "memory_limit")
    assert (tmp_path / "spill").is_dir()
    second.close()


def test_own_threads_a_memory_share_or_private_start_a_database_of_their_own():
    engine = DuckDBEngine(memory_limit="2GB")
    shared = engine.connect()
    shared.execute("CREATE TABLE marker AS SELECT 1 AS x")  # visible to every cursor of the shared database
    try:
        assert engine.connect().execute("SELECT count(*) FROM marker").fetchone() == (1,)
        for con in (engine.connect(threads=1), engine.connect(share=2), engine.connect(private=True)):
            with pytest.raises(duckdb.CatalogException):
                con.execute("SELECT * FROM marker")
        assert setting(engine.connect(threads=1), "threads") == 1
        half = duckdb.connect(config={"memory_limit": _memory_share("2GB", 2)})
        assert setting(engine.connect(share=2), "memory_limit") == setting(half, "memory_limit")
    finally:
        shared.execute("DROP TABLE marker")


def test_pii_functions_can_be_defined_on_every_connection_of_a_run():
    engine = PiiEngine(DuckDBEngine())
    for _ in range(2):  # a second definition on a shared database would clash
        con = engine.connect()
        assert con.execute("SELECT pii_redact('call 212-555-0123')").fetchone()[0] == "call [PHONE_NUMBER]"
        con.close()
