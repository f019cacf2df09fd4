//! placeholder, being written
/// etcd store.
pub struct EtcdStore;
