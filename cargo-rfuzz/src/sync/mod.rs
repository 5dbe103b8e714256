//! The sync directory: its on-disk layout, the exchange of queue entries
//! between instances, and between hosts (`remote`).

pub mod import;
pub mod layout;
pub mod plot_data;
pub mod remote;
pub mod stats;
pub mod status;
