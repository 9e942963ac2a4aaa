//! # pledge-grpc (to be written)
