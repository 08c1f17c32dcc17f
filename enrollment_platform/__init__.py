"""enrollment-platform: a Dagster asset-based data platform for student-enrollment data."""

__version__ = "0.1.0"
