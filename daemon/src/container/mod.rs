pub mod options;
pub mod record;
pub mod store;
