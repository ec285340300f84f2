//! The documented cluster layout on two real servers: Vigil's tables as local tables on both,
//! `Distributed` tables in front of them on the first (host data sharded by `machine_id`,
//! everything else on the first shard), and the whole store contract run through the
//! `Distributed` tables.

use super::test_server::TestServer;
use super::{ClickHouseConfig, ClickHouseStore};
use crate::store::{Store, contract};

#[derive(Debug)]
struct TableRow {
    name: String,
    sharded: u8,
}

async fn open(server: &TestServer, database: &str) -> ClickHouseStore {
    ClickHouseStore::open(&ClickHouseConfig {
        url: server.url(),
        database: database.into(),
        ..ClickHouseConfig::default()
    })
    .await
    .unwrap()
}

async fn count(server: &TestServer, sql: &str) -> u64 {
    clickhouse::Client::default()
        .with_url(server.url())
        .with_validation(false)
        // 18.16's compressed answers read as zero rows (see `open`).
        .with_compression(clickhouse::Compression::None)
        .query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_contract_holds_through_distributed_tables_on_two_servers() {
    let Some(second) = TestServer::start_or_skip("clickhouse cluster (second shard)") else {
        return;
    };
    let first = TestServer::start_in_cluster(Some(("vigil_pair", &[second.tcp_port()])))
        .expect("first shard starts with the cluster definition");
    // The local tables, created by Vigil itself on each server.
    for server in [&first, &second] {
        open(server, "vigil_local").await.close().await.unwrap();
    }
    let client = clickhouse::Client::default()
        .with_url(first.url())
        .with_validation(false)
        .with_compression(clickhouse::Compression::None);
    client
        .query("CREATE DATABASE IF NOT EXISTS vigil")
        .execute()
        .await
        .unwrap();
    let names = |sql: &'static str| {
        let client = client.clone();
        async move { client.query(sql).fetch_all::<String>().await.unwrap() }
    };
    let sharded = names(
        "SELECT DISTINCT table FROM system.columns
         WHERE database = 'vigil_local' AND name = 'machine_id'",
    )
    .await;
    let tables: Vec<TableRow> = names(
        "SELECT DISTINCT table FROM system.columns WHERE database = 'vigil_local' ORDER BY table",
    )
    .await
    .into_iter()
    .map(|name| TableRow {
        sharded: u8::from(sharded.contains(&name)),
        name,
    })
    .collect();
    assert!(tables.len() > 10, "{tables:?}");
    for table in &tables {
        let key = if table.sharded == 1 {
            "cityHash64(machine_id)"
        } else {
            "0"
        };
        client
            .query(&format!(
                "CREATE TABLE vigil.{t} AS vigil_local.{t}
                 ENGINE = Distributed(vigil_pair, vigil_local, {t}, {key})",
                t = table.name
            ))
            .execute()
            .await
            .unwrap();
    }
    // The collector opens the database of Distributed tables like any other.
    let store = open(&first, "vigil").await;
    contract::run_all(&store).await;
    crate::store::contract_enrollment::run_all(&store).await;
    // The hosts' evidence really is on both shards.
    let on_first = count(&first, "SELECT count() FROM vigil_local.results").await;
    let on_second = count(&second, "SELECT count() FROM vigil_local.results").await;
    assert!(on_first > 0 && on_second > 0, "{on_first} / {on_second}");
    assert_eq!(
        count(&first, "SELECT count() FROM vigil.results").await,
        on_first + on_second
    );
}
