"""The ``align`` SQL macro: each reference message with the nearest frame of a camera.

A DuckDB table macro, stored in the catalog itself (``STORED_ALIGN_MACRO``, created with the
tables and by migration step 3, and refreshed on every write open), so a plain DuckDB that
opens ``catalog.duckdb`` has it too; and created as a TEMP macro on every drivecat connection
(``catalog.db`` calls ``register_macros``), so every connection has this drivecat's
definition whatever the file holds. Times are in the frames' time base: a message's
capture time where it has one, else its ``log_time_ns``; a capture time of 0 counts as none.
"""

from __future__ import annotations

import duckdb

ALIGN_BODY = """
WITH ref AS (
    SELECT drive_id, coalesce(nullif(capture_ns, 0), log_time_ns) AS reference_time_ns
    FROM sensor_index WHERE topic = reference_topic
    UNION ALL
    SELECT drive_id, coalesce(nullif(capture_ns, 0), log_time_ns)
    FROM frames WHERE topic = reference_topic
), cam AS (
    SELECT drive_id, coalesce(nullif(capture_ns, 0), log_time_ns) AS t_ns,
        min(frame_idx) AS frame_idx
    FROM frames WHERE topic = camera_topic GROUP BY ALL
), sides AS (
    SELECT r.drive_id, r.reference_time_ns,
        b.frame_idx AS b_idx, b.t_ns AS b_ns, a.frame_idx AS a_idx, a.t_ns AS a_ns
    FROM ref r
    ASOF LEFT JOIN cam b ON r.drive_id = b.drive_id AND r.reference_time_ns >= b.t_ns
    ASOF LEFT JOIN cam a ON r.drive_id = a.drive_id AND r.reference_time_ns <= a.t_ns
), nearest AS (
    SELECT drive_id, reference_time_ns,
        CASE WHEN a_ns IS NULL OR reference_time_ns - b_ns <= a_ns - reference_time_ns
            THEN b_idx ELSE a_idx END AS frame_idx,
        CASE WHEN a_ns IS NULL OR reference_time_ns - b_ns <= a_ns - reference_time_ns
            THEN b_ns ELSE a_ns END AS frame_time_ns
    FROM sides
), judged AS (
    SELECT *, tolerance_ms IS NULL
        OR abs(frame_time_ns - reference_time_ns) <= tolerance_ms * 1e6 AS within
    FROM nearest
)
SELECT drive_id, reference_time_ns,
    CASE WHEN within THEN frame_idx END AS frame_idx,
    CASE WHEN within THEN frame_time_ns END AS frame_time_ns,
    CASE WHEN within THEN frame_time_ns - reference_time_ns END AS dt_ns
FROM judged
ORDER BY drive_id, reference_time_ns
"""
"""``align(reference_topic, camera_topic, tolerance_ms)``: one row per reference message.

Reference messages are the ``sensor_index`` rows (lidar sweeps, images) and the ``frames``
rows (another camera) of ``reference_topic``, every drive; ``reference_time_ns`` is their
capture time, else log time. ``frame_idx``/``frame_time_ns`` name the frame of
``camera_topic`` in the same drive whose time (same time base) is nearest, on either side;
a tie goes to the earlier frame, and frames sharing one time count as the lowest
``frame_idx``. ``dt_ns = frame_time_ns - reference_time_ns``. When ``|dt_ns|`` is over
``tolerance_ms`` milliseconds (or the drive has no such camera), the three frame columns are
NULL and the reference row stays. A NULL tolerance means no limit.
"""


ALIGN_SIGNATURE = "align(reference_topic, camera_topic, tolerance_ms) AS TABLE"
ALIGN_MACRO = f"CREATE OR REPLACE TEMP MACRO {ALIGN_SIGNATURE}{ALIGN_BODY}"
#: The same macro kept in the catalog file: it refers to the tables by unqualified name,
#: so it works where the catalog is the default database (``duckdb catalog.duckdb``).
STORED_ALIGN_MACRO = f"CREATE OR REPLACE MACRO {ALIGN_SIGNATURE}{ALIGN_BODY}"


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``align`` table macro on this connection (a TEMP macro: works read-only)."""
    con.execute(ALIGN_MACRO)
