//! The multiplayer board: every player's words, held only here, and the matches between them.
//!
//! A player plays a word. If another player played the same word earlier, that is a *match*
//! (purple): both players score a point and the word goes on the public matches list. A word
//! already matched, or one the player played before, is *taken* (red) and scores nothing.
//! Otherwise the word becomes the player's, and each of its letters is *blue* if some earlier
//! word had that letter in that place (a hint that a match may be near), else grey.
//! Unmatched words never leave the board: only matched words, handles and scores do.

use std::collections::HashMap;

use serde::Serialize;

use crate::words::{WORD_LEN, Word};

/// Handles: 1 to 16 of `A-Z a-z 0-9 _ -`.
pub const MAX_HANDLE_LEN: usize = 16;

/// Index of a player on the board.
pub type PlayerId = usize;

/// The colour of one letter of a multiplayer word that made no match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hint {
    Blue,
    Grey,
}

/// What playing a word did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Played {
    /// The word is now the player's.
    New([Hint; WORD_LEN]),
    /// The word was `other`'s: both score.
    Match { other: PlayerId },
    /// The word was matched before.
    AlreadyMatched,
    /// The player played this word before.
    OwnWord,
}

/// Why a player or a word was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    #[error("a handle is 1 to {MAX_HANDLE_LEN} letters, digits, '_' or '-'")]
    BadHandle,
    #[error("that handle is taken")]
    HandleTaken,
    #[error("the board is full")]
    TooManyPlayers,
    #[error("a player holds at most {0} words")]
    TooManyWords(usize),
}

#[derive(Debug)]
struct Player {
    handle: String,
    score: u32,
    words: usize,
}

/// The matches list entry.
#[derive(Debug, Clone, Serialize)]
pub struct MatchView {
    pub word: String,
    pub players: [String; 2],
}

/// The scoreboard entry.
#[derive(Debug, Clone, Serialize)]
pub struct PlayerView {
    pub handle: String,
    pub score: u32,
    /// How many words the player holds (never which).
    pub words: usize,
}

/// The multiplayer board.
pub struct Board {
    players: Vec<Player>,
    by_handle: HashMap<String, PlayerId>,
    /// Unmatched words and who played them.
    owners: HashMap<Word, PlayerId>,
    matched: HashMap<Word, usize>,
    matches: Vec<(Word, [PlayerId; 2])>,
    /// Per position, a bit per letter seen there in an earlier word.
    seen: [u32; WORD_LEN],
    max_players: usize,
    max_words_per_player: usize,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("players", &self.players.len())
            .field("matches", &self.matches.len())
            .finish_non_exhaustive()
    }
}

impl Board {
    pub fn new(max_players: usize, max_words_per_player: usize) -> Board {
        Board {
            players: Vec::new(),
            by_handle: HashMap::new(),
            owners: HashMap::new(),
            matched: HashMap::new(),
            matches: Vec::new(),
            seen: [0; WORD_LEN],
            max_players,
            max_words_per_player,
        }
    }

    /// Add a player under a new handle (unique regardless of case).
    pub fn join(&mut self, handle: &str) -> Result<PlayerId, BoardError> {
        let valid = !handle.is_empty()
            && handle.len() <= MAX_HANDLE_LEN
            && handle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(BoardError::BadHandle);
        }
        let key = handle.to_ascii_lowercase();
        if self.by_handle.contains_key(&key) {
            return Err(BoardError::HandleTaken);
        }
        if self.players.len() >= self.max_players {
            return Err(BoardError::TooManyPlayers);
        }
        let id = self.players.len();
        self.players.push(Player {
            handle: handle.to_owned(),
            score: 0,
            words: 0,
        });
        self.by_handle.insert(key, id);
        Ok(id)
    }

    pub fn handle(&self, id: PlayerId) -> &str {
        &self.players[id].handle
    }

    /// Play a word (already checked against the dictionary) as `player`.
    pub fn play(&mut self, player: PlayerId, word: Word) -> Result<Played, BoardError> {
        if self.matched.contains_key(&word) {
            return Ok(Played::AlreadyMatched);
        }
        if let Some(&owner) = self.owners.get(&word) {
            if owner == player {
                return Ok(Played::OwnWord);
            }
            self.owners.remove(&word);
            self.matched.insert(word, self.matches.len());
            self.matches.push((word, [owner, player]));
            self.players[owner].score += 1;
            self.players[player].score += 1;
            return Ok(Played::Match { other: owner });
        }
        if self.players[player].words >= self.max_words_per_player {
            return Err(BoardError::TooManyWords(self.max_words_per_player));
        }
        let mut hints = [Hint::Grey; WORD_LEN];
        for (i, &letter) in word.bytes().iter().enumerate() {
            let bit = 1u32 << (letter - b'a');
            if self.seen[i] & bit != 0 {
                hints[i] = Hint::Blue;
            }
            self.seen[i] |= bit;
        }
        self.owners.insert(word, player);
        self.players[player].words += 1;
        Ok(Played::New(hints))
    }

    /// One player's score.
    pub fn scoreboard_score(&self, id: PlayerId) -> u32 {
        self.players[id].score
    }

    /// Scores, highest first (ties by handle).
    pub fn scoreboard(&self) -> Vec<PlayerView> {
        let mut rows: Vec<PlayerView> = self
            .players
            .iter()
            .map(|p| PlayerView {
                handle: p.handle.clone(),
                score: p.score,
                words: p.words,
            })
            .collect();
        rows.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.handle.cmp(&b.handle)));
        rows
    }

    /// Matched words, oldest first.
    pub fn matches(&self) -> Vec<MatchView> {
        self.matches
            .iter()
            .map(|(w, [a, b])| MatchView {
                word: w.as_str().to_owned(),
                players: [self.handle(*a).to_owned(), self.handle(*b).to_owned()],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Word {
        Word::parse(s).unwrap()
    }

    #[test]
    fn match_scores_both_and_then_the_word_is_taken() {
        let mut b = Board::new(10, 10);
        let alice = b.join("alice").unwrap();
        let bob = b.join("bob").unwrap();
        let carol = b.join("carol").unwrap();
        assert!(matches!(b.play(alice, w("crane")), Ok(Played::New(_))));
        assert_eq!(b.play(alice, w("crane")), Ok(Played::OwnWord));
        assert_eq!(b.play(bob, w("crane")), Ok(Played::Match { other: alice }));
        assert_eq!(b.play(carol, w("crane")), Ok(Played::AlreadyMatched));
        assert_eq!(b.play(alice, w("crane")), Ok(Played::AlreadyMatched));
        let board = b.scoreboard();
        assert_eq!((board[0].handle.as_str(), board[0].score), ("alice", 1));
        assert_eq!((board[1].handle.as_str(), board[1].score), ("bob", 1));
        assert_eq!(board[2].score, 0);
        let m = b.matches();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].word, "crane");
        assert_eq!(m[0].players, ["alice".to_owned(), "bob".to_owned()]);
    }

    #[test]
    fn blue_marks_letters_seen_in_place_before() {
        let mut b = Board::new(10, 10);
        let a = b.join("a").unwrap();
        let c = b.join("c").unwrap();
        b.play(a, w("crane")).unwrap();
        use Hint::{Blue as B, Grey as G};
        assert_eq!(b.play(c, w("crate")).unwrap(), Played::New([B, B, B, G, B]));
        assert_eq!(b.play(c, w("pious")).unwrap(), Played::New([G; 5]));
    }

    #[test]
    fn handles_are_checked_and_unique_regardless_of_case() {
        let mut b = Board::new(2, 10);
        assert_eq!(b.join(""), Err(BoardError::BadHandle));
        assert_eq!(b.join("a b"), Err(BoardError::BadHandle));
        assert_eq!(b.join("<script>"), Err(BoardError::BadHandle));
        assert_eq!(b.join(&"x".repeat(17)), Err(BoardError::BadHandle));
        b.join("Alice").unwrap();
        assert_eq!(b.join("alice"), Err(BoardError::HandleTaken));
        b.join("bob").unwrap();
        assert_eq!(b.join("carol"), Err(BoardError::TooManyPlayers));
    }

    #[test]
    fn words_per_player_are_bounded() {
        let mut b = Board::new(2, 1);
        let a = b.join("a").unwrap();
        b.play(a, w("crane")).unwrap();
        assert_eq!(b.play(a, w("pious")), Err(BoardError::TooManyWords(1)));
    }
}
