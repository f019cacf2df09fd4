//! The service proxy: Services and EndpointSlices to one nftables table.

pub mod nft;
pub mod rules;
