//! What every handler shares.

use std::sync::Arc;

use engine::store::Store;
use sqlx::PgPool;

use crate::auth::Keys;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub keys: Arc<Keys>,
    /// The owner connection (migrations ran on it); used only for readiness.
    pub owner: PgPool,
}
