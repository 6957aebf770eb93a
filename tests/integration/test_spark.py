from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from batch.session import jdbc_options
from config import Settings
from source import database


@pytest.fixture
def source_table(settings: Settings, unique_name: str):
    connection = database.connect(settings)
    cursor = connection.cursor()
    cursor.execute(f"CREATE TABLE {unique_name} (id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2))")
    rows = [(i, f"name-{i}", f"{i}.25") for i in range(1, 101)]
    cursor.executemany(f"INSERT INTO {unique_name} VALUES (%s, %s, %s)", rows)
    yield unique_name
    cursor.execute(f"DROP TABLE IF EXISTS {unique_name}")
    connection.close()


def test_jdbc_table_lands_as_parquet_on_minio_and_reads_back(spark: SparkSession, settings: Settings,
                                                              source_table: str):
    # given a MariaDB table read over JDBC in 4 partitioned reads
    source = (spark.read.format("jdbc").options(**jdbc_options(settings, source_table))
              .option("partitionColumn", "id").option("lowerBound", 1).option("upperBound", 100)
              .option("numPartitions", 4).load())
    assert source.columns == ["id", "name", "amount"]
    assert source.rdd.getNumPartitions() == 4

    # when it is written as Parquet to the bronze bucket and read back
    target = settings.lake_path("bronze", "_stack_test", source_table)
    source.write.mode("overwrite").parquet(target)
    landed = spark.read.parquet(target)

    # then the rows are the source's rows
    assert target.startswith("s3a://bronze/")
    assert landed.count() == 100
    assertDataFrameEqual(landed, source)
    assert landed.filter("id = 7").first()["name"] == "name-7"
