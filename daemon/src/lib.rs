//! skiff's engine.
