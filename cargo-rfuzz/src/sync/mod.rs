//! The sync directory: its on-disk layout and the exchange of queue entries
//! between instances.

pub mod import;
pub mod layout;
pub mod status;
