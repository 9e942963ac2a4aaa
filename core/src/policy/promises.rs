//! The promise → syscall table, with pledge's argument checks. (Owned by the sandbox work.)
