//! Every way a request can fail, and the one place that turns it into an HTTP answer:
//! `{"error": {"code": "...", "message": "..."}}` with a 4xx/5xx status.

use serde::Serialize;

use crate::http::{HttpError, Response};
use crate::multi::BoardError;
use crate::single::SingleError;
use crate::words::WordError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("no such page")]
    NotFound,
    #[error("method not allowed here")]
    MethodNotAllowed,
    #[error("send a JSON body with Content-Type: application/json")]
    NotJson,
    #[error("bad JSON body: {0}")]
    BadBody(String),
    #[error("{0}")]
    BadWord(#[from] WordError),
    #[error("not in the word list")]
    NotAWord,
    #[error("send your session token as Authorization: Bearer <token>")]
    MissingToken,
    #[error("unknown or expired session token")]
    BadToken,
    #[error(transparent)]
    Single(#[from] SingleError),
    #[error(transparent)]
    Board(#[from] BoardError),
    #[error("too many games in play; try again later")]
    GamesFull,
    #[error("slow down")]
    RateLimited,
    #[error("server busy")]
    Busy,
    #[error(transparent)]
    Http(#[from] HttpError),
}

#[derive(Serialize)]
struct Wire<'a> {
    error: WireError<'a>,
}

#[derive(Serialize)]
struct WireError<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::NotJson => "not_json",
            ApiError::BadBody(_) => "bad_body",
            ApiError::BadWord(_) => "bad_word",
            ApiError::NotAWord => "not_a_word",
            ApiError::MissingToken => "missing_token",
            ApiError::BadToken => "bad_token",
            ApiError::Single(SingleError::GameOver) => "game_over",
            ApiError::Board(BoardError::BadHandle) => "bad_handle",
            ApiError::Board(BoardError::HandleTaken) => "handle_taken",
            ApiError::Board(BoardError::TooManyPlayers) => "board_full",
            ApiError::Board(BoardError::TooManyWords(_)) => "too_many_words",
            ApiError::GamesFull => "games_full",
            ApiError::RateLimited => "rate_limited",
            ApiError::Busy => "busy",
            ApiError::Http(_) => "bad_http",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::NotJson => 415,
            ApiError::BadBody(_) => 400,
            ApiError::BadWord(_) | ApiError::NotAWord | ApiError::Board(BoardError::BadHandle) => {
                422
            }
            ApiError::MissingToken | ApiError::BadToken => 401,
            ApiError::Single(_) | ApiError::Board(BoardError::HandleTaken) => 409,
            ApiError::Board(BoardError::TooManyWords(_)) => 409,
            ApiError::Board(BoardError::TooManyPlayers) | ApiError::GamesFull | ApiError::Busy => {
                503
            }
            ApiError::RateLimited => 429,
            ApiError::Http(e) => e.status(),
        }
    }

    pub fn to_response(&self) -> Response {
        let mut r = Response::json(
            self.status(),
            &Wire {
                error: WireError {
                    code: self.code(),
                    message: self.to_string(),
                },
            },
        );
        if matches!(self.status(), 429 | 503) {
            r.retry_after = Some(1);
        }
        r
    }
}
