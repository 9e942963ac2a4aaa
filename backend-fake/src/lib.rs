//! # pledge-backend-fake (to be written)
