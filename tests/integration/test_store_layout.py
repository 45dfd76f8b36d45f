"""The log table's layouts: one table on a single server (or chDB), and on a ClickHouse
cluster a ReplicatedReplacingMergeTree on every node behind a Distributed table. No
cluster runs here, so the cluster DDL is checked by ClickHouse's own parser (``EXPLAIN
AST`` in chDB) and by what it must say; ``AUTHTRAIL_TEST_CLICKHOUSE_URL`` with
``AUTHTRAIL_TEST_CLICKHOUSE_CLUSTER`` runs the whole query suite on a real cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.clickhouse.client import connect
from schemas.log_store import MIGRATIONS, StoreLocation, StoreUnavailableError, ddl
from tests import leaks
from tests.integration.conftest import base_env, run_cli

PASSWORD = "hunter2-secret"
leaks.register(PASSWORD)


def test_single_node_ddl_is_the_released_schema(store: StoreLocation) -> None:
    statements = ddl(StoreLocation.parse("http://ch:8123/audit"), 90)
    create = next(s for s in statements if "auth_events" in s and s.lstrip().startswith("CREATE"))
    assert "CREATE TABLE IF NOT EXISTS audit.auth_events\n" in create
    assert "ENGINE = ReplacingMergeTree\n" in create and "ON CLUSTER" not in create
    assert not any("Distributed" in s or "Replicated" in s for s in statements)
    client = connect(store)
    shown = str(client.command(f"SHOW CREATE TABLE {store.events_table}"))
    assert "ENGINE = ReplacingMergeTree" in shown and "index_granularity = 2048" in shown
    client.close()


def test_cluster_ddl_parses_and_replicates_behind_a_distributed_table(
    store: StoreLocation,
) -> None:
    cluster = StoreLocation.parse("https://u:secret@ch.internal:8443/audit", "prod_cluster")
    assert cluster.events_table == "audit.auth_events"
    assert cluster.storage_table == "audit.auth_events_local"
    statements = ddl(cluster, 400)
    client = connect(store)
    try:
        for statement in statements:
            assert "ON CLUSTER 'prod_cluster'" in statement, statement
            client.command(f"EXPLAIN AST {statement}")  # ClickHouse's parser accepts it
    finally:
        client.close()
    joined = "\n".join(statements)
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/auth_events_local', "
        "'{replica}')" in joined
    )
    # Bookkeeping lives on every node, not per shard.
    assert "ReplicatedMergeTree('/clickhouse/tables/all/audit/schema_migrations'" in joined
    assert statements[-1] == (
        "CREATE TABLE IF NOT EXISTS audit.auth_events ON CLUSTER 'prod_cluster' "
        "AS audit.auth_events_local ENGINE = Distributed('prod_cluster', 'audit', "
        "'auth_events_local', cityHash64(event_id))"
    )
    assert "ALTER TABLE audit.auth_events_local ON CLUSTER 'prod_cluster' MODIFY SETTING" in joined
    assert "toIntervalDay(400)" in joined


def test_a_cluster_needs_a_server_and_a_valid_name() -> None:
    with pytest.raises(StoreUnavailableError, match="needs a ClickHouse server"):
        StoreLocation.parse("chdb:///var/lib/authtrail", "prod")
    with pytest.raises(StoreUnavailableError, match="invalid ClickHouse cluster name"):
        StoreLocation.parse("http://ch:8123", "prod'; DROP DATABASE x; --")


def test_store_ddl_prints_the_statements_without_the_password(tmp_path: Path) -> None:
    env = base_env(
        tmp_path,
        AUTHTRAIL_CLICKHOUSE_URL=f"https://writer:{PASSWORD}@ch.internal:8443/audit",
        AUTHTRAIL_CLICKHOUSE_CLUSTER="prod_cluster",
    )
    printed = run_cli(env, "store", "ddl")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    # The database, the migrations table, each migration's statements (but the rollups',
    # which a cluster does not have yet), the Distributed table.
    statements = sum(len(m.statements) for m in MIGRATIONS if not m.single_node)
    assert len(lines) == 2 + statements + 1 and all(line.endswith(";") for line in lines)
    assert "Distributed('prod_cluster'" in lines[-1]
    assert PASSWORD not in printed.stdout + printed.stderr
