"""The AWS twin of the data catalog: the Glue Data Catalog (boto3 `glue`), tables as a crawler writes them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError
from pydantic import PrivateAttr

from enrollment_platform.resources.catalog.base import Catalog
from enrollment_platform.resources.catalog.model import ABSENT_SINCE, FORMATS, Column, Partition, TableDefinition
from enrollment_platform.settings import SettingsError

PARTITION_BATCH = 100  # partitions per BatchCreatePartition request (the Glue maximum)
_DENIED = {"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"}


class CatalogAccessError(SettingsError):
    """The Glue Data Catalog cannot be used as configured (access denied, no credentials, a refused request)."""


class GlueCatalog(Catalog):
    """Tables in a Glue database; the region comes from `region_name`, else AWS_REGION, else boto3's defaults."""

    region_name: str = ""
    endpoint_url: str = ""
    catalog_id: str = ""  # the account owning the catalog, when it is not the caller's

    _client: Any = PrivateAttr(default=None)
    _database_ready: bool = PrivateAttr(default=False)

    def get_table(self, name: str) -> TableDefinition | None:
        try:
            with self._errors(name):
                found = self._glue().get_table(DatabaseName=self.database, Name=name, **self._ids())
        except ClientError as error:
            if error.response["Error"]["Code"] == "EntityNotFoundException":
                return None
            raise
        return table_from_glue(found["Table"])

    def create_table(self, table: TableDefinition) -> None:
        self._ensure_database()
        with self._errors(table.name):
            self._glue().create_table(DatabaseName=self.database, TableInput=table_input(table), **self._ids())

    def update_table(self, table: TableDefinition) -> None:
        """UpdateTable replaces the whole definition; Glue keeps the previous one as a table version."""
        with self._errors(table.name):
            self._glue().update_table(DatabaseName=self.database, TableInput=table_input(table), **self._ids())

    def partition_values(self, name: str) -> set[tuple[str, ...]]:
        pages = (
            self._glue()
            .get_paginator("get_partitions")
            .paginate(DatabaseName=self.database, TableName=name, **self._ids())
        )
        with self._errors(name):
            return {tuple(p["Values"]) for page in pages for p in page["Partitions"]}

    def add_partitions(self, table: TableDefinition, partitions: Sequence[Partition]) -> None:
        """BatchCreatePartition in chunks; a partition another writer created meanwhile is not an error."""
        for start in range(0, len(partitions), PARTITION_BATCH):
            chunk = partitions[start : start + PARTITION_BATCH]
            inputs = [
                {"Values": list(p.values), "StorageDescriptor": storage_descriptor(table, p.location)} for p in chunk
            ]
            with self._errors(table.name):
                response = self._glue().batch_create_partition(
                    DatabaseName=self.database, TableName=table.name, PartitionInputList=inputs, **self._ids()
                )
            errors = [
                e for e in response.get("Errors", []) if e["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"
            ]
            if errors:
                raise CatalogAccessError(f"{self.database}.{table.name}: partitions refused: {errors[:3]}")

    def _glue(self) -> Any:
        if self._client is None:
            region = self.region_name or os.environ.get("AWS_REGION") or None
            import boto3  # loaded with the first Glue request, not with the catalog module

            self._client = boto3.client("glue", region_name=region, endpoint_url=self.endpoint_url or None)
        return self._client

    def _ids(self) -> dict[str, str]:
        return {"CatalogId": self.catalog_id} if self.catalog_id else {}

    def _ensure_database(self) -> None:
        """Create the database on first use when it does not exist (or another writer just created it)."""
        if self._database_ready:
            return
        glue = self._glue()
        with self._errors(""):
            try:
                glue.get_database(Name=self.database, **self._ids())
            except glue.exceptions.EntityNotFoundException:
                with suppress(glue.exceptions.AlreadyExistsException):
                    glue.create_database(
                        DatabaseInput={"Name": self.database, "Description": "enrollment-platform lake zones"},
                        **self._ids(),
                    )
        self._database_ready = True

    @contextmanager
    def _errors(self, table: str) -> Iterator[None]:
        """Turn access and credential errors into a CatalogAccessError naming the database and table."""
        where = f"Glue database {self.database!r}" + (f", table {table!r}" if table else "")
        try:
            yield
        except NoCredentialsError as error:
            raise CatalogAccessError(f"{where}: no AWS credentials found (AWS_PROFILE or an IAM role)") from error
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in _DENIED:
                raise CatalogAccessError(
                    f"{where}: access denied ({code}): the role needs glue:GetDatabase, CreateDatabase, GetTable, "
                    "CreateTable, UpdateTable, GetPartitions and BatchCreatePartition (and Lake Formation "
                    "permissions when it governs the database)"
                ) from error
            raise


def storage_descriptor(table: TableDefinition, location: str) -> dict[str, Any]:
    """Columns, location and SerDe of the table's files at `location`."""
    storage = table.storage
    return {
        "Columns": [glue_column(c) for c in table.columns],
        "Location": location,
        "InputFormat": storage.input_format,
        "OutputFormat": storage.output_format,
        "Compressed": table.data_format == "parquet",
        "SerdeInfo": {"SerializationLibrary": storage.serde, "Parameters": dict(storage.serde_parameters)},
    }


def table_input(table: TableDefinition) -> dict[str, Any]:
    """The TableInput of CreateTable/UpdateTable: an external table as a crawler defines it."""
    return {
        "Name": table.name,
        "Description": table.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {**table.storage.table_parameters, "EXTERNAL": "TRUE", **table.parameters},
        "PartitionKeys": [glue_column(c) for c in table.partition_keys],
        "StorageDescriptor": storage_descriptor(table, table.location),
    }


def glue_column(column: Column) -> dict[str, Any]:
    found: dict[str, Any] = {"Name": column.name, "Type": column.type}
    if column.absent_since:
        found["Comment"] = f"not in the files since {column.absent_since}"[:255]
        found["Parameters"] = {ABSENT_SINCE: column.absent_since}
    return found


def table_from_glue(table: dict[str, Any]) -> TableDefinition:
    """A Glue table as a TableDefinition (the format from the SerDe; our own parameters kept)."""
    descriptor = table["StorageDescriptor"]
    serde = descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "")
    data_format = next((name for name, f in FORMATS.items() if f.serde == serde), "parquet")
    parameters = {k: v for k, v in table.get("Parameters", {}).items() if k.startswith("enrollment.")}
    return TableDefinition(
        name=table["Name"],
        location=descriptor.get("Location", ""),
        data_format=data_format,
        columns=tuple(_column(c) for c in descriptor.get("Columns", [])),
        partition_keys=tuple(_column(c) for c in table.get("PartitionKeys", [])),
        description=table.get("Description", ""),
        parameters=parameters,
    )


def _column(column: dict[str, Any]) -> Column:
    return Column(column["Name"], column["Type"], column.get("Parameters", {}).get(ABSENT_SINCE, ""))
