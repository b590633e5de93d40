//! Byte offsets to lines and columns, for the locations errors report.
//!
//! Validation asks for a line per function and per route; scanning the text
//! from its start for each made checking a large manifest quadratic (tens
//! of seconds for 1.3 MB). The index finds where every line starts in one
//! pass, then answers each question with a binary search.

use crate::error::Location;

/// Where each line of a text starts.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
    /// With no multi-byte characters, a column is a byte difference.
    ascii: bool,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            text,
            starts,
            ascii: text.is_ascii(),
        }
    }

    /// The 1-based line holding byte `offset` (offsets past the end are on
    /// the last line).
    pub(crate) fn line(&self, offset: usize) -> usize {
        // `starts[0]` is 0, so at least one start is <= offset.
        self.starts.partition_point(|&start| start <= offset)
    }

    /// The location of byte `offset`: line and column, both 1-based, the
    /// column counting characters. An offset inside a character or past the
    /// end is taken back to the start of that character or to the end.
    pub(crate) fn location(&self, file: &str, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line(offset);
        let line_start = self.starts[line - 1];
        let column = if self.ascii {
            offset - line_start
        } else {
            self.text[line_start..offset].chars().count()
        };
        Location {
            file: file.to_owned(),
            line,
            column: column + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_and_columns() {
        let text = "ab\n\ncd\n";
        let index = LineIndex::new(text);
        let at = |offset| {
            let l = index.location("f", offset);
            (l.line, l.column)
        };
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(2), (1, 3), "the newline ends its line");
        assert_eq!(at(3), (2, 1));
        assert_eq!(at(4), (3, 1));
        assert_eq!(at(6), (3, 3));
        assert_eq!(at(7), (4, 1), "after the last newline");
        assert_eq!(at(99), (4, 1), "past the end");
        assert_eq!(LineIndex::new("").location("f", 5).to_string(), "f:1:1");
    }

    #[test]
    fn counts_characters_and_never_splits_one() {
        let text = "é = 1\nnaïve";
        let index = LineIndex::new(text);
        // Offset 1 is inside "é": the location is that character's.
        assert_eq!(index.location("f", 1).to_string(), "f:1:1");
        assert_eq!(index.location("f", 2).to_string(), "f:1:2");
        assert_eq!(index.location("f", text.len()).to_string(), "f:2:6");
    }
}
