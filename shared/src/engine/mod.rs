//! The native backup engine: catalog reading, dependency order, consistent parallel data
//! export, the backup set format, and restore.

pub mod acl;
pub mod backup;
pub mod catalog;
pub mod digest;
pub mod inventory;
pub mod item;
pub mod manifest;
pub mod order;
pub mod restore;
pub mod script;
