pub mod bench;
pub mod debug;
pub mod hollow;
pub mod server;
