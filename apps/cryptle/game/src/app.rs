//! Routes, sessions and limits: everything between a parsed [`Request`] and its [`Response`].
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `/index.js`, `/styles.css` | the page |
//! | `GET /healthz` | `ok` |
//! | `POST /api/single` | start a single-player game; answers its token |
//! | `POST /api/single/guess` | `{"guess": "crane"}` with `Authorization: Bearer <game token>` |
//! | `POST /api/multi/join` | `{"handle": "alice"}`; answers the player's token |
//! | `POST /api/multi/guess` | `{"word": "crane"}` with `Authorization: Bearer <player token>` |
//! | `GET /api/multi/state` | scoreboard and matched words |
//!
//! Nothing here answers with a word that has not been guessed: single-player answers carry
//! colours only, multiplayer answers carry colours, and the state lists only matched words.
//! Sessions are bounded in number and per-session request rate; idle single games expire.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::assets;
use crate::error::ApiError;
use crate::http::{Method, Request, Response};
use crate::multi::{Board, Hint, MatchView, Played, PlayerId, PlayerView};
use crate::rate::{Bucket, Rate};
use crate::rng::{Entropy, SecretPicker, new_token};
use crate::single::{Mark, SingleGame, Status};
use crate::words::{WORD_LEN, Word};

/// Limits on what the game keeps in memory and how fast one session may play.
#[derive(Debug, Clone, Copy)]
pub struct AppConfig {
    pub max_single_games: usize,
    /// A single game unused this long may be dropped.
    pub single_idle_ms: u64,
    pub max_players: usize,
    pub max_words_per_player: usize,
    /// Requests per session (game or player token).
    pub session_rate: Rate,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            max_single_games: 4096,
            single_idle_ms: 60 * 60 * 1000,
            max_players: 1000,
            max_words_per_player: 500,
            session_rate: Rate {
                per_second: 20,
                burst: 40,
            },
        }
    }
}

struct SingleSession {
    game: SingleGame,
    bucket: Bucket,
}

struct PlayerSession {
    id: PlayerId,
    bucket: Bucket,
}

/// The whole game server's state.
pub struct App {
    config: AppConfig,
    picker: SecretPicker,
    entropy: Box<dyn Entropy>,
    singles: HashMap<String, SingleSession>,
    players: HashMap<String, PlayerSession>,
    board: Board,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("singles", &self.singles.len())
            .field("board", &self.board)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct GuessBody {
    guess: String,
}

#[derive(Deserialize)]
struct JoinBody {
    handle: String,
}

#[derive(Deserialize)]
struct WordBody {
    word: String,
}

#[derive(Serialize)]
struct NewGame<'a> {
    token: &'a str,
    tries: usize,
    letters: usize,
}

#[derive(Serialize)]
struct SingleAnswer {
    colors: [Mark; WORD_LEN],
    status: Status,
    tries_left: usize,
}

#[derive(Serialize)]
struct Joined<'a> {
    handle: &'a str,
    token: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum MultiColor {
    Blue,
    Grey,
    Purple,
    Red,
}

#[derive(Serialize)]
struct MultiAnswer {
    /// `new`, `match`, `taken` (matched before) or `own` (played before by this player).
    result: &'static str,
    colors: [MultiColor; WORD_LEN],
    /// With whom a match was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    with: Option<String>,
    score: u32,
}

#[derive(Serialize)]
struct State {
    players: Vec<PlayerView>,
    matches: Vec<MatchView>,
}

impl App {
    /// `secret_seed` seeds the secret-word sequence; `entropy` makes session tokens.
    pub fn new(config: AppConfig, secret_seed: u64, entropy: Box<dyn Entropy>) -> App {
        App {
            config,
            picker: SecretPicker::new(secret_seed),
            entropy,
            singles: HashMap::new(),
            players: HashMap::new(),
            board: Board::new(config.max_players, config.max_words_per_player),
        }
    }

    /// Answer one request. Never fails: every error becomes a response.
    pub fn handle(&mut self, req: &Request, now_ms: u64) -> Response {
        let mut response = self.route(req, now_ms).unwrap_or_else(|e| e.to_response());
        if req.method == Method::Head {
            response.omit_body = true;
        }
        response
    }

    fn route(&mut self, req: &Request, now_ms: u64) -> Result<Response, ApiError> {
        let get = matches!(req.method, Method::Get | Method::Head);
        let post = req.method == Method::Post;
        match req.path.as_str() {
            "/healthz" if get => Ok(Response::new(200, "text/plain", &b"ok"[..])),
            "/api/single" if post => self.new_single(now_ms),
            "/api/single/guess" if post => self.single_guess(req, now_ms),
            "/api/multi/join" if post => self.join(req, now_ms),
            "/api/multi/guess" if post => self.multi_guess(req, now_ms),
            "/api/multi/state" if get => Ok(Response::json(
                200,
                &State {
                    players: self.board.scoreboard(),
                    matches: self.board.matches(),
                },
            )),
            "/healthz" | "/api/single" | "/api/single/guess" | "/api/multi/join"
            | "/api/multi/guess" | "/api/multi/state" => Err(ApiError::MethodNotAllowed),
            path => match assets::asset(path) {
                Some(r) if get => Ok(r),
                Some(_) => Err(ApiError::MethodNotAllowed),
                None => Err(ApiError::NotFound),
            },
        }
    }

    fn new_single(&mut self, now_ms: u64) -> Result<Response, ApiError> {
        if self.singles.len() >= self.config.max_single_games {
            // Full: finished games go first (they take no more guesses), then idle ones.
            let idle = self.config.single_idle_ms;
            self.singles.retain(|_, s| {
                s.game.status() == crate::single::Status::Playing
                    && now_ms.saturating_sub(s.game.last_used_ms) < idle
            });
            if self.singles.len() >= self.config.max_single_games {
                return Err(ApiError::GamesFull);
            }
        }
        let token = new_token(self.entropy.as_mut());
        let secret = self.picker.next_secret();
        self.singles.insert(
            token.clone(),
            SingleSession {
                game: SingleGame::new(secret, now_ms),
                bucket: Bucket::new(self.config.session_rate, now_ms),
            },
        );
        Ok(Response::json(
            201,
            &NewGame {
                token: &token,
                tries: crate::single::MAX_TRIES,
                letters: WORD_LEN,
            },
        ))
    }

    fn single_guess(&mut self, req: &Request, now_ms: u64) -> Result<Response, ApiError> {
        let token = req.bearer.as_deref().ok_or(ApiError::MissingToken)?;
        let session = self.singles.get_mut(token).ok_or(ApiError::BadToken)?;
        if !session.bucket.allow(now_ms) {
            return Err(ApiError::RateLimited);
        }
        session.game.last_used_ms = now_ms;
        let body: GuessBody = json_body(req)?;
        let guess = dictionary_word(&body.guess)?;
        let colors = session.game.guess(&guess)?;
        Ok(Response::json(
            200,
            &SingleAnswer {
                colors,
                status: session.game.status(),
                tries_left: session.game.tries_left(),
            },
        ))
    }

    fn join(&mut self, req: &Request, now_ms: u64) -> Result<Response, ApiError> {
        let body: JoinBody = json_body(req)?;
        let id = self.board.join(&body.handle)?;
        let token = new_token(self.entropy.as_mut());
        self.players.insert(
            token.clone(),
            PlayerSession {
                id,
                bucket: Bucket::new(self.config.session_rate, now_ms),
            },
        );
        Ok(Response::json(
            201,
            &Joined {
                handle: self.board.handle(id),
                token: &token,
            },
        ))
    }

    fn multi_guess(&mut self, req: &Request, now_ms: u64) -> Result<Response, ApiError> {
        let token = req.bearer.as_deref().ok_or(ApiError::MissingToken)?;
        let session = self.players.get_mut(token).ok_or(ApiError::BadToken)?;
        if !session.bucket.allow(now_ms) {
            return Err(ApiError::RateLimited);
        }
        let player = session.id;
        let body: WordBody = json_body(req)?;
        let word = dictionary_word(&body.word)?;
        let played = self.board.play(player, word)?;
        let score = self.board.scoreboard_score(player);
        let answer = match played {
            Played::New(hints) => MultiAnswer {
                result: "new",
                colors: hints.map(|h| match h {
                    Hint::Blue => MultiColor::Blue,
                    Hint::Grey => MultiColor::Grey,
                }),
                with: None,
                score,
            },
            Played::Match { other } => MultiAnswer {
                result: "match",
                colors: [const { MultiColor::Purple }; WORD_LEN],
                with: Some(self.board.handle(other).to_owned()),
                score,
            },
            Played::AlreadyMatched => MultiAnswer {
                result: "taken",
                colors: [const { MultiColor::Red }; WORD_LEN],
                with: None,
                score,
            },
            Played::OwnWord => MultiAnswer {
                result: "own",
                colors: [const { MultiColor::Red }; WORD_LEN],
                with: None,
                score,
            },
        };
        Ok(Response::json(200, &answer))
    }
}

fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if !req.json_body {
        return Err(ApiError::NotJson);
    }
    serde_json::from_slice(&req.body).map_err(|e| ApiError::BadBody(e.to_string()))
}

fn dictionary_word(text: &str) -> Result<Word, ApiError> {
    let word = Word::parse(text)?;
    if !word.is_allowed() {
        return Err(ApiError::NotAWord);
    }
    Ok(word)
}
