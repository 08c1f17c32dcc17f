"""AWS Glue entry point: the Spark curate step (`enrollment_platform.transforms.spark.glue`): merge the batch's
redacted rows into the curated state (the dimensions' and the fact's source) and reconcile the batch's counts.

Runnable standalone: python glue_scripts/curate.py --lake_uri LAKE --dataset DATASET --batch BATCH
"""

from enrollment_platform.transforms.spark.glue import main

if __name__ == "__main__":
    main("curate")
