"""AWS Glue entry point: the Spark dedup step (`enrollment_platform.transforms.spark.glue`).

Runnable standalone: python glue_scripts/dedup.py --lake_uri LAKE --dataset DATASET --batch BATCH [--input ...]
"""

from enrollment_platform.transforms.spark.glue import main

if __name__ == "__main__":
    main("dedup")
