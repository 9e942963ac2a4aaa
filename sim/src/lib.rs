//! # pledge-sim (to be written)
