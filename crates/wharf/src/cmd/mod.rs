pub mod bench;
pub mod debug;
pub mod server;
