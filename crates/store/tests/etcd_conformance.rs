//! The conformance suite against a real single-member etcd.

use std::sync::Arc;

use store::conformance::Fixture;
use store::{EtcdStore, StoreOptions};
use test_support::etcd::EtcdCluster;

async fn fresh(opts: StoreOptions) -> Fixture {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .expect("join")
        .expect("start etcd");
    let store = EtcdStore::connect(&cluster.endpoints(), opts)
        .await
        .expect("connect");
    Fixture {
        store: Arc::new(store),
        guard: Box::new(cluster),
    }
}

store::conformance_tests!(fresh);
