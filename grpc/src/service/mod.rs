//! The tonic services: thin adapters that convert, submit to the shell, and map the reply.

pub mod base;
pub mod driver;
pub mod exec;
pub mod fingerprint;

use std::pin::Pin;
use tokio_stream::Stream;
use tonic::Status;

/// A boxed response stream.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;
