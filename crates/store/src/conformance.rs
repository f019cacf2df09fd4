//! One suite, run against every backend with identical expectations.
//!
//! A backend's test file provides `async fn fresh(opts: StoreOptions) -> Fixture`
//! returning an empty store, and expands [`crate::conformance_tests!`] with it.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use crate::{Store, StoreOptions};

/// An empty store plus whatever keeps it alive (a temp dir, an etcd process).
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Dropped after the test.
    pub guard: Box<dyn Any + Send>,
}

/// Something that makes fresh, empty stores.
pub trait Fresh: Fn(StoreOptions) -> Self::Fut {
    /// The future it returns.
    type Fut: Future<Output = Fixture>;
}

impl<F, Fut> Fresh for F
where
    F: Fn(StoreOptions) -> Fut,
    Fut: Future<Output = Fixture>,
{
    type Fut = Fut;
}
