//! zoo.cfg into a typed `Config` (in progress: the properties lexer and the error type).

mod error;
mod properties;

pub use error::{ConfigError, Location};
