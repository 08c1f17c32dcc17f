"""Raw-data generator: a realistic raw layer (students, courses, instructors, enrollments) with seeded,
counted defects, and a manifest of the row counts the pipeline must reproduce.

    from enrollment_platform.generator import generate_raw_layer
    manifest = generate_raw_layer("raw", enrollments=10_000, seed=7)
"""

from .defects import RATES
from .layer import generate_raw_layer, sizes

__all__ = ["RATES", "generate_raw_layer", "sizes"]
