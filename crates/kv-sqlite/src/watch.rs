//! Watches: the history after a revision, read from the log a page at a
//! time, then the writer's live changes.
//!
//! The watch subscribes to the live changes before it reads the log. The
//! writer publishes a change only after it is committed, so every change
//! is either in a page the watch reads or comes after it on the
//! subscription; the watch skips live changes it already read (by
//! revision). A subscription that overflows before the watcher has caught
//! up with the live changes (it was still taking the history) is renewed
//! and the log read on; one that overflows after ends the watch with
//! [`Error::WatcherLagged`].

use std::collections::VecDeque;
use std::sync::Arc;

use berth_kv::{Error, Event, Revision, WatchStream};
use futures::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::reader::{self, Readers};

/// How many changes one read of the log returns.
const PAGE: usize = 1000;

/// Starts a watch of `prefix` after `after` (0 = now).
pub(crate) async fn watch(
    readers: &Arc<Readers>,
    changes: &broadcast::Sender<Arc<Event>>,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, Error> {
    let receiver = changes.subscribe();
    let owned = prefix.to_owned();
    let (after, page) = readers
        .run(move |conn| {
            let tx = conn
                .transaction()
                .map_err(crate::backend("starting a read transaction"))?;
            let (current, compacted) = reader::snapshot(&tx)?;
            let after = if after == 0 { current } else { after };
            if after < compacted {
                return Err(Error::Compacted {
                    requested: after,
                    compacted,
                });
            }
            if after > current {
                return Err(Error::FutureRevision {
                    requested: after,
                    current,
                });
            }
            let page = reader::changes_in(&tx, &owned, after, PAGE)?;
            Ok((after, page))
        })
        .await?;
    let mut state = Watch {
        readers: readers.clone(),
        prefix: prefix.to_owned(),
        receiver,
        last: after,
        pending: VecDeque::new(),
        replaying: true,
        caught_up: false,
        ended: false,
    };
    state.take_page(page);
    Ok(futures::stream::unfold(state, Watch::next).boxed())
}

struct Watch {
    readers: Arc<Readers>,
    prefix: String,
    receiver: broadcast::Receiver<Arc<Event>>,
    /// The revision of the last change queued or delivered.
    last: Revision,
    /// Changes read and not yet delivered.
    pending: VecDeque<Event>,
    /// Whether the log may hold changes not read yet.
    replaying: bool,
    /// Whether the watcher has taken a live change with nothing of the
    /// history left to deliver.
    caught_up: bool,
    ended: bool,
}

impl Watch {
    fn take_page(&mut self, page: Vec<Event>) {
        let whole = page.len() < PAGE;
        for event in page {
            self.last = event.revision();
            self.pending.push_back(event);
        }
        if whole {
            self.replaying = false;
            self.catch_up();
        }
    }

    /// Takes what the subscription holds now, skipping what the log gave.
    fn catch_up(&mut self) {
        loop {
            match self.receiver.try_recv() {
                Ok(event) => {
                    if event.revision() > self.last && event.kv.key.starts_with(&self.prefix) {
                        self.last = event.revision();
                        self.pending.push_back(Event::clone(&event));
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
                Err(TryRecvError::Lagged(_)) => {
                    // Changes went by while the log was read: they are in
                    // the log too. Subscribe anew and read on.
                    self.receiver = self.receiver.resubscribe();
                    self.replaying = true;
                    return;
                }
            }
        }
    }

    async fn next(mut self) -> Option<(Result<Event, Error>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.ended {
                return None;
            }
            if self.replaying {
                let prefix = self.prefix.clone();
                let after = self.last;
                let page = self
                    .readers
                    .run(move |conn| reader::changes(conn, &prefix, after, PAGE))
                    .await;
                match page {
                    Ok(page) => self.take_page(page),
                    Err(e) => {
                        self.ended = true;
                        return Some((Err(e), self));
                    }
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(event) => {
                    self.caught_up = true;
                    if event.revision() > self.last && event.kv.key.starts_with(&self.prefix) {
                        self.last = event.revision();
                        return Some((Ok(Event::clone(&event)), self));
                    }
                }
                Err(RecvError::Lagged(_)) if !self.caught_up => {
                    // Live changes went by while the history was delivered.
                    self.receiver = self.receiver.resubscribe();
                    self.replaying = true;
                }
                Err(RecvError::Lagged(_)) => {
                    self.ended = true;
                    return Some((Err(Error::WatcherLagged), self));
                }
                Err(RecvError::Closed) => {
                    self.ended = true;
                    return Some((Err(Error::Backend("the store was closed".to_owned())), self));
                }
            }
        }
    }
}
