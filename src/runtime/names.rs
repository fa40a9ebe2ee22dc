//! Generated container names, `adjective_noun` as Docker makes them.

use rand::seq::SliceRandom;

const ADJECTIVES: &[&str] = &[
    "admiring",
    "agitated",
    "amazing",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "confident",
    "cool",
    "dazzling",
    "determined",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "epic",
    "festive",
    "focused",
    "friendly",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "happy",
    "hopeful",
    "inspiring",
    "intelligent",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "nice",
    "nifty",
    "nostalgic",
    "optimistic",
    "peaceful",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "relaxed",
    "reverent",
    "romantic",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "wizardly",
    "wonderful",
    "youthful",
    "zealous",
    "zen",
];

const NOUNS: &[&str] = &[
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "banach",
    "bardeen",
    "bell",
    "bohr",
    "booth",
    "brahmagupta",
    "cannon",
    "carson",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hertz",
    "hopper",
    "hypatia",
    "jennings",
    "johnson",
    "kepler",
    "knuth",
    "lamarr",
    "lovelace",
    "maxwell",
    "mccarthy",
    "meitner",
    "mendel",
    "newton",
    "nobel",
    "noether",
    "pascal",
    "pasteur",
    "perlman",
    "planck",
    "poincare",
    "ritchie",
    "shannon",
    "sinoussi",
    "stallman",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volhard",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A random `adjective_noun` name.
pub fn generate() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{}_{}",
        ADJECTIVES.choose(&mut rng).unwrap_or(&"busy"),
        NOUNS.choose(&mut rng).unwrap_or(&"turing")
    )
}

/// Whether `name` is a valid container name (Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for _ in 0..50 {
            let n = generate();
            assert!(is_valid(&n) && n.contains('_'), "{n}");
        }
    }

    #[test]
    fn validation() {
        for ok in ["web", "my_app.1", "a-b"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", "a", "_x", "../etc", "a/b", "a b", "-x"] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
