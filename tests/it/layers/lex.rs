//! Tokens: just enough of Rust's lexical grammar to skip comments, strings and characters.

#[derive(Debug, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    /// A string literal's text as written: `#[path = "…"]` needs no unescaping.
    Str(String),
    Punct(char),
}

#[derive(Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: usize,
}

pub(super) fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

pub(super) fn lex(text: &str) -> Vec<Token> {
    let s: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let count_lines = |from: usize, to: usize| s[from..to].iter().filter(|&&c| c == '\n').count();
    while i < s.len() {
        let start = i;
        match s[i] {
            '/' if s.get(i + 1) == Some(&'/') => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            '/' if s.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < s.len() {
                    if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            '"' => {
                let (end, value) = string_at(&s, i, None);
                out.push(Token {
                    tok: Tok::Str(value),
                    line,
                });
                i = end;
            }
            '\'' => i = char_or_lifetime_end(&s, i),
            ':' if s.get(i + 1) == Some(&':') => {
                out.push(Token {
                    tok: Tok::PathSep,
                    line,
                });
                i += 2;
            }
            c if is_ident_char(c) => {
                while i < s.len() && is_ident_char(s[i]) {
                    i += 1;
                }
                let word: String = s[start..i].iter().collect();
                let next = s.get(i).copied();
                let after = s.get(i + 1).copied();
                match (word.as_str(), next) {
                    ("r", Some('#')) if after.is_some_and(is_ident_char) => {
                        // A raw identifier, `r#type`.
                        let from = i + 1;
                        i = from;
                        while i < s.len() && is_ident_char(s[i]) {
                            i += 1;
                        }
                        out.push(Token {
                            tok: Tok::Ident(s[from..i].iter().collect()),
                            line,
                        });
                    }
                    ("r" | "br" | "cr", Some('"' | '#')) => {
                        let hashes = s[i..].iter().take_while(|&&c| c == '#').count();
                        let (end, value) = string_at(&s, i + hashes, Some(hashes));
                        out.push(Token {
                            tok: Tok::Str(value),
                            line,
                        });
                        i = end;
                    }
                    ("b" | "c", Some('"')) => {
                        let (end, value) = string_at(&s, i, None);
                        out.push(Token {
                            tok: Tok::Str(value),
                            line,
                        });
                        i = end;
                    }
                    ("b", Some('\'')) => i = char_or_lifetime_end(&s, i),
                    _ => out.push(Token {
                        tok: Tok::Ident(word),
                        line,
                    }),
                }
            }
            c if c.is_whitespace() => i += 1,
            c => {
                out.push(Token {
                    tok: Tok::Punct(c),
                    line,
                });
                i += 1;
            }
        }
        line += count_lines(start, i);
    }
    out
}

/// The end of the string whose opening quote is at `open`, and its text (escapes left as
/// written). A raw string (`Some(hashes)`) ends at `"` and that many `#`s; in a plain one
/// (`None`), `\"` does not end it.
pub(super) fn string_at(s: &[char], open: usize, raw: Option<usize>) -> (usize, String) {
    let hashes = raw.unwrap_or(0);
    let mut i = open + 1;
    while i < s.len() {
        if raw.is_none() && s[i] == '\\' {
            i += 2;
            continue;
        }
        if s[i] == '"'
            && s[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return (i + 1 + hashes, s[open + 1..i].iter().collect());
        }
        i += 1;
    }
    (s.len(), String::new())
}

/// Past a character literal (`'a'`, `'\n'`, `'\u{1F600}'`) starting at the quote at
/// `quote`, or past the quote of a lifetime or label, whose name is then read as an
/// identifier (harmless: it is never followed by `::`).
pub(super) fn char_or_lifetime_end(s: &[char], quote: usize) -> usize {
    match (s.get(quote + 1), s.get(quote + 2)) {
        (Some('\\'), _) => {
            let mut i = quote + 3;
            while i < s.len() && s[i] != '\'' {
                i += 1;
            }
            i + 1
        }
        (Some(_), Some('\'')) => quote + 3,
        _ => quote + 1,
    }
}
