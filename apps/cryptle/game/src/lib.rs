//! Cryptle's game: the rules, the word list, the web page and the HTTP handling, with no I/O.
//!
//! Cryptle is a Wordle-like web game whose secret words live only on the server (in a Moat Keep).
//! This crate is everything that does not touch a socket or a clock, so it can be tested without
//! sockets, built natively for the benchmark's baseline, and built for `wasm32-wasip1` inside the
//! Keep by the `cryptle` crate, which drives it from a poll-driven tokio server.
//!
//! - [`words`]: the embedded word lists, packed so that no word sits in the module as ASCII text
//!   (a memory scan must find the *current* secret, not the whole list).
//! - [`single`]: classic Wordle scoring (green, yellow, grey, repeated letters done right).
//! - [`multi`]: the multiplayer board (players' words, matches, scoreboard).
//! - [`http`]: a bounded HTTP/1.1 request parser over `httparse` and the response writer.
//! - [`app`]: routes, sessions and limits: `App::handle(request, now) -> Response`.
//! - [`error`]: the one place where game and protocol errors become HTTP statuses.
#![forbid(unsafe_code)]

pub mod app;
pub mod assets;
pub mod error;
pub mod http;
pub mod multi;
pub mod rate;
pub mod rng;
pub mod single;
pub mod words;

pub use app::{App, AppConfig};
pub use error::ApiError;
pub use http::{HttpError, HttpLimits, Request, Response, parse_request};
pub use rng::{Entropy, SecretPicker};
pub use words::Word;
