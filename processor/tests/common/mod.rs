//! Shared test helpers: a real MongoDB-protocol server, a synthetic data set and a scripted
//! source.
#![allow(dead_code)]

pub mod data;
pub mod mongo;
pub mod source;
