//! A client of the test environment's etcd.

use federator::state::etcd::{EtcdClient, EtcdOptions};
use testenv::TestEnv;

/// A client of `env`'s etcd, for keys under `prefix`.
pub fn client(env: &TestEnv, prefix: &str) -> EtcdClient {
    EtcdClient::new(&EtcdOptions {
        endpoints: vec![env.etcd_endpoint()],
        prefix: prefix.to_owned(),
        ca_file: None,
        client_cert: None,
    })
    .unwrap()
}
