//! The store contract's test suite, each test on a fresh etcd of its own
//! (the contract's tests expect an empty store at revision 0).

use berth_kv_etcd::testing::{EtcdServer, test_store};

berth_kv::testsuite::backend_tests!(match EtcdServer::start() {
    Some(server) => test_store(server),
    // No etcd here (outside CI): the reason was printed.
    None => return,
});
