//! The test's broker and the stand-ins for the hub and its partners.

pub mod hub_role;
pub mod rabbit;
