//! zoo.cfg into a typed `Config` (in progress: lexer, errors, members, whitelist, key table).

mod error;
mod keys;
mod membership;
mod properties;
mod whitelist;

pub use error::{ConfigError, Location};
pub use membership::{
    render_membership, GroupSpec, Host, Membership, QuorumAddress, Role, ServerSpec, SERVER_ID_MAX,
    SERVER_ID_MAX_EXTENDED_TYPES,
};
pub use whitelist::FourLetterWhitelist;
