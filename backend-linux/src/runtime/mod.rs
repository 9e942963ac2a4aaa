//! Task runtime: supervisor, cgroups, namespaces, stats, exec, and the Backend impl.

pub mod supervisor;
