//! The vocabulary every other module speaks: chat messages, sampling settings, prices and
//! stable seeds. It depends on nothing else in the crate, so no module has to reach up (or
//! sideways) to name them.

mod message;
mod price;
mod sampling;
mod seed;

pub use message::ChatMessage;
pub use price::Price;
pub use sampling::SamplingParams;
pub use seed::{hash_str, mix};
