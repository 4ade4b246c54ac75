//! Live notification delivery: an in-process broadcast hub the notifications consumer
//! publishes stored rows into, and `GET /notifications/stream` subscribers read from.
//!
//! Each node's hub only sees what that node's consumer stored (see ARCHITECTURE.md): with
//! several API nodes, a subscriber on one node may miss live events stored by another one and
//! sees them on its next `GET /notifications` instead.

use std::sync::Arc;

use quicktok_meta::Notification;
use tokio::sync::broadcast;

/// How many notifications a slow subscriber may fall behind before it skips some.
const CAPACITY: usize = 1024;

/// The broadcast hub; cheap to clone.
#[derive(Debug, Clone)]
pub struct NotificationHub {
    tx: broadcast::Sender<Arc<Notification>>,
}

impl Default for NotificationHub {
    fn default() -> Self {
        NotificationHub { tx: broadcast::channel(CAPACITY).0 }
    }
}

impl NotificationHub {
    /// Sends stored notifications to every subscriber (each filters its own user's).
    pub fn publish(&self, rows: Vec<Notification>) {
        for row in rows {
            // No subscriber is not an error: the row is stored.
            let _ = self.tx.send(Arc::new(row));
        }
    }

    /// A receiver of everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        self.tx.subscribe()
    }
}
