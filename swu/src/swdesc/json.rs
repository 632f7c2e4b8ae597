//! Parser for the JSON form of sw-description (SWUpdate's json-c parser).
//!
//! Standard JSON (RFC 8259) plus the `/* */` and `//` comments json-c's tokener accepts.
//! Objects become groups (a repeated key: the last one wins, as in json-c), arrays become lists.

use super::tree::{Group, Node, ParseError, Setting, Syntax, Value, MAX_DEPTH};

pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.skip_trivia()?;
    if p.peek() != Some(b'{') {
        return Err(p.error_here(format!(
            "a JSON sw-description must be an object, found {}",
            p.describe_here()
        )));
    }
    let root = p.value()?;
    p.skip_trivia()?;
    if p.pos < p.bytes.len() {
        return Err(p.error_here(format!(
            "unexpected {} after the top-level object",
            p.describe_here()
        )));
    }
    Ok(root)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(Syntax::Json, self.text, offset, message)
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        self.error(self.pos, message)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn describe_here(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "end of input".to_string(),
            Some(c) => format!("{c:?}"),
        }
    }

    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.pos += 1,
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'/') => {
                    match self.text[self.pos..].find('\n') {
                        Some(i) => self.pos += i + 1,
                        None => self.pos = self.bytes.len(),
                    }
                }
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'*') => {
                    match self.text[self.pos + 2..].find("*/") {
                        Some(i) => self.pos += 2 + i + 2,
                        None => return Err(self.error_here("unterminated /* comment")),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn expect(&mut self, c: u8, context: &str) -> Result<(), ParseError> {
        self.skip_trivia()?;
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error_here(format!(
                "expected '{}' {context}, found {}",
                c as char,
                self.describe_here()
            )))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Node, ParseError> {
        self.skip_trivia()?;
        let start = self.pos;
        let value = match self.peek() {
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let body_start = self.pos;
                let settings = self.members()?;
                let body_end = self.pos - 1;
                self.depth -= 1;
                Value::Group(Group {
                    settings,
                    body_start,
                    body_end,
                })
            }
            Some(b'[') => {
                self.enter()?;
                self.pos += 1;
                let items = self.elements()?;
                self.depth -= 1;
                Value::List(items)
            }
            Some(b'"') => Value::Str(self.string()?),
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't' | b'f' | b'n') => {
                let rest = &self.text[self.pos..];
                let (word, v) = if rest.starts_with("true") {
                    ("true", Value::Bool(true))
                } else if rest.starts_with("false") {
                    ("false", Value::Bool(false))
                } else if rest.starts_with("null") {
                    ("null", Value::Null)
                } else {
                    return Err(self.error_here("expected a value (true, false or null?)"));
                };
                self.pos += word.len();
                v
            }
            _ => {
                return Err(
                    self.error_here(format!("expected a value, found {}", self.describe_here()))
                )
            }
        };
        Ok(Node {
            value,
            span: start..self.pos,
        })
    }

    /// Object members after the `{`, through the `}`.
    fn members(&mut self) -> Result<Vec<Setting>, ParseError> {
        let mut settings = Vec::new();
        self.skip_trivia()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(settings);
        }
        loop {
            self.skip_trivia()?;
            if self.peek() != Some(b'"') {
                return Err(self.error_here(format!(
                    "expected a quoted member name, found {}",
                    self.describe_here()
                )));
            }
            let name_start = self.pos;
            let name = self.string()?;
            let name_span = name_start..self.pos;
            self.expect(b':', "after a member name")?;
            let value = self.value()?;
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => {
                    settings.push(Setting {
                        name,
                        name_span,
                        value,
                        terminator: Some(self.pos),
                    });
                    self.pos += 1;
                }
                Some(b'}') => {
                    settings.push(Setting {
                        name,
                        name_span,
                        value,
                        terminator: None,
                    });
                    self.pos += 1;
                    return Ok(settings);
                }
                _ => {
                    return Err(self.error_here(format!(
                        "expected ',' or '}}' after a member, found {}",
                        self.describe_here()
                    )))
                }
            }
        }
    }

    fn elements(&mut self) -> Result<Vec<Node>, ParseError> {
        let mut items = Vec::new();
        self.skip_trivia()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => {
                    return Err(self.error_here(format!(
                        "expected ',' or ']' in an array, found {}",
                        self.describe_here()
                    )))
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(c) = rest.chars().next() else {
                return Err(self.error(start, "unterminated string"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error(start, "unterminated string"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => {
                            return Err(self.error(
                                self.pos - 2,
                                format!("unknown escape sequence \\{}", e.escape_ascii()),
                            ))
                        }
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.error(self.pos - 1, "control character inside a string"))
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error_here("\\u must be followed by four hex digits"))?;
        self.pos += 4;
        Ok(u32::from_str_radix(digits, 16).expect("checked hex digits"))
    }

    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let start = self.pos - 2;
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if !self.text[self.pos..].starts_with("\\u") {
                return Err(self.error(start, "unpaired UTF-16 surrogate in \\u escape"));
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.error(start, "invalid UTF-16 surrogate pair in \\u escape"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.error(start, "invalid code point in \\u escape"))
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let b = self.bytes;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let int_digits = i - int_start;
        let mut is_float = false;
        if b.get(i) == Some(&b'.') {
            is_float = true;
            i += 1;
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == s {
                return Err(self.error(start, "digits expected after '.'"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            is_float = true;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == s {
                return Err(self.error(start, "digits expected in exponent"));
            }
        }
        let token = &self.text[start..i];
        if int_digits == 0 || (int_digits > 1 && b[int_start] == b'0') {
            return Err(self.error(start, format!("malformed number \"{token}\"")));
        }
        self.pos = i;
        if is_float {
            token
                .parse()
                .map(Value::Float)
                .map_err(|_| self.error(start, format!("malformed number \"{token}\"")))
        } else {
            token
                .parse()
                .map(Value::Int)
                .map_err(|_| self.error(start, format!("integer out of range \"{token}\"")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_spans() {
        let text = r#"{ "software": { "version": "1.0", "n": -12, "f": 1.5e2, "ok": true, "x": null,
            "images": [ { "filename": "a\u00e9\ud83d\ude00", "sha256": "ab" } ] } // trailing
        }"#;
        let root = parse(text).unwrap();
        let sw = root
            .value
            .as_group()
            .unwrap()
            .get_value("software")
            .unwrap();
        let sw = sw.value.as_group().unwrap();
        assert_eq!(sw.get_value("n").unwrap().value, Value::Int(-12));
        assert_eq!(sw.get_value("f").unwrap().value, Value::Float(150.0));
        assert_eq!(sw.get_value("x").unwrap().value, Value::Null);
        let images = sw.get_value("images").unwrap().value.as_elements().unwrap();
        let img = images[0].value.as_group().unwrap();
        assert_eq!(
            img.get_value("filename").unwrap().value.as_str(),
            Some("aé😀")
        );
        let sha = img.get("sha256").unwrap();
        assert_eq!(&text[sha.value.span.clone()], "\"ab\"");
        assert_eq!(sha.terminator, None);
    }

    #[test]
    fn last_duplicate_wins() {
        let root = parse(r#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!(
            root.value.as_group().unwrap().get_value("a").unwrap().value,
            Value::Int(2)
        );
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "[]",
            "{",
            "{\"a\" 1}",
            "{\"a\": 01}",
            "{\"a\": 1,}",
            "{\"a\": \"\\q\"}",
            "{} x",
            "{\"a\": tru}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let e = parse("{\n  \"a\": ?\n}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
    }
}
