//! A fixed set of per-thread resources (an rten thread pool, the AMX engine's scratch buffers)
//! handed to batches running side by side: a batch takes one, and gives it back when done.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex};

use crate::error::{Error, Result};

pub struct Lanes<T> {
    free: Mutex<Vec<T>>,
    returned: Condvar,
    count: usize,
}

/// A lane taken by a running batch; back on the free list when dropped (also on error).
pub struct Lane<'a, T> {
    lanes: &'a Lanes<T>,
    item: Option<T>,
}

impl<T> Lanes<T> {
    pub fn new(items: Vec<T>) -> Lanes<T> {
        Lanes {
            count: items.len(),
            free: Mutex::new(items),
            returned: Condvar::new(),
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Waits for a free lane (at once unless more callers than lanes run batches).
    pub fn take(&self) -> Result<Lane<'_, T>> {
        // The lock is held only to take or return a lane, never while a batch runs.
        let poisoned = |_| Error::Inference("a thread panicked while handing out lanes".into());
        let mut free = self.free.lock().map_err(poisoned)?;
        while free.is_empty() {
            free = self.returned.wait(free).map_err(poisoned)?;
        }
        Ok(Lane {
            lanes: self,
            item: free.pop(),
        })
    }
}

impl<T> Deref for Lane<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.item
            .as_ref()
            .expect("a lane holds its item until dropped")
    }
}

impl<T> DerefMut for Lane<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.item
            .as_mut()
            .expect("a lane holds its item until dropped")
    }
}

impl<T> Drop for Lane<'_, T> {
    fn drop(&mut self) {
        if let (Some(item), Ok(mut free)) = (self.item.take(), self.lanes.free.lock()) {
            free.push(item);
            self.lanes.returned.notify_one();
        }
    }
}
