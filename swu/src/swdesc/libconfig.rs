//! Parser for libconfig syntax, the primary sw-description syntax of SWUpdate.
//!
//! Follows libconfig's scanner and grammar (hyperrealm/libconfig `lib/scanner.l`,
//! `lib/grammar.y`): settings `name = value` or `name : value` ending in an optional `;` or `,`;
//! groups `{}`, lists `()`, arrays `[]`; strings with escapes and adjacent-literal
//! concatenation; decimal, hex and (leading `0`) octal integers with an optional `L`/`LL`
//! suffix; floats; case-insensitive booleans; `#`, `//` and `/* */` comments; trailing commas
//! in lists and arrays (libconfig 1.7+). `@include` is rejected: a
//! sw-description travels alone inside the archive, so there is nothing it could include.

use super::tree::{Group, Node, ParseError, Setting, Syntax, Value, MAX_DEPTH};

pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let settings = p.settings(None)?;
    p.skip_trivia()?;
    if p.pos < p.bytes.len() {
        return Err(p.error_here(format!("unexpected {}", p.describe_here())));
    }
    Ok(Node {
        value: Value::Group(Group {
            settings,
            body_start: 0,
            body_end: text.len(),
        }),
        span: 0..text.len(),
    })
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'*'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'_')
}

impl<'a> Parser<'a> {
    fn error(&self, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(Syntax::Libconfig, self.text, offset, message)
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

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\x0b') => self.pos += 1,
                Some(b'#') => self.skip_line(),
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'/') => self.skip_line(),
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'*') => {
                    let start = self.pos;
                    match self.text[self.pos + 2..].find("*/") {
                        Some(i) => self.pos += 2 + i + 2,
                        None => return Err(self.error(start, "unterminated /* comment")),
                    }
                }
                Some(b'@') => {
                    let rest = &self.text[self.pos..];
                    if rest.starts_with("@include") {
                        return Err(self.error_here(
                            "@include is not supported in sw-description (it must be self-contained)",
                        ));
                    }
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        match self.text[self.pos..].find('\n') {
            Some(i) => self.pos += i + 1,
            None => self.pos = self.bytes.len(),
        }
    }

    /// Settings until `close` (or the end of input for the root).
    fn settings(&mut self, close: Option<u8>) -> Result<Vec<Setting>, ParseError> {
        let mut settings: Vec<Setting> = Vec::new();
        loop {
            self.skip_trivia()?;
            match self.peek() {
                None if close.is_none() => return Ok(settings),
                None => return Err(self.error_here("unexpected end of input, expected '}'")),
                Some(c) if Some(c) == close => return Ok(settings),
                Some(c) if is_name_start(c) => {
                    let setting = self.setting()?;
                    if let Some(prev) = settings.iter().find(|s| s.name == setting.name) {
                        let (line, _) = super::tree::line_column(self.text, prev.name_span.start);
                        return Err(self.error(
                            setting.name_span.start,
                            format!(
                                "duplicate setting \"{}\" (first defined on line {line})",
                                setting.name
                            ),
                        ));
                    }
                    settings.push(setting);
                }
                Some(_) => {
                    return Err(self.error_here(format!(
                        "expected a setting name, found {}",
                        self.describe_here()
                    )))
                }
            }
        }
    }

    fn setting(&mut self) -> Result<Setting, ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        let name_span = start..self.pos;
        let name = self.text[name_span.clone()].to_string();
        self.skip_trivia()?;
        match self.peek() {
            Some(b'=' | b':') => self.pos += 1,
            _ => {
                return Err(self.error_here(format!(
                    "expected '=' or ':' after setting name \"{name}\", found {}",
                    self.describe_here()
                )))
            }
        }
        self.skip_trivia()?;
        let value = self.value()?;
        self.skip_trivia()?;
        let terminator = match self.peek() {
            Some(b';' | b',') => {
                self.pos += 1;
                Some(self.pos - 1)
            }
            _ => None,
        };
        Ok(Setting {
            name,
            name_span,
            value,
            terminator,
        })
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let body_start = self.pos;
                let settings = self.settings(Some(b'}'))?;
                let body_end = self.pos;
                self.pos += 1;
                self.depth -= 1;
                Ok(Node {
                    value: Value::Group(Group {
                        settings,
                        body_start,
                        body_end,
                    }),
                    span: start..self.pos,
                })
            }
            Some(b'(') => {
                self.enter()?;
                self.pos += 1;
                let items = self.elements(b')', false)?;
                self.depth -= 1;
                Ok(Node {
                    value: Value::List(items),
                    span: start..self.pos,
                })
            }
            Some(b'[') => {
                self.enter()?;
                self.pos += 1;
                let items = self.elements(b']', true)?;
                self.depth -= 1;
                Ok(Node {
                    value: Value::Array(items),
                    span: start..self.pos,
                })
            }
            Some(b'"') => self.string(),
            Some(c) if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.') => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                while self.peek().is_some_and(is_name_char) {
                    self.pos += 1;
                }
                let word = &self.text[start..self.pos];
                let value = if word.eq_ignore_ascii_case("true") {
                    Value::Bool(true)
                } else if word.eq_ignore_ascii_case("false") {
                    Value::Bool(false)
                } else {
                    return Err(self.error(
                        start,
                        format!("unexpected word \"{word}\" where a value was expected (strings need quotes)"),
                    ));
                };
                Ok(Node {
                    value,
                    span: start..self.pos,
                })
            }
            _ => Err(self.error_here(format!("expected a value, found {}", self.describe_here()))),
        }
    }

    /// Comma-separated values until `close`. Arrays hold scalars only, of one type.
    fn elements(&mut self, close: u8, scalars_only: bool) -> Result<Vec<Node>, ParseError> {
        let mut items: Vec<Node> = Vec::new();
        self.skip_trivia()?;
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            self.skip_trivia()?;
            let item = self.value()?;
            if scalars_only {
                if matches!(
                    item.value,
                    Value::Group(_) | Value::List(_) | Value::Array(_)
                ) {
                    return Err(self.error(
                        item.span.start,
                        "arrays may hold only scalar values (use a list '( )' instead)",
                    ));
                }
                if let Some(first) = items.first() {
                    if !same_scalar_type(&first.value, &item.value) {
                        return Err(self.error(
                            item.span.start,
                            format!(
                                "array elements must have one type: {} after {}",
                                item.value.type_name(),
                                first.value.type_name()
                            ),
                        ));
                    }
                }
            }
            items.push(item);
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_trivia()?;
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        return Ok(items);
                    }
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => {
                    return Err(self.error_here(format!(
                        "expected ',' or '{}', found {}",
                        close as char,
                        self.describe_here()
                    )))
                }
            }
        }
    }

    /// One or more adjacent string literals, concatenated.
    fn string(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        let mut out = String::new();
        let mut end;
        loop {
            self.literal(&mut out)?;
            end = self.pos;
            let save = self.pos;
            self.skip_trivia()?;
            if self.peek() != Some(b'"') {
                self.pos = save;
                break;
            }
        }
        Ok(Node {
            value: Value::Str(out),
            span: start..end,
        })
    }

    fn literal(&mut self, out: &mut String) -> Result<(), ParseError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut raw: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, "unterminated string"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error(start, "unterminated string"));
                    };
                    self.pos += 1;
                    match e {
                        b'\\' => raw.push(b'\\'),
                        b'"' => raw.push(b'"'),
                        b'n' => raw.push(b'\n'),
                        b'r' => raw.push(b'\r'),
                        b't' => raw.push(b'\t'),
                        b'f' => raw.push(b'\x0c'),
                        b'x' | b'X' => {
                            let hex = self.bytes.get(self.pos..self.pos + 2);
                            let v = hex
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u8::from_str_radix(h, 16).ok())
                                .ok_or_else(|| {
                                    self.error(
                                        self.pos - 2,
                                        "\\x must be followed by two hex digits",
                                    )
                                })?;
                            self.pos += 2;
                            raw.push(v);
                        }
                        // libconfig keeps any other backslash as a plain character and
                        // reads what follows normally.
                        _ => {
                            raw.push(b'\\');
                            self.pos -= 1;
                        }
                    }
                }
                b'\n' => return Err(self.error(start, "unterminated string (newline inside)")),
                _ => raw.push(c),
            }
        }
        match String::from_utf8(raw) {
            Ok(s) => {
                out.push_str(&s);
                Ok(())
            }
            Err(_) => Err(self.error(start, "string is not valid UTF-8 after unescaping")),
        }
    }

    fn number(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        let token = scan_number_token(&self.text[start..]);
        self.pos = start + token.len();
        let value = parse_number(token)
            .ok_or_else(|| self.error(start, format!("malformed number \"{token}\"")))?;
        Ok(Node {
            value,
            span: start..self.pos,
        })
    }
}

fn same_scalar_type(a: &Value, b: &Value) -> bool {
    // int and int64 share `Value::Int`, so they may be mixed, as libconfig allows.
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// The characters that can belong to a number token: an optional sign, then alphanumerics and
/// dots, with a sign allowed only right after a decimal exponent marker.
fn scan_number_token(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let is_hex = s[i..].starts_with("0x") || s[i..].starts_with("0X");
    while i < b.len() {
        let c = b[i];
        let sign_ok = !is_hex && matches!(c, b'+' | b'-') && matches!(b[i - 1], b'e' | b'E');
        if !(c.is_ascii_alphanumeric() || c == b'.' || sign_ok) {
            break;
        }
        i += 1;
    }
    &s[..i]
}

/// Parses a number token the way libconfig's scanner does:
/// - `0x`/`0X` hex (no sign), optional `L`/`LL`; read as a 64-bit pattern;
/// - decimal `[-+]?[0-9]+`; a leading `0` means octal (strtoll base 0), `L`/`LL` forces decimal;
/// - floats: `1.5`, `.5`, `1.`, `1e3`, `1.5E-3`.
fn parse_number(token: &str) -> Option<Value> {
    let (neg, body) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let (digits, long) = match body.strip_suffix("LL").or_else(|| body.strip_suffix('L')) {
        Some(d) => (d, true),
        None => (body, false),
    };
    if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if token.starts_with(['+', '-']) || hex.is_empty() {
            return None;
        }
        return u64::from_str_radix(hex, 16)
            .ok()
            .map(|v| Value::Int(v as i64));
    }
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        let radix = if !long && digits.len() > 1 && digits.starts_with('0') {
            8
        } else {
            10
        };
        let v = i128::from_str_radix(digits, radix).ok()?;
        let v = if neg { -v } else { v };
        return i64::try_from(v).ok().map(Value::Int);
    }
    if long {
        return None;
    }
    // Float: a mantissa with at least one digit and at most one '.', then an optional exponent;
    // at least one of '.' or exponent must be present.
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = mantissa.bytes().filter(|&c| c == b'.').count() <= 1
        && mantissa.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && mantissa.bytes().any(|c| c.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    if !(mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())) {
        return None;
    }
    let v: f64 = body.parse().ok()?;
    Some(Value::Float(if neg { -v } else { v }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Group {
        match parse(text).unwrap().value {
            Value::Group(g) => g,
            _ => unreachable!(),
        }
    }

    fn val(text: &str) -> Value {
        root(&format!("x = {text};")).settings[0]
            .value
            .value
            .clone()
    }

    #[test]
    fn scalars() {
        assert_eq!(val("42"), Value::Int(42));
        assert_eq!(val("-42"), Value::Int(-42));
        assert_eq!(val("0x1F"), Value::Int(31));
        assert_eq!(val("0xFFFFFFFFFFFFFFFFL"), Value::Int(-1));
        assert_eq!(val("12345678901L"), Value::Int(12345678901));
        assert_eq!(val("7LL"), Value::Int(7));
        assert_eq!(val("0027"), Value::Int(23));
        assert_eq!(val("0777L"), Value::Int(777));
        assert!(parse("x = 08;").is_err());
        assert!(parse("x = -0x10;").is_err());
        assert_eq!(val("1.5"), Value::Float(1.5));
        assert_eq!(val(".5"), Value::Float(0.5));
        assert_eq!(val("1e3"), Value::Float(1000.0));
        assert_eq!(val("-2.5E-1"), Value::Float(-0.25));
        assert_eq!(val("TRUE"), Value::Bool(true));
        assert_eq!(val("False"), Value::Bool(false));
        assert_eq!(
            val(r#""a\"b\\c\n\t\x41\X42""#),
            Value::Str("a\"b\\c\n\tAB".into())
        );
        assert_eq!(val(r#""C:\q""#), Value::Str("C:\\q".into()));
        assert_eq!(
            val(r#""ab" /* c */ "cd"  // x
            "ef""#),
            Value::Str("abcdef".into())
        );
    }

    #[test]
    fn structure_and_spans() {
        let text = "# c\nsoftware: { a = ( { f = \"x\"; }, ) ; b = [1, 2,] , c = \"q\" }\n";
        let g = root(text);
        let sw = g.get_value("software").unwrap().value.as_group().unwrap();
        assert_eq!(
            sw.get_value("a")
                .unwrap()
                .value
                .as_elements()
                .unwrap()
                .len(),
            1
        );
        assert!(parse("a = (1,,);").is_err());
        let text = "software: { a = ( { f = \"x\"; } ) ; b = [1, 2] , c = \"q\" }\n";
        let g = root(text);
        let sw = g.get_value("software").unwrap().value.as_group().unwrap();
        let c = sw.get("c").unwrap();
        assert_eq!(&text[c.value.span.clone()], "\"q\"");
        assert_eq!(c.terminator, None);
        assert_eq!(&text[sw.get("b").unwrap().value.span.clone()], "[1, 2]");
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("a = 1;\nb = ;\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 5));
        let e = parse("a = 1;\na = 2;").unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
        assert!(parse("a = [1, \"x\"];").is_err());
        assert!(parse("a = \"x").is_err());
        assert!(parse("/* x").is_err());
        assert!(parse("@include \"x\"").is_err());
        assert!(parse("a = 1.2.3;").is_err());
        assert!(parse("a = yes;").is_err());
        let deep = format!("a = {}{};", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).unwrap_err().message.contains("nesting"));
    }
}
