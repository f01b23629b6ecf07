//! Shared test helpers: a real MongoDB-protocol server and a synthetic data set.
#![allow(dead_code)]

pub mod data;
pub mod mongo;
