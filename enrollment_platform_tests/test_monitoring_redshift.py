"""Warehouse metrics on Redshift, with the recording connection of the Redshift warehouse tests: the exact statements
(SVV_TABLE_INFO for sizes, SYS_QUERY_HISTORY for the slowest statements) and how their rows are read."""

from __future__ import annotations

from enrollment_platform.resources.warehouse.redshift import text_id
from enrollment_platform_tests.test_warehouse_redshift import RecordingConnection, redshift

LIST_TABLES = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_load_state' ORDER BY 1"
)
COUNTS = (
    "SELECT 'course_dim', count(*) FROM \"course_dim\" UNION ALL SELECT 'student_dim', count(*) FROM \"student_dim\""
)
SIZES = 'SELECT TRIM("table"), size FROM svv_table_info WHERE "schema" = current_schema()'
SLOWEST = (
    "SELECT TRIM(query_text) AS query, COUNT(*) AS calls, "
    "AVG(elapsed_time::DOUBLE PRECISION) / 1000 AS mean_ms, SUM(elapsed_time::DOUBLE PRECISION) / 1000 AS total_ms "
    "FROM sys_query_history "
    "WHERE TRIM(database_name) = current_database() AND status = 'success' "
    "AND start_time >= DATEADD(hour, -24, GETDATE()) "
    "GROUP BY TRIM(query_text) ORDER BY mean_ms DESC LIMIT %s"
)
MERGE = 'MERGE INTO "student_dim" USING "student_dim__changes" c ON "student_dim"."student_id" = c."student_id"'


def test_table_stats_count_rows_and_read_sizes_from_svv_table_info(tmp_path):
    connection = RecordingConnection(
        {
            LIST_TABLES: [("course_dim",), ("student_dim",)],
            "SELECT 'course_dim', count(*)": [("course_dim", 40), ("student_dim", 2500)],
            SIZES: [("student_dim", 12), ("course_dim", 5)],
        }
    )
    stats = redshift(tmp_path, connection).table_stats()
    assert [(t.table, t.rows, t.size_bytes) for t in stats] == [
        ("course_dim", 40, 5 * 1024 * 1024),
        ("student_dim", 2500, 12 * 1024 * 1024),
    ]
    assert connection.log == [LIST_TABLES, "ROLLBACK", COUNTS, "ROLLBACK", SIZES, "ROLLBACK"]


def test_slow_queries_read_sys_query_history(tmp_path):
    connection = RecordingConnection(
        {"SELECT TRIM(query_text)": [(MERGE, 3, 812.5, 2437.5), ("SELECT 1", 9, 1.0, 9.0)]}
    )
    log = redshift(tmp_path, connection).slow_queries(limit=5)
    assert connection.log == [(SLOWEST, [5]), "ROLLBACK"]
    assert (log.source, log.available, log.cumulative) == ("SYS_QUERY_HISTORY", True, False)
    assert "last 24 hours" in log.note
    assert [(q.query_id, q.query, q.calls, q.mean_ms, q.total_ms) for q in log.queries] == [
        (text_id(MERGE), MERGE, 3, 812.5, 2437.5),
        (text_id("SELECT 1"), "SELECT 1", 9, 1.0, 9.0),
    ]
    assert text_id(MERGE) != text_id("SELECT 1") and text_id(MERGE) == text_id(MERGE)
