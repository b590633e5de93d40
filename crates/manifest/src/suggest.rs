//! "Did you mean …?": the known key closest to a mistyped one.
//!
//! Only a close key is suggested (a typo, not a different word): a wrong
//! suggestion sends the user after the wrong key, while the error already
//! lists every key a table takes.

/// The candidate closest to `typed`, if it is at most one edit per three
/// characters away (and at least one edit: `memroy`, `Memory`, `max-body`).
/// An edit adds, removes or changes a character or swaps two neighbours;
/// the first of equally close candidates wins.
pub(crate) fn closest<'a>(
    typed: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (typed.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(typed, candidate);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `message` with "; did you mean `key`?" added when it is serde's
/// "unknown field `x`, expected `a`, `b` …" and one of the expected keys is
/// close to `x`.
pub(crate) fn unknown_field(message: &str) -> String {
    let suggestion = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .and_then(|(typed, rest)| {
            let expected = rest.split_once("expected")?.1;
            closest(typed, expected.split('`').skip(1).step_by(2))
        });
    match suggestion {
        Some(key) => format!("{message}; did you mean `{key}`?"),
        None => message.to_owned(),
    }
}

/// The optimal string alignment distance, counted in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the table: two back (for swaps), one back, this one.
    let mut two_back: Vec<usize> = vec![0; b.len() + 1];
    let mut one_back: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (one_back[j] + 1)
                .min(row[j - 1] + 1)
                .min(one_back[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(two_back[j - 2] + 1);
            }
        }
        two_back = std::mem::replace(&mut one_back, row);
    }
    one_back[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance, unknown_field};

    #[test]
    fn distances_count_a_swap_as_one_edit() {
        assert_eq!(edit_distance("memroy", "memory"), 1);
        assert_eq!(edit_distance("timout", "timeout"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn only_a_close_key_is_suggested() {
        let keys = ["name", "component", "memory", "max_body", "timeout"];
        assert_eq!(closest("memroy", keys), Some("memory"));
        assert_eq!(closest("Memory", keys), Some("memory"));
        assert_eq!(closest("max-body", keys), Some("max_body"));
        assert_eq!(closest("nmae", keys), Some("name"));
        assert_eq!(closest("mem", keys), None);
        assert_eq!(closest("version", keys), None);
        assert_eq!(closest("x", keys), None);
    }

    #[test]
    fn serde_messages_get_the_suggestion_at_their_end() {
        assert_eq!(
            unknown_field("unknown field `functon`, expected `app` or `function`"),
            "unknown field `functon`, expected `app` or `function`; did you mean `function`?"
        );
        assert_eq!(
            unknown_field("unknown field `version`, expected `name`"),
            "unknown field `version`, expected `name`"
        );
        assert_eq!(unknown_field("invalid type"), "invalid type");
    }
}
