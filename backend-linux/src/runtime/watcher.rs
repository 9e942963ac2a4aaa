//! One thread for all tasks: an epoll set of supervisor pidfds. When a supervisor exits, its
//! task id is queued and the shell's waker called; the shell then calls
//! `Backend::drain_observations`, which reads the exit file on the shell's thread.

use pledge_core::TaskId;
use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) use crate::runtime::Waker;

struct Shared {
    tokens: Mutex<HashMap<u64, TaskId>>,
    fired: Mutex<Vec<TaskId>>,
    waker: Waker,
}

/// Watches supervisor pidfds on a background thread.
pub(crate) struct Watcher {
    epoll: Arc<nix::sys::epoll::Epoll>,
    shared: Arc<Shared>,
    stop: OwnedFd,
    thread: Option<std::thread::JoinHandle<()>>,
    next: u64,
}

const STOP_TOKEN: u64 = u64::MAX;

impl Watcher {
    pub(crate) fn new(waker: Waker) -> std::io::Result<Self> {
        use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
        use nix::sys::eventfd::{EfdFlags, EventFd};
        let epoll = Arc::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
        let stop = EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?;
        epoll.add(&stop, EpollEvent::new(EpollFlags::EPOLLIN, STOP_TOKEN))?;
        let shared = Arc::new(Shared {
            tokens: Mutex::new(HashMap::new()),
            fired: Mutex::new(Vec::new()),
            waker,
        });
        let (ep, sh) = (Arc::clone(&epoll), Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name("pledge-watcher".into())
            .spawn(move || run(&ep, &sh))?;
        Ok(Self {
            epoll,
            shared,
            stop: OwnedFd::from(stop),
            thread: Some(thread),
            next: 0,
        })
    }

    /// Starts watching `pidfd` (which the caller keeps open) for `task`. Returns the token.
    pub(crate) fn watch(&mut self, task: &TaskId, pidfd: BorrowedFd<'_>) -> std::io::Result<u64> {
        use nix::sys::epoll::{EpollEvent, EpollFlags};
        let token = self.next;
        self.next += 1;
        lock(&self.shared.tokens).insert(token, task.clone());
        if let Err(e) = self.epoll.add(
            pidfd,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, token),
        ) {
            lock(&self.shared.tokens).remove(&token);
            return Err(e.into());
        }
        Ok(token)
    }

    /// Stops watching (before the pidfd is closed).
    pub(crate) fn unwatch(&mut self, token: u64, pidfd: BorrowedFd<'_>) {
        let _ = self.epoll.delete(pidfd);
        lock(&self.shared.tokens).remove(&token);
    }

    /// Queues `task` as if its supervisor had exited (it was already gone when we looked).
    pub(crate) fn fire(&self, task: &TaskId) {
        lock(&self.shared.fired).push(task.clone());
        (self.shared.waker)();
    }

    /// Takes the queued task ids.
    pub(crate) fn take(&self) -> Vec<TaskId> {
        std::mem::take(&mut *lock(&self.shared.fired))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(epoll: &nix::sys::epoll::Epoll, shared: &Shared) {
    use nix::sys::epoll::{EpollEvent, EpollTimeout};
    let mut events = [EpollEvent::empty(); 64];
    loop {
        let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                tracing::error!("supervisor watcher stopped: {e}");
                return;
            }
        };
        let mut woke = false;
        for ev in &events[..n] {
            let token = ev.data();
            if token == STOP_TOKEN {
                return;
            }
            if let Some(task) = lock(&shared.tokens).remove(&token) {
                lock(&shared.fired).push(task);
                woke = true;
            }
        }
        if woke {
            (shared.waker)();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let one = 1u64.to_ne_bytes();
        let _ = nix::unistd::write(self.stop.as_fd(), &one);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
