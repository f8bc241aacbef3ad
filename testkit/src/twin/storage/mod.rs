//! Where the twin keeps objects: the store (every object as JSON, one resourceVersion counter,
//! the watch history), the registry of the types it serves, and the defaulting every write
//! gets. Pure data; it imports nothing else of the twin but [`super::profile`].

pub mod defaults;
pub mod registry;
pub mod store;
