//! Policy as data: the promise → syscall table ([`promises`]) and the default unveils
//! ([`unveils`]). Both backends, the seccomp compiler, learn mode and the README read these.

pub mod promises;
pub mod unveils;
