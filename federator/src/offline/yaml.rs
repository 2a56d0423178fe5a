//! Splitting multi-document YAML so that one malformed document costs only itself.

/// One YAML document of a file and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document<'a> {
    pub line: usize,
    pub text: &'a str,
}

/// Splits `text` at document markers (`---` at the start of a line, optionally followed by
/// content; `...` ends a document). Empty documents are dropped.
pub(crate) fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        let is_start = trimmed == "---" || trimmed.starts_with("--- ");
        let is_end = trimmed == "...";
        if is_start || is_end {
            push(&mut docs, &text[start..offset], start_line);
            // Content after `--- ` on the marker line belongs to the next document.
            start = if is_start {
                offset + 3
            } else {
                offset + line.len()
            };
            start_line = index + 1;
            if is_end {
                start_line += 1;
            }
        }
        offset += line.len();
    }
    push(&mut docs, &text[start..], start_line);
    docs
}

/// Keeps `text` if it has content, with `line` moved to its first line of content so that
/// messages point at the object rather than at a comment or a marker.
fn push<'a>(docs: &mut Vec<Document<'a>>, text: &'a str, line: usize) {
    let is_content = |l: &str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
    let mut offset = 0;
    for (skipped, l) in text.split_inclusive('\n').enumerate() {
        if is_content(l) {
            docs.push(Document {
                line: line + skipped,
                text: &text[offset..],
            });
            return;
        }
        offset += l.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_markers_and_keeps_line_numbers() {
        let text = "# header\n---\na: 1\n---\n# only a comment\n---\nb: 2\nc: |\n  ---x\n...\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 3);
        assert!(docs[0].text.contains("a: 1"));
        assert_eq!(docs[1].line, 7);
        assert!(docs[1].text.contains("b: 2") && docs[1].text.contains("---x"));
    }

    #[test]
    fn single_document_without_marker() {
        let docs = split_documents("kind: Service\n");
        assert_eq!(
            docs,
            [Document {
                line: 1,
                text: "kind: Service\n"
            }]
        );
    }
}
