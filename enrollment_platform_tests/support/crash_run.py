"""Run the pipeline in this process and SIGKILL it at a named point (used by the crash tests).

python -m enrollment_platform_tests.support.crash_run HOME RAW POINT
"""

import os
import signal
import sys

from enrollment_platform.resources import warehouse
from enrollment_platform.runner import run_pipeline
from enrollment_platform_tests.conftest import local_settings


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_before_rename(target: str):
    """os.replace that dies instead of publishing `target`: the temporary file is complete, the rename never happens."""
    original = os.replace

    def replace(source, destination):
        if str(destination).endswith(target):
            die()
        return original(source, destination)

    return replace


def arm(point: str) -> None:
    if point == "during_curated_write":
        import enrollment_platform.resources.lake as lake

        lake.os.replace = kill_before_rename("curated/enrollments/enrollments.parquet")
    elif point == "before_warehouse_load":
        warehouse.DuckDBWarehouse.load_dimension = lambda self, spec, parquet, changes=None: die()
    elif point == "during_warehouse_load":
        original = warehouse.DuckDBWarehouse._add_new_columns

        def add_then_die(con, table):
            original(con, table)
            if table.name == "enrollment_fact":
                con.execute("DELETE FROM enrollment_fact")  # inside the load's transaction: must never be seen
                die()

        warehouse.DuckDBWarehouse._add_new_columns = staticmethod(add_then_die)
    elif point == "after_warehouse_load":
        import enrollment_platform.bookmarks as bookmarks

        bookmarks.commit = lambda *args, **kwargs: die()
    else:
        raise SystemExit(f"unknown crash point {point}")


if __name__ == "__main__":
    home, raw, point = sys.argv[1:4]
    arm(point)
    run_pipeline(local_settings(home, raw))
    raise SystemExit("the run finished without reaching the crash point")
