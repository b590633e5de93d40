//! Printing lists as aligned tables or JSON, and text from functions and
//! clients made safe for a terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;

use crate::args::Format;

/// Prints rows under headers, columns padded to their widest cell. Cells
/// may hold what a function or a client chose (a dead letter's error, say),
/// so each is printed on one line with its control characters escaped.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| escape_line(cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

/// JSON output is pretty-printed so it diffs and greps well in CI logs.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", escape_json(&serde_json::to_string_pretty(value)?));
    Ok(())
}

/// Text for one line of a terminal: every control character a function or
/// a client could use to move the cursor, clear the screen, set the window
/// title or hide what follows (ESC, CR, BEL, DEL, the C1 controls such as
/// U+009B, which some terminals take as ESC `[`) is shown as an escape
/// (`\x1b`, `\r`, `\u{9b}`), as are newlines, so a line cannot pose as
/// several. Tabs stay. Text without such characters is returned as is.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`escape_line`] but keeps newlines: for text of several lines such
/// as an error message or a function's answer.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| needs_escape(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// The characters a terminal may act on rather than show: C0 controls but
/// tab, DEL, C1 controls, and the bidirectional overrides and isolates,
/// which reorder what is displayed after them (the "Trojan Source" trick).
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// JSON text with the characters serde_json leaves raw inside strings (it
/// escapes only C0 controls) written as `\u` escapes too: DEL, the C1
/// controls and the bidirectional overrides. Such a character can only be
/// inside a string, where the escape means the same character, so the JSON
/// reads back identical.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    // A raw C0 character in serde_json's output is whitespace between
    // tokens (pretty printing's newlines), never inside a string.
    let raw_in_string = |c: char| u32::from(c) >= 0x7f && needs_escape(c);
    if !json.chars().any(raw_in_string) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if raw_in_string(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Prints a list as JSON (`[]` when empty) or as a table. An empty table
/// is not printed: `empty` says on stderr that there is nothing yet and
/// what to do, and stdout stays empty for scripts that count lines.
pub fn print<T: Serialize>(
    format: Format,
    value: &T,
    headers: &[&str],
    rows: impl FnOnce() -> Vec<Vec<String>>,
    empty: &str,
) -> anyhow::Result<()> {
    match format {
        Format::Json => json(value),
        Format::Table => {
            let rows = rows();
            if rows.is_empty() {
                nothing(empty);
            } else {
                table(headers, &rows);
            }
            Ok(())
        }
    }
}

/// Says on stderr that a list is empty, and what to do about it.
pub fn nothing(message: &str) {
    eprintln!("{message}");
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC (a value no calendar
/// holds, from a damaged or hostile answer, as the number itself).
pub fn timestamp(unix_ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(unix_ms) {
        Some(time) => time.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => format!("@{unix_ms}ms"),
    }
}

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::{escape_json, escape_line, escape_text};

    #[test]
    fn terminal_controls_are_escaped_and_plain_text_is_kept() {
        let attack = "before\x1b[2J\x1b]0;owned\x07\x1b[31mred\rafter\u{9b}31m\u{7f}";
        let shown = escape_line(attack);
        assert_eq!(
            shown,
            "before\\x1b[2J\\x1b]0;owned\\x07\\x1b[31mred\\rafter\\u{9b}31m\\x7f"
        );
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(escape_line("a\tb é 日本 \\x1b"), "a\tb é 日本 \\x1b");
        assert!(matches!(
            escape_line("nothing to do"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape_line("one\ntwo"), "one\\ntwo");
        assert_eq!(escape_text("one\ntwo\x1bc"), "one\ntwo\\x1bc");
        assert_eq!(escape_line("abc\u{202e}cba"), "abc\\u{202e}cba");
    }

    #[test]
    fn json_keeps_its_meaning_without_raw_controls() {
        let value = serde_json::json!({"text": "a\u{9b}b\u{1b}c\u{7f}\u{202e}"});
        let text = escape_json(&serde_json::to_string(&value).unwrap()).into_owned();
        assert!(!text.chars().any(char::is_control), "{text}");
        assert!(!text.contains('\u{202e}'), "{text}");
        assert!(text.contains("\\u009b"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        let pretty = escape_json(&serde_json::to_string_pretty(&value).unwrap()).into_owned();
        assert!(pretty.contains('\n'), "pretty printing keeps its lines");
        let back: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(super::timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(super::timestamp(1_795_737_600_000), "2026-11-27 00:00:00");
        assert_eq!(super::timestamp(-1000), "1969-12-31 23:59:59");
        assert_eq!(super::timestamp(i64::MAX), format!("@{}ms", i64::MAX));
    }
}
