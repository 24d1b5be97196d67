//! The embedded word lists: answers (the secrets a single-player game picks from) and the larger
//! list of words accepted as guesses.
//!
//! The lists are packed at compile time into `u32`s (five letters, five bits each) and the text
//! files are used only by `const` evaluation, so the module carries no word as ASCII text. This
//! matters for the demonstration this game exists for: a memory scan of the Keep should find the
//! words in play (the current secret, the players' words), not every word the game knows. Packing
//! keeps lexicographic order, so lookups are binary searches.

use std::fmt;

/// Letters in a word.
pub const WORD_LEN: usize = 5;

/// A five-letter lower-case ASCII word. Its bytes are the word itself: secrets in memory are
/// plain text (what a scan on a non-confidential platform finds).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Word([u8; WORD_LEN]);

/// Why some text is not a word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    #[error("a word has exactly {WORD_LEN} letters")]
    WrongLength,
    #[error("a word has only the letters a to z")]
    NotLetters,
}

impl Word {
    /// Parse five ASCII letters in any case.
    pub fn parse(text: &str) -> Result<Word, WordError> {
        let bytes = text.as_bytes();
        if bytes.len() != WORD_LEN {
            // Count characters, so that "héllo" is reported as letters, not length.
            return Err(if text.chars().count() == WORD_LEN {
                WordError::NotLetters
            } else {
                WordError::WrongLength
            });
        }
        let mut out = [0u8; WORD_LEN];
        for (slot, byte) in out.iter_mut().zip(bytes) {
            if !byte.is_ascii_alphabetic() {
                return Err(WordError::NotLetters);
            }
            *slot = byte.to_ascii_lowercase();
        }
        Ok(Word(out))
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("?????")
    }

    pub fn bytes(&self) -> &[u8; WORD_LEN] {
        &self.0
    }

    /// Whether the word may be played (an answer or an allowed guess).
    pub fn is_allowed(&self) -> bool {
        let packed = pack(&self.0);
        ANSWERS.binary_search(&packed).is_ok() || ALLOWED.binary_search(&packed).is_ok()
    }

    /// Whether the word is one of the answers a single-player game can pick.
    pub fn is_answer(&self) -> bool {
        ANSWERS.binary_search(&pack(&self.0)).is_ok()
    }
}

impl fmt::Debug for Word {
    // Debug output must not print a word: it could end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Word(..)")
    }
}

/// Number of answers.
pub fn answer_count() -> usize {
    ANSWERS.len()
}

/// The answer at `index` (modulo the list's length).
pub fn answer(index: usize) -> Word {
    unpack(ANSWERS[index % ANSWERS.len()])
}

/// Every answer, decoded (tests and tools; the server never lists them).
pub fn answers() -> impl Iterator<Item = Word> {
    ANSWERS.iter().map(|&p| unpack(p))
}

/// Every allowed guess that is not an answer, decoded.
pub fn other_allowed() -> impl Iterator<Item = Word> {
    ALLOWED.iter().map(|&p| unpack(p))
}

const fn pack(word: &[u8; WORD_LEN]) -> u32 {
    let mut packed = 0u32;
    let mut i = 0;
    while i < WORD_LEN {
        packed = (packed << 5) | (word[i] - b'a') as u32;
        i += 1;
    }
    packed
}

fn unpack(mut packed: u32) -> Word {
    let mut out = [0u8; WORD_LEN];
    for slot in out.iter_mut().rev() {
        *slot = b'a' + (packed & 31) as u8;
        packed >>= 5;
    }
    Word(out)
}

const fn count_words(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            count += 1;
        }
        i += 1;
    }
    count
}

/// Pack a list of newline-terminated, sorted, unique five-letter words; any other input fails
/// the build.
const fn pack_list<const N: usize>(text: &str) -> [u32; N] {
    let bytes = text.as_bytes();
    let mut out = [0u32; N];
    let mut n = 0;
    let mut i = 0;
    while n < N {
        let mut word = [0u8; WORD_LEN];
        let mut j = 0;
        while j < WORD_LEN {
            let b = bytes[i + j];
            assert!(
                b.is_ascii_lowercase(),
                "word lists hold lower-case letters only"
            );
            word[j] = b;
            j += 1;
        }
        assert!(
            bytes[i + WORD_LEN] == b'\n',
            "one five-letter word per line"
        );
        out[n] = pack(&word);
        assert!(
            n == 0 || out[n - 1] < out[n],
            "word lists are sorted and unique"
        );
        n += 1;
        i += WORD_LEN + 1;
    }
    out
}

const ANSWERS_LEN: usize = count_words(include_str!("../words/answers.txt"));
const ALLOWED_LEN: usize = count_words(include_str!("../words/allowed.txt"));
static ANSWERS: [u32; ANSWERS_LEN] = pack_list(include_str!("../words/answers.txt"));
static ALLOWED: [u32; ALLOWED_LEN] = pack_list(include_str!("../words/allowed.txt"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_any_case_and_rejects_the_rest() {
        assert_eq!(Word::parse("CrAnE").unwrap().as_str(), "crane");
        assert_eq!(Word::parse("cran"), Err(WordError::WrongLength));
        assert_eq!(Word::parse("cranes"), Err(WordError::WrongLength));
        assert_eq!(Word::parse(""), Err(WordError::WrongLength));
        assert_eq!(Word::parse("cr4ne"), Err(WordError::NotLetters));
        assert_eq!(Word::parse("héllo"), Err(WordError::NotLetters));
        assert_eq!(Word::parse("cr ne"), Err(WordError::NotLetters));
    }

    #[test]
    fn packing_round_trips_and_lists_are_usable() {
        assert!(answer_count() > 300);
        for w in answers() {
            assert!(w.is_allowed() && w.is_answer());
            assert_eq!(unpack(pack(w.bytes())), w);
        }
        assert!(other_allowed().all(|w| w.is_allowed() && !w.is_answer()));
        assert!(Word::parse("crane").unwrap().is_allowed());
        assert!(!Word::parse("xqzvj").unwrap().is_allowed());
        assert!(!Word::parse("aaaaa").unwrap().is_allowed());
    }

    #[test]
    fn debug_never_prints_the_word() {
        assert_eq!(format!("{:?}", Word::parse("crane").unwrap()), "Word(..)");
    }
}
