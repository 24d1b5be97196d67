//! Single-player Wordle: one secret per game, six tries, each letter of a guess scored green
//! (right place), yellow (in the word elsewhere) or grey.
//!
//! Repeated letters are scored as in Wordle: greens are taken first, then each remaining letter
//! of the secret can make at most one yellow, left to right. (Enarx's Cryptle got this wrong:
//! it marked every copy of a letter yellow.)

use serde::Serialize;

use crate::words::{WORD_LEN, Word};

/// Tries per game.
pub const MAX_TRIES: usize = 6;

/// The colour of one letter of a single-player guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Green,
    Yellow,
    Grey,
}

/// Score `guess` against `secret`.
pub fn score(secret: &Word, guess: &Word) -> [Mark; WORD_LEN] {
    let (s, g) = (secret.bytes(), guess.bytes());
    let mut marks = [Mark::Grey; WORD_LEN];
    // Letters of the secret not matched in place, by letter: each can turn one guess letter yellow.
    let mut unmatched = [0u8; 26];
    for i in 0..WORD_LEN {
        if g[i] == s[i] {
            marks[i] = Mark::Green;
        } else {
            unmatched[(s[i] - b'a') as usize] += 1;
        }
    }
    for i in 0..WORD_LEN {
        let slot = &mut unmatched[(g[i] - b'a') as usize];
        if marks[i] != Mark::Green && *slot > 0 {
            marks[i] = Mark::Yellow;
            *slot -= 1;
        }
    }
    marks
}

/// Where a game stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Playing,
    Won,
    Lost,
}

/// Why a guess was not counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SingleError {
    #[error("this game is over")]
    GameOver,
}

/// One single-player game.
pub struct SingleGame {
    secret: Word,
    tries: usize,
    status: Status,
    pub(crate) last_used_ms: u64,
}

impl std::fmt::Debug for SingleGame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleGame")
            .field("tries", &self.tries)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl SingleGame {
    pub fn new(secret: Word, now_ms: u64) -> SingleGame {
        SingleGame {
            secret,
            tries: 0,
            status: Status::Playing,
            last_used_ms: now_ms,
        }
    }

    /// Play a guess (already checked against the dictionary).
    pub fn guess(&mut self, guess: &Word) -> Result<[Mark; WORD_LEN], SingleError> {
        if self.status != Status::Playing {
            return Err(SingleError::GameOver);
        }
        let marks = score(&self.secret, guess);
        self.tries += 1;
        if marks.iter().all(|m| *m == Mark::Green) {
            self.status = Status::Won;
        } else if self.tries >= MAX_TRIES {
            self.status = Status::Lost;
        }
        Ok(marks)
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn tries_left(&self) -> usize {
        MAX_TRIES - self.tries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mark::{Green as G, Grey as X, Yellow as Y};

    fn s(secret: &str, guess: &str) -> [Mark; 5] {
        score(&Word::parse(secret).unwrap(), &Word::parse(guess).unwrap())
    }

    #[test]
    fn repeated_letters_are_scored_like_wordle() {
        assert_eq!(s("crane", "crane"), [G; 5]);
        // One 'e' in the secret, two in the guess: only one scores.
        assert_eq!(s("abide", "speed"), [X, X, Y, X, Y]);
        assert_eq!(s("crane", "geese"), [X, X, X, X, G]);
        // The green copy takes the letter; the other copy is grey, not yellow.
        assert_eq!(s("crane", "error"), [Y, G, X, X, X]);
        assert_eq!(s("robin", "error"), [X, Y, X, Y, X]);
        assert_eq!(s("lemon", "level"), [G, G, X, X, X]);
        // Two copies in the secret, two misplaced in the guess: both yellow.
        assert_eq!(s("sheep", "eerie"), [Y, Y, X, X, X]);
        // One 't' in the secret: the first misplaced copy is yellow, the second grey.
        assert_eq!(s("sheet", "teeth"), [Y, Y, G, X, Y]);
    }

    #[test]
    fn six_tries_then_lost_and_no_more_guesses() {
        let mut g = SingleGame::new(Word::parse("crane").unwrap(), 0);
        let miss = Word::parse("pious").unwrap();
        for left in (0..6).rev() {
            g.guess(&miss).unwrap();
            assert_eq!(g.tries_left(), left);
        }
        assert_eq!(g.status(), Status::Lost);
        assert_eq!(g.guess(&miss), Err(SingleError::GameOver));
    }

    #[test]
    fn a_win_ends_the_game() {
        let mut g = SingleGame::new(Word::parse("crane").unwrap(), 0);
        g.guess(&Word::parse("crane").unwrap()).unwrap();
        assert_eq!(g.status(), Status::Won);
        assert!(g.guess(&Word::parse("crane").unwrap()).is_err());
    }
}
