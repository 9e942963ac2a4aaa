//! nomad-pledge-driver: the plugin binary and its subcommands.
fn main() {}
