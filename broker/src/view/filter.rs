//! View filters: which records of a source topic a view delivers, decided by the
//! records' headers (UTF-8 values). The two syntaxes of Apache RocketMQ:
//!
//! - Tag expressions: `*` (or nothing) matches every record; `a || b || c` matches
//!   records whose [`TAG_HEADER`] value equals one of the tags exactly (tags are
//!   trimmed; a record without the header matches no tag list).
//! - `sql:` and a SQL92 subset over headers: `= <> < > <= >=`, `[NOT] BETWEEN`,
//!   `[NOT] IN (literals)`, `IS [NOT] NULL`, `AND`, `OR`, `NOT`, parentheses,
//!   `'strings'` (`''` is a quote), numbers (`-12`, `3.5`), `TRUE`/`FALSE`. The
//!   identifier `tag` names [`TAG_HEADER`]; keywords ignore case, header names do not.
//!
//! SQL uses three-valued logic: a missing header is NULL, a comparison involving NULL
//! (or a header that does not read as the number or boolean it is compared with) is
//! UNKNOWN, `NOT UNKNOWN` is UNKNOWN, and a record matches only if the whole
//! expression is TRUE. So `NOT (a = 1)` skips records without `a`; `a IS NULL` keeps
//! them.
//!
//! Comparison types: against a number literal both sides are numbers (integers
//! compare exactly as i64, anything with a fraction as f64, mixed pairs exactly);
//! against a string literal both are strings (byte-wise order); against `TRUE` or
//! `FALSE` a header must read `true`/`false` in any case; two headers compare as
//! numbers if both read as numbers, else as strings. A value reads as a number only
//! if it has the literal syntax `-?[0-9]+(\.[0-9]+)?` (no spaces, `+` or exponent).

use std::cmp::Ordering;
use std::fmt;

/// The header that carries a record's tag.
pub const TAG_HEADER: &str = "mq.tag";

/// Longest filter text accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses and `NOT`s accepted in SQL.
pub const MAX_DEPTH: usize = 64;
/// Most items accepted in one `IN (...)` list.
pub const MAX_IN_ITEMS: usize = 1024;
/// Most tags accepted in a tag expression.
pub const MAX_TAGS: usize = 1024;

/// A parsed view filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `*`: every record.
    All,
    /// Records whose [`TAG_HEADER`] is one of these (sorted and deduplicated by
    /// [`Filter::parse`]).
    Tags(Vec<String>),
    /// A `sql:` expression.
    Sql(SqlFilter),
}

/// A compiled SQL92 filter; build one with [`Filter::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    expr: Expr,
}

/// Why a filter does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    filter: String,
    message: String,
    position: Option<usize>,
}

impl FilterError {
    /// What is wrong, without the filter text or position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The byte offset in the filter text where the problem is, if it has one.
    pub fn position(&self) -> Option<usize> {
        self.position
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "filter '{}': {}", self.filter, self.message)?;
        if let Some(pos) = self.position {
            write!(f, " at byte {pos}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FilterError {}

fn error(filter: &str, position: Option<usize>, message: impl Into<String>) -> FilterError {
    FilterError {
        // The text comes from clients and may be 4 KiB; the message only needs a hint.
        filter: shorten(filter, 64),
        message: message.into(),
        position,
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

type Parsed<T> = Result<T, FilterError>;

impl Filter {
    /// Parses a view filter: a tag expression, or `sql:` + SQL92 subset.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.len() > MAX_LEN {
            return Err(error(
                text,
                None,
                format!("{} bytes long; the limit is {MAX_LEN}", text.len()),
            ));
        }
        let body = text.trim_start();
        let start = text.len() - body.len();
        if body
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("sql:"))
        {
            let expr = Parser::parse(text, start + 4)?;
            return Ok(Filter::Sql(SqlFilter { expr }));
        }
        if body.trim_end().is_empty() || body.trim_end() == "*" {
            return Ok(Filter::All);
        }
        parse_tags(text).map(Filter::Tags)
    }

    /// True for `*`: every record matches, so readers can skip evaluation.
    pub fn matches_all(&self) -> bool {
        matches!(self, Filter::All)
    }

    /// For tag expressions, the tags it accepts (None for `*` and for SQL): lets storage
    /// skip a batch whose tag summary holds none of them.
    pub fn tags(&self) -> Option<&[String]> {
        match self {
            Filter::Tags(tags) => Some(tags),
            Filter::All | Filter::Sql(_) => None,
        }
    }

    /// Evaluates the filter on one record; `header(name)` returns the record's header
    /// value as UTF-8 (None if absent, or not valid UTF-8, or a null header value).
    pub fn matches<'a>(&self, header: impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Filter::All => true,
            // A linear scan: lists are short, and it stays correct for a hand-built
            // `Tags` that is not sorted.
            Filter::Tags(tags) => header(TAG_HEADER).is_some_and(|t| tags.iter().any(|x| x == t)),
            Filter::Sql(sql) => sql.expr.eval(&header) == Some(true),
        }
    }
}

fn parse_tags(text: &str) -> Parsed<Vec<String>> {
    let mut tags = Vec::new();
    let mut start = 0;
    loop {
        let end = text[start..].find("||").map_or(text.len(), |i| start + i);
        let tag = text[start..end].trim();
        if tag.is_empty() {
            return Err(error(text, Some(start), "empty tag"));
        }
        if tags.len() == MAX_TAGS {
            return Err(error(
                text,
                Some(start),
                format!("more than {MAX_TAGS} tags"),
            ));
        }
        tags.push(tag.to_owned());
        if end == text.len() {
            break;
        }
        start = end + 2;
    }
    tags.sort_unstable();
    tags.dedup();
    Ok(tags)
}

// ---- SQL: syntax tree and evaluation ----

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Const(bool),
    Not(Box<Expr>),
    // Flat lists rather than binary trees, so a long `a OR b OR ...` chain cannot make
    // evaluation (or dropping) recurse deeper than the nesting limit.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp {
        op: CmpOp,
        left: Operand,
        right: Operand,
    },
    Between {
        negated: bool,
        value: Operand,
        low: Operand,
        high: Operand,
    },
    In {
        negated: bool,
        value: Operand,
        list: Vec<Operand>,
    },
    IsNull {
        negated: bool,
        value: Operand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CmpOp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord.is_eq(),
            CmpOp::Ne => ord.is_ne(),
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Le => ord.is_le(),
            CmpOp::Ge => ord.is_ge(),
        }
    }

    fn is_equality(self) -> bool {
        matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Header(String),
    Str(String),
    Num(Number),
    Bool(bool),
}

/// An operand's value for one record. Header values stay untyped `Text` until the
/// comparison decides what they must read as; string literals are typed `Str`.
#[derive(Debug, Clone, Copy)]
enum Val<'v> {
    Null,
    Text(&'v str),
    Str(&'v str),
    Num(Number),
    Bool(bool),
}

impl Operand {
    fn value<'v, 'a: 'v>(&'v self, header: &impl Fn(&str) -> Option<&'a str>) -> Val<'v> {
        match self {
            Operand::Header(name) => header(name.as_str()).map_or(Val::Null, Val::Text),
            Operand::Str(s) => Val::Str(s),
            Operand::Num(n) => Val::Num(*n),
            Operand::Bool(b) => Val::Bool(*b),
        }
    }
}

impl Val<'_> {
    fn as_number(self) -> Option<Number> {
        match self {
            Val::Num(n) => Some(n),
            Val::Text(s) | Val::Str(s) => Number::parse(s),
            Val::Null | Val::Bool(_) => None,
        }
    }

    fn as_bool(self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(b),
            Val::Text(s) | Val::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Val::Text(s) | Val::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// Orders two values, or None for UNKNOWN (a NULL, or a value that does not read as
/// the type the comparison needs).
fn compare(l: Val<'_>, r: Val<'_>) -> Option<Ordering> {
    match (l, r) {
        (Val::Null, _) | (_, Val::Null) => None,
        (Val::Num(_), _) | (_, Val::Num(_)) => l.as_number()?.compare(r.as_number()?),
        (Val::Bool(_), _) | (_, Val::Bool(_)) => Some(l.as_bool()?.cmp(&r.as_bool()?)),
        (Val::Text(a), Val::Text(b)) => match (Number::parse(a), Number::parse(b)) {
            (Some(x), Some(y)) => x.compare(y),
            _ => Some(a.cmp(b)),
        },
        (Val::Text(a) | Val::Str(a), Val::Text(b) | Val::Str(b)) => Some(a.cmp(b)),
    }
}

/// SQL's AND (`decisive` false) and OR (`decisive` true): the first term equal to
/// `decisive` decides; otherwise any UNKNOWN makes the result UNKNOWN.
fn eval_chain<'a>(
    terms: &[Expr],
    header: &impl Fn(&str) -> Option<&'a str>,
    decisive: bool,
) -> Option<bool> {
    let mut result = Some(!decisive);
    for term in terms {
        match term.eval(header) {
            Some(b) if b == decisive => return Some(decisive),
            None => result = None,
            Some(_) => {}
        }
    }
    result
}

impl Expr {
    /// Three-valued: None is UNKNOWN.
    fn eval<'a>(&self, header: &impl Fn(&str) -> Option<&'a str>) -> Option<bool> {
        match self {
            Expr::Const(b) => Some(*b),
            Expr::Not(inner) => inner.eval(header).map(|b| !b),
            Expr::And(terms) => eval_chain(terms, header, false),
            Expr::Or(terms) => eval_chain(terms, header, true),
            Expr::Cmp { op, left, right } => {
                compare(left.value(header), right.value(header)).map(|o| op.holds(o))
            }
            Expr::Between {
                negated,
                value,
                low,
                high,
            } => {
                let v = value.value(header);
                // Both bounds are compared before deciding, so a NULL bound is UNKNOWN
                // even when the other bound already excludes the value.
                let above_low = compare(v, low.value(header))?.is_ge();
                let below_high = compare(v, high.value(header))?.is_le();
                Some((above_low && below_high) != *negated)
            }
            Expr::In {
                negated,
                value,
                list,
            } => {
                let v = value.value(header);
                // `x IN (a, b)` is `x = a OR x = b`, UNKNOWNs included.
                let mut result = Some(false);
                for item in list {
                    match compare(v, item.value(header)) {
                        Some(Ordering::Equal) => {
                            result = Some(true);
                            break;
                        }
                        None => result = None,
                        Some(_) => {}
                    }
                }
                result.map(|found| found != *negated)
            }
            Expr::IsNull { negated, value } => {
                Some(matches!(value.value(header), Val::Null) != *negated)
            }
        }
    }
}

/// Integers stay i64 so ids and counters beyond 2^53 compare exactly; anything with a
/// fraction (or too large for i64) is f64.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    /// Reads `-?[0-9]+(\.[0-9]+)?` and nothing else.
    fn parse(s: &str) -> Option<Number> {
        let unsigned = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = match unsigned.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (unsigned, None),
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !frac.is_none_or(digits) {
            return None;
        }
        if frac.is_none() {
            if let Ok(i) = s.parse::<i64>() {
                return Some(Number::Int(i));
            }
        }
        s.parse::<f64>().ok().map(Number::Float)
    }

    fn compare(self, other: Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (Number::Float(a), Number::Float(b)) => a.partial_cmp(&b),
            (Number::Int(a), Number::Float(b)) => int_float_cmp(a, b),
            (Number::Float(a), Number::Int(b)) => int_float_cmp(b, a).map(Ordering::reverse),
        }
    }
}

fn int_float_cmp(i: i64, f: f64) -> Option<Ordering> {
    // Rounding is monotonic, so a strict order between the rounded integer and `f`
    // holds for the integer too. On a tie `f` is an integer within ±2^63, exact in i128.
    match (i as f64).partial_cmp(&f)? {
        Ordering::Equal => Some(i128::from(i).cmp(&(f as i128))),
        ord => Some(ord),
    }
}

// ---- SQL: tokens ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
    Between,
    In,
    Is,
    Null,
    True,
    False,
}

const KEYWORDS: [(&str, Kw); 9] = [
    ("AND", Kw::And),
    ("OR", Kw::Or),
    ("NOT", Kw::Not),
    ("BETWEEN", Kw::Between),
    ("IN", Kw::In),
    ("IS", Kw::Is),
    ("NULL", Kw::Null),
    ("TRUE", Kw::True),
    ("FALSE", Kw::False),
];

#[derive(Debug, Clone, PartialEq)]
enum Tok<'t> {
    Ident(&'t str),
    Str(String),
    Num(Number),
    Kw(Kw),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    End,
}

#[derive(Debug)]
struct Token<'t> {
    tok: Tok<'t>,
    /// Byte range in the whole filter text, for error messages.
    pos: usize,
    end: usize,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

/// Splits `src[start..]` into tokens, ending with `Tok::End`. Every token boundary is
/// an ASCII byte, so slicing `src` there is always on a char boundary.
fn lex(src: &str, start: usize) -> Parsed<Vec<Token<'_>>> {
    let bytes = src.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let mut tokens = Vec::new();
    let mut i = start;
    while let Some(b) = at(i) {
        let begin = i;
        let tok = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' | b')' | b',' => {
                i += 1;
                match b {
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    _ => Tok::Comma,
                }
            }
            b'=' if at(i + 1) == Some(b'=') => {
                return Err(error(src, Some(i), "unknown operator '==' (use '=')"));
            }
            b'!' if at(i + 1) == Some(b'=') => {
                return Err(error(src, Some(i), "unknown operator '!=' (use '<>')"));
            }
            b'=' | b'<' | b'>' => {
                let (op, len) = match (b, at(i + 1)) {
                    (b'<', Some(b'=')) => (CmpOp::Le, 2),
                    (b'<', Some(b'>')) => (CmpOp::Ne, 2),
                    (b'>', Some(b'=')) => (CmpOp::Ge, 2),
                    (b'<', _) => (CmpOp::Lt, 1),
                    (b'>', _) => (CmpOp::Gt, 1),
                    _ => (CmpOp::Eq, 1),
                };
                i += len;
                Tok::Op(op)
            }
            b'\'' => {
                let mut value = String::new();
                i += 1;
                loop {
                    let Some(len) = bytes[i..].iter().position(|&c| c == b'\'') else {
                        return Err(error(src, Some(begin), "unclosed string literal"));
                    };
                    value.push_str(&src[i..i + len]);
                    i += len + 1;
                    if at(i) != Some(b'\'') {
                        break;
                    }
                    value.push('\'');
                    i += 1;
                }
                Tok::Str(value)
            }
            b'-' | b'0'..=b'9' => {
                let digits_from = |mut j: usize| {
                    while at(j).is_some_and(|c| c.is_ascii_digit()) {
                        j += 1;
                    }
                    j
                };
                let sign = usize::from(b == b'-');
                let int_end = digits_from(begin + sign);
                let mut well_formed = int_end > begin + sign;
                i = int_end;
                if at(i) == Some(b'.') {
                    let frac_end = digits_from(i + 1);
                    well_formed &= frac_end > i + 1;
                    i = frac_end;
                }
                // `1.`, `1.2.3`, `12ab`, a lone `-`: rejected rather than split oddly.
                well_formed &= !at(i).is_some_and(is_ident_byte);
                match Number::parse(&src[begin..i]) {
                    Some(n) if well_formed => Tok::Num(n),
                    _ => {
                        while at(i).is_some_and(is_ident_byte) {
                            i += 1;
                        }
                        let text = shorten(&src[begin..i], 32);
                        return Err(error(
                            src,
                            Some(begin),
                            format!("malformed number '{text}'"),
                        ));
                    }
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while at(i).is_some_and(is_ident_byte) {
                    i += 1;
                }
                let word = &src[begin..i];
                KEYWORDS
                    .iter()
                    .find(|(k, _)| word.eq_ignore_ascii_case(k))
                    .map_or(Tok::Ident(word), |&(_, kw)| Tok::Kw(kw))
            }
            _ => {
                let c = src[i..].chars().next().unwrap_or('?');
                return Err(error(src, Some(i), format!("unexpected character '{c}'")));
            }
        };
        tokens.push(Token {
            tok,
            pos: begin,
            end: i,
        });
    }
    tokens.push(Token {
        tok: Tok::End,
        pos: src.len(),
        end: src.len(),
    });
    Ok(tokens)
}

// ---- SQL: recursive-descent parser ----
//
// or        := and (OR and)*
// and       := not (AND not)*
// not       := NOT not | predicate
// predicate := '(' or ')'
//            | operand (cmp operand | [NOT] BETWEEN operand AND operand
//                       | [NOT] IN '(' literal (',' literal)* ')' | IS [NOT] NULL)
//            | TRUE | FALSE

struct Parser<'t> {
    src: &'t str,
    tokens: Vec<Token<'t>>,
    next: usize,
    depth: usize,
}

impl<'t> Parser<'t> {
    fn parse(src: &'t str, start: usize) -> Parsed<Expr> {
        let tokens = lex(src, start)?;
        let mut p = Parser {
            src,
            tokens,
            next: 0,
            depth: 0,
        };
        if p.peek() == &Tok::End {
            return Err(error(src, Some(start), "empty SQL expression"));
        }
        let expr = p.parse_or()?;
        if p.peek() != &Tok::End {
            return Err(p.unexpected("AND, OR or the end of the expression"));
        }
        Ok(expr)
    }

    fn token(&self) -> &Token<'t> {
        // `next` never moves past the final `End` token.
        &self.tokens[self.next]
    }

    fn peek(&self) -> &Tok<'t> {
        &self.token().tok
    }

    fn bump(&mut self) {
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
    }

    fn eat(&mut self, tok: &Tok<'_>) -> bool {
        let found = self.peek() == tok;
        if found {
            self.bump();
        }
        found
    }

    fn expect(&mut self, tok: &Tok<'_>, what: &str) -> Parsed<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn error_here(&self, message: impl Into<String>) -> FilterError {
        error(self.src, Some(self.token().pos), message)
    }

    fn unexpected(&self, expected: &str) -> FilterError {
        let t = self.token();
        let found = match t.tok {
            Tok::End => "the end".to_owned(),
            _ => format!("'{}'", shorten(&self.src[t.pos..t.end], 32)),
        };
        self.error_here(format!("expected {expected}, found {found}"))
    }

    /// Counts one level of nesting; the caller undoes it once the nested part parsed.
    fn descend(&mut self) -> Parsed<()> {
        if self.depth == MAX_DEPTH {
            return Err(self.error_here(format!(
                "nested deeper than {MAX_DEPTH} levels of parentheses and NOT"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    fn parse_or(&mut self) -> Parsed<Expr> {
        self.parse_chain(Kw::Or, Self::parse_and, Expr::Or)
    }

    fn parse_and(&mut self) -> Parsed<Expr> {
        self.parse_chain(Kw::And, Self::parse_not, Expr::And)
    }

    /// `term (kw term)*`, kept flat: a long chain of ORs or ANDs costs no nesting depth.
    fn parse_chain(
        &mut self,
        kw: Kw,
        term: fn(&mut Self) -> Parsed<Expr>,
        build: fn(Vec<Expr>) -> Expr,
    ) -> Parsed<Expr> {
        let first = term(self)?;
        if self.peek() != &Tok::Kw(kw) {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.eat(&Tok::Kw(kw)) {
            terms.push(term(self)?);
        }
        Ok(build(terms))
    }

    fn parse_not(&mut self) -> Parsed<Expr> {
        if self.peek() != &Tok::Kw(Kw::Not) {
            return self.parse_predicate();
        }
        self.descend()?;
        self.bump();
        let inner = self.parse_not()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn parse_predicate(&mut self) -> Parsed<Expr> {
        if self.peek() == &Tok::LParen {
            self.descend()?;
            self.bump();
            let inner = self.parse_or()?;
            self.expect(&Tok::RParen, "')'")?;
            self.depth -= 1;
            return Ok(inner);
        }
        let value = self.parse_operand(true)?;
        let op_pos = self.token().pos;
        match *self.peek() {
            Tok::Op(op) => {
                self.bump();
                let right = self.parse_operand(true)?;
                self.check_comparable(op, &value, &right, op_pos)?;
                Ok(Expr::Cmp {
                    op,
                    left: value,
                    right,
                })
            }
            Tok::Kw(Kw::Is) => {
                self.bump();
                let negated = self.eat(&Tok::Kw(Kw::Not));
                self.expect(&Tok::Kw(Kw::Null), "NULL")?;
                Ok(Expr::IsNull { negated, value })
            }
            Tok::Kw(Kw::Not | Kw::Between | Kw::In) => {
                let negated = self.eat(&Tok::Kw(Kw::Not));
                if self.eat(&Tok::Kw(Kw::Between)) {
                    let low = self.parse_operand(true)?;
                    self.expect(&Tok::Kw(Kw::And), "AND")?;
                    let high = self.parse_operand(true)?;
                    self.check_comparable(CmpOp::Ge, &value, &low, op_pos)?;
                    self.check_comparable(CmpOp::Le, &value, &high, op_pos)?;
                    Ok(Expr::Between {
                        negated,
                        value,
                        low,
                        high,
                    })
                } else if self.eat(&Tok::Kw(Kw::In)) {
                    let list = self.parse_in_list(&value)?;
                    Ok(Expr::In {
                        negated,
                        value,
                        list,
                    })
                } else {
                    Err(self.unexpected("BETWEEN or IN after NOT"))
                }
            }
            // A lone TRUE/FALSE is a condition; a lone header or other literal is not.
            _ => match value {
                Operand::Bool(b) => Ok(Expr::Const(b)),
                _ => Err(self.unexpected("a comparison operator, BETWEEN, IN or IS")),
            },
        }
    }

    fn parse_in_list(&mut self, value: &Operand) -> Parsed<Vec<Operand>> {
        self.expect(&Tok::LParen, "'(' after IN")?;
        let mut list = Vec::new();
        loop {
            if list.len() == MAX_IN_ITEMS {
                return Err(self.error_here(format!("IN list longer than {MAX_IN_ITEMS} items")));
            }
            let pos = self.token().pos;
            let item = self.parse_operand(false)?;
            self.check_comparable(CmpOp::Eq, value, &item, pos)?;
            list.push(item);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RParen, "',' or ')'")?;
        Ok(list)
    }

    fn parse_operand(&mut self, header_allowed: bool) -> Parsed<Operand> {
        let operand = match self.peek() {
            Tok::Ident(name) if header_allowed => {
                Operand::Header(if name.eq_ignore_ascii_case("tag") {
                    TAG_HEADER.to_owned()
                } else {
                    (*name).to_owned()
                })
            }
            Tok::Str(s) => Operand::Str(s.clone()),
            Tok::Num(n) => Operand::Num(*n),
            Tok::Kw(Kw::True) => Operand::Bool(true),
            Tok::Kw(Kw::False) => Operand::Bool(false),
            _ if header_allowed => return Err(self.unexpected("a header name or a literal")),
            _ => return Err(self.unexpected("a literal")),
        };
        self.bump();
        Ok(operand)
    }

    /// Rejects comparisons that could never be TRUE whatever the record holds.
    fn check_comparable(&self, op: CmpOp, l: &Operand, r: &Operand, pos: usize) -> Parsed<()> {
        let is_bool = |o: &Operand| matches!(o, Operand::Bool(_));
        let is_num = |o: &Operand| matches!(o, Operand::Num(_));
        if (is_bool(l) || is_bool(r)) && !op.is_equality() {
            return Err(error(
                self.src,
                Some(pos),
                "TRUE and FALSE only support =, <> and IN",
            ));
        }
        if (is_bool(l) && is_num(r)) || (is_num(l) && is_bool(r)) {
            return Err(error(
                self.src,
                Some(pos),
                "cannot compare a boolean with a number",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    fn parse(text: &str) -> Filter {
        Filter::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    fn check(text: &str, pairs: &[(&str, &str)]) -> bool {
        parse(text).matches(lookup(pairs))
    }

    fn err(text: &str) -> FilterError {
        match Filter::parse(text) {
            Ok(f) => panic!("{text:?} should not parse, got {f:?}"),
            Err(e) => e,
        }
    }

    fn tag(t: &str) -> [(&str, &str); 1] {
        [(TAG_HEADER, t)]
    }

    // ---- tag expressions ----

    #[test]
    fn star_and_empty_match_everything() {
        for text in ["*", "  *  ", "", "   ", "\t"] {
            let f = parse(text);
            assert!(f.matches_all(), "{text:?}");
            assert_eq!(f.tags(), None);
            assert!(f.matches(lookup(&[])));
            assert!(f.matches(lookup(&tag("x"))));
        }
    }

    #[test]
    fn tag_list_matches_exact_values() {
        let f = parse("a || b||c");
        assert!(!f.matches_all());
        assert!(f.matches(lookup(&tag("a"))));
        assert!(f.matches(lookup(&tag("b"))));
        assert!(f.matches(lookup(&tag("c"))));
        assert!(!f.matches(lookup(&tag("d"))));
        assert!(!f.matches(lookup(&tag("A"))));
        assert!(!f.matches(lookup(&tag("a "))));
        assert!(!f.matches(lookup(&tag(""))));
        assert!(check("single", &tag("single")));
    }

    #[test]
    fn tag_list_missing_header_does_not_match() {
        assert!(!check("a || b", &[]));
        assert!(!check("a", &[("other", "a")]));
    }

    #[test]
    fn tag_list_trims_sorts_and_dedups() {
        let f = parse("  b ||\ta b  || b || c ");
        assert_eq!(
            f.tags(),
            Some(&["a b".to_owned(), "b".to_owned(), "c".to_owned()][..])
        );
        assert!(f.matches(lookup(&tag("a b"))));
    }

    #[test]
    fn tags_may_hold_any_characters() {
        let f = parse("x=1 | y || (z) || * || é");
        assert_eq!(f.tags().map(<[String]>::len), Some(4));
        assert!(f.matches(lookup(&tag("x=1 | y"))));
        assert!(f.matches(lookup(&tag("*"))));
        assert!(f.matches(lookup(&tag("é"))));
        assert!(!f.matches(lookup(&tag("other"))));
    }

    #[test]
    fn empty_tags_are_errors() {
        let e = err("a ||");
        assert_eq!(e.to_string(), "filter 'a ||': empty tag at byte 4");
        let _: &dyn std::error::Error = &e;
        assert_eq!(e.position(), Some(4));
        assert_eq!(e.message(), "empty tag");
        assert_eq!(err("|| a").position(), Some(0));
        assert_eq!(err("a ||  || b").position(), Some(4));
        assert_eq!(err("a ||||b").position(), Some(4));
        err("||");
    }

    #[test]
    fn tag_count_limit() {
        let ok = vec!["t"; MAX_TAGS].join("||");
        assert_eq!(parse(&ok).tags().map(<[String]>::len), Some(1));
        let over = vec!["t"; MAX_TAGS + 1].join("||");
        assert!(err(&over).message().contains("more than 1024 tags"));
    }

    // ---- SQL: operators ----

    #[test]
    fn sql_numeric_comparisons() {
        let rec = [("price", "10")];
        let cases = [
            ("price = 10", true),
            ("price = 11", false),
            ("price <> 10", false),
            ("price <> 11", true),
            ("price < 11", true),
            ("price < 10", false),
            ("price > 9", true),
            ("price > 10", false),
            ("price <= 10", true),
            ("price <= 9", false),
            ("price >= 10", true),
            ("price >= 11", false),
            ("price = 10.0", true),
            ("price > 9.99", true),
            ("price > -3", true),
            ("price>-3", true),
            ("10 = price", true),
            ("9 < price", true),
        ];
        for (expr, want) in cases {
            assert_eq!(check(&format!("sql:{expr}"), &rec), want, "{expr}");
        }
        assert!(check("sql:t < 0", &[("t", "-1.5")]));
        assert!(check("sql:t = 0", &[("t", "-0")]));
    }

    #[test]
    fn sql_string_comparisons() {
        let rec = [("region", "eu")];
        let cases = [
            ("region = 'eu'", true),
            ("region = 'EU'", false),
            ("region <> 'us'", true),
            ("region < 'f'", true),
            ("region > 'eu-west'", false),
            ("region >= 'eu'", true),
            ("region <= 'ea'", false),
            // Quoted numbers compare as strings.
            ("region > '10'", true),
        ];
        for (expr, want) in cases {
            assert_eq!(check(&format!("sql:{expr}"), &rec), want, "{expr}");
        }
        assert!(check("sql:n > '10'", &[("n", "9")]));
        assert!(!check("sql:n > 10", &[("n", "9")]));
    }

    #[test]
    fn sql_integers_compare_exactly() {
        let rec = [("id", "9007199254740993")];
        assert!(check("sql:id = 9007199254740993", &rec));
        assert!(!check("sql:id = 9007199254740992", &rec));
        assert!(check("sql:id > 9007199254740992.0", &rec));
        assert!(check(
            "sql:id BETWEEN 9007199254740993 AND 9007199254740993",
            &rec
        ));
        let max = [("n", "9223372036854775807")];
        assert!(check("sql:n < 9223372036854775808", &max));
        assert!(check("sql:n < 9223372036854775808.0", &max));
        // Beyond i64: f64.
        assert!(check(
            "sql:n > 99999999999999999999",
            &[("n", "199999999999999999999")]
        ));
    }

    #[test]
    fn sql_unparseable_numbers_are_unknown() {
        for v in [
            "abc", "", " 5", "5 ", "+5", "1e3", "0x10", "1.", ".5", "NaN", "inf", "1,5",
        ] {
            let rec = [("n", v)];
            assert!(!check("sql:n = 5", &rec), "{v:?}");
            assert!(!check("sql:n <> 5", &rec), "{v:?}");
            assert!(!check("sql:NOT (n < 5)", &rec), "{v:?}");
            assert!(!check("sql:NOT n BETWEEN 1 AND 2", &rec), "{v:?}");
            assert!(!check("sql:n NOT IN (5, 6)", &rec), "{v:?}");
            assert!(check("sql:n IS NOT NULL", &rec), "{v:?}");
        }
    }

    #[test]
    fn sql_between() {
        let check_n = |expr: &str, n: &str| check(&format!("sql:{expr}"), &[("n", n)]);
        assert!(check_n("n BETWEEN 1 AND 3", "1"));
        assert!(check_n("n BETWEEN 1 AND 3", "2.5"));
        assert!(check_n("n BETWEEN 1 AND 3", "3"));
        assert!(!check_n("n BETWEEN 1 AND 3", "3.01"));
        assert!(!check_n("n BETWEEN 1 AND 3", "0"));
        assert!(!check_n("n BETWEEN 3 AND 1", "2"));
        assert!(check_n("n NOT BETWEEN 1 AND 3", "4"));
        assert!(!check_n("n NOT BETWEEN 1 AND 3", "2"));
        assert!(check_n("n BETWEEN 'a' AND 'c'", "b"));
        assert!(!check_n("n BETWEEN 'a' AND 'c'", "cc"));
        assert!(!check("sql:n BETWEEN 1 AND 3", &[]));
        assert!(!check("sql:n NOT BETWEEN 1 AND 3", &[]));
        // A NULL bound makes it UNKNOWN even when the other bound already fails.
        assert!(!check("sql:n BETWEEN 5 AND hi", &[("n", "1")]));
        assert!(!check("sql:n NOT BETWEEN 5 AND hi", &[("n", "1")]));
        assert!(check(
            "sql:n BETWEEN lo AND hi",
            &[("n", "5"), ("lo", "4"), ("hi", "10")]
        ));
    }

    #[test]
    fn sql_in() {
        let f = "sql:tag IN ('vip5', 'vip6')";
        assert!(check(f, &tag("vip5")));
        assert!(check(f, &tag("vip6")));
        assert!(!check(f, &tag("vip7")));
        assert!(!check(f, &[]));
        let f = "sql:tag NOT IN ('vip5', 'vip6')";
        assert!(!check(f, &tag("vip5")));
        assert!(check(f, &tag("vip7")));
        assert!(!check(f, &[]));
        assert!(check("sql:n IN (1, 2, 3)", &[("n", "2.0")]));
        assert!(check("sql:n IN (7)", &[("n", "7")]));
        // Mixed lists: an item the value cannot be compared with is UNKNOWN, as in
        // `n = 1 OR n = 'x'`.
        assert!(check("sql:n IN (1, 'x')", &[("n", "x")]));
        assert!(!check("sql:n NOT IN (1, 'x')", &[("n", "y")]));
        assert!(check("sql:n NOT IN (1, 'x')", &[("n", "2")]));
    }

    #[test]
    fn sql_is_null() {
        assert!(check("sql:a IS NULL", &[]));
        assert!(!check("sql:a IS NULL", &[("a", "")]));
        assert!(check("sql:a IS NOT NULL", &[("a", "")]));
        assert!(!check("sql:a IS NOT NULL", &[]));
        assert!(!check("sql:'x' IS NULL", &[]));
        assert!(check("sql:NOT a IS NULL", &[("a", "1")]));
    }

    #[test]
    fn sql_booleans() {
        for (v, want) in [
            ("true", true),
            ("TRUE", true),
            ("True", true),
            ("false", false),
        ] {
            assert_eq!(check("sql:flag = TRUE", &[("flag", v)]), want, "{v}");
            assert_eq!(check("sql:flag <> true", &[("flag", v)]), !want, "{v}");
            assert_eq!(check("sql:FALSE = flag", &[("flag", v)]), !want, "{v}");
        }
        for v in ["yes", "1", "", " true"] {
            assert!(!check("sql:flag = TRUE", &[("flag", v)]), "{v:?}");
            assert!(!check("sql:flag <> TRUE", &[("flag", v)]), "{v:?}");
        }
        assert!(!check("sql:flag = TRUE", &[]));
        assert!(check("sql:flag IN (TRUE)", &[("flag", "true")]));
        assert!(check("sql:TRUE", &[]));
        assert!(!check("sql:FALSE", &[]));
        assert!(check("sql:NOT FALSE", &[]));
        assert!(check("sql:TRUE AND a IS NULL", &[]));
        assert!(check("sql:TRUE = TRUE", &[]));
        assert!(check("sql:'TRUE' = true", &[]));
    }

    #[test]
    fn sql_two_literals_and_two_headers() {
        assert!(check("sql:1 = 1.0", &[]));
        assert!(check("sql:2 > 1", &[]));
        assert!(check("sql:'b' > 'a'", &[]));
        assert!(check("sql:'10' < '9'", &[]));
        assert!(check("sql:'10' > 9", &[]));
        assert!(!check("sql:'x' = 1", &[]));
        assert!(!check("sql:'x' <> 1", &[]));
        // Two headers: numbers when both read as numbers, else strings.
        assert!(check("sql:a > b", &[("a", "10"), ("b", "9")]));
        assert!(check("sql:a = b", &[("a", "1.0"), ("b", "1")]));
        assert!(check("sql:a < b", &[("a", "10"), ("b", "9x")]));
        assert!(check("sql:a = b", &[("a", "x"), ("b", "x")]));
        assert!(!check("sql:a = b", &[("a", "x")]));
        assert!(!check("sql:a <> b", &[("a", "x")]));
    }

    // ---- SQL: NULL and three-valued logic ----

    #[test]
    fn sql_null_is_unknown() {
        let none: [(&str, &str); 0] = [];
        assert!(!check("sql:a = 1", &none));
        assert!(!check("sql:a <> 1", &none));
        assert!(!check("sql:NOT (a = 1)", &none));
        assert!(!check("sql:NOT NOT (a = 1)", &none));
        assert!(!check("sql:a < 'x'", &none));
        assert!(check("sql:a IS NULL", &none));
        assert!(check("sql:NOT (a = 1)", &[("a", "2")]));
    }

    #[test]
    fn sql_three_valued_and_or() {
        // a is missing (UNKNOWN), b is given.
        let rec = [("b", "2")];
        let cases = [
            ("a = 1 OR b = 2", true),         // UNKNOWN OR TRUE
            ("a = 1 OR b = 3", false),        // UNKNOWN OR FALSE
            ("a = 1 AND b = 2", false),       // UNKNOWN AND TRUE
            ("a = 1 AND b = 3", false),       // UNKNOWN AND FALSE
            ("NOT (a = 1 AND b = 3)", true),  // NOT FALSE
            ("NOT (a = 1 AND b = 2)", false), // NOT UNKNOWN
            ("NOT (a = 1 OR b = 3)", false),  // NOT UNKNOWN
            ("NOT (a = 1 OR b = 2)", false),  // NOT TRUE
            ("b = 3 AND a = 1 OR b = 2", true),
            ("(a = 1 OR a IS NULL) AND b = 2", true),
        ];
        for (expr, want) in cases {
            assert_eq!(check(&format!("sql:{expr}"), &rec), want, "{expr}");
        }
    }

    #[test]
    fn sql_precedence() {
        // OR < AND < NOT < comparison.
        let rec = [("a", "1"), ("b", "0"), ("c", "0")];
        assert!(check("sql:a = 1 OR b = 1 AND c = 1", &rec));
        assert!(!check("sql:(a = 1 OR b = 1) AND c = 1", &rec));
        assert!(check("sql:NOT b = 1 AND NOT c = 1", &rec));
        assert!(!check("sql:NOT (b = 0 AND c = 1) AND a = 2", &rec));
        assert!(!check("sql:NOT a = 1 AND b = 1", &rec));
        assert!(check("sql:NOT a = 1 OR a = 1", &rec));
        assert!(check("sql:c = 1 AND b = 1 OR a = 1", &rec));
    }

    #[test]
    fn sql_example_from_docs() {
        let f = "sql:region = 'eu' AND (price > 10 OR tag IN ('vip5','vip6'))";
        assert!(check(f, &[("region", "eu"), ("price", "11")]));
        assert!(check(
            f,
            &[("region", "eu"), ("price", "1"), (TAG_HEADER, "vip6")]
        ));
        assert!(!check(
            f,
            &[("region", "eu"), ("price", "1"), (TAG_HEADER, "vip7")]
        ));
        assert!(!check(f, &[("region", "us"), ("price", "11")]));
        let parsed = parse(f);
        assert!(!parsed.matches_all());
        assert_eq!(parsed.tags(), None);
    }

    #[test]
    fn sql_keywords_ignore_case() {
        let rec = [("a", "1"), ("b", "2")];
        assert!(check(
            "sql:a = 1 and b between 1 AnD 3 oR c iS nOt NuLl",
            &rec
        ));
        assert!(check(
            "SQL:a in (1) AND b not in (1) AND c is null AND tRuE",
            &rec
        ));
        assert!(check("  Sql:  a = 1", &rec));
    }

    #[test]
    fn sql_header_names() {
        assert!(check("sql:tag = 'x'", &tag("x")));
        assert!(check("sql:TAG = 'x'", &tag("x")));
        assert!(check("sql:Tag IS NOT NULL", &tag("x")));
        assert!(check("sql:mq.tag = 'x'", &tag("x")));
        assert!(!check("sql:tag = 'x'", &[("tag", "x")]));
        // Other header names are case-sensitive, and may hold `.`, `_` and digits.
        assert!(!check("sql:Region = 'eu'", &[("region", "eu")]));
        assert!(check("sql:_a.b_2 = 'v'", &[("_a.b_2", "v")]));
    }

    #[test]
    fn sql_string_literals() {
        assert!(check("sql:name = 'it''s'", &[("name", "it's")]));
        assert!(check("sql:name = ''''", &[("name", "'")]));
        assert!(check("sql:name = ''", &[("name", "")]));
        assert!(check(
            "sql:name = 'a  b ( ) AND ,'",
            &[("name", "a  b ( ) AND ,")]
        ));
        assert!(check("sql:name = 'héllo ✓'", &[("name", "héllo ✓")]));
        assert!(check("sql:name IN ('x''y', 'z')", &[("name", "x'y")]));
    }

    // ---- limits ----

    #[test]
    fn length_limit() {
        let head = "sql:a = '";
        let fill = MAX_LEN - head.len() - 1;
        let ok = format!("{head}{}'", "x".repeat(fill));
        assert_eq!(ok.len(), MAX_LEN);
        parse(&ok);
        let over = format!("{head}{}'", "x".repeat(fill + 1));
        let e = err(&over);
        assert_eq!(e.position(), None);
        assert!(e.to_string().contains("limit is 4096"), "{e}");
        // The message does not repeat 4 KiB of filter.
        assert!(e.to_string().len() < 200);
        err(&"a||".repeat(2000));
    }

    #[test]
    fn depth_limit() {
        let nest = |n: usize| format!("sql:{}a = 1{}", "(".repeat(n), ")".repeat(n));
        assert!(check(&nest(MAX_DEPTH), &[("a", "1")]));
        assert!(err(&nest(MAX_DEPTH + 1))
            .message()
            .contains("nested deeper"));
        let nots = |n: usize| format!("sql:{}a = 1", "NOT ".repeat(n));
        assert!(check(&nots(MAX_DEPTH), &[("a", "1")]));
        err(&nots(MAX_DEPTH + 1));
        let mixed = |n: usize| format!("sql:{}a = 1{}", "NOT (".repeat(n), ")".repeat(n));
        parse(&mixed(MAX_DEPTH / 2));
        err(&mixed(MAX_DEPTH / 2 + 1));
        // Far past the limit: an error, not a stack overflow.
        err(&format!("sql:{}", "(".repeat(MAX_LEN - 4)));
        err(&format!("sql:{}a=1", "NOT ".repeat(1000)));
    }

    #[test]
    fn long_flat_chains_are_fine() {
        let terms = vec!["a = 1"; 400];
        let or = format!("sql:{}", terms.join(" OR "));
        assert!(check(&or, &[("a", "1")]));
        let and = format!("sql:{}", terms.join(" AND "));
        assert!(!check(&and, &[("a", "2")]));
    }

    #[test]
    fn in_list_limit() {
        let list = |n: usize| format!("sql:a IN ({})", vec!["1"; n].join(","));
        assert!(check(&list(MAX_IN_ITEMS), &[("a", "1")]));
        let e = err(&list(MAX_IN_ITEMS + 1));
        assert!(e.message().contains("IN list longer than 1024"), "{e}");
    }

    // ---- bad input ----

    #[test]
    fn bad_sql_is_an_error() {
        let bad = [
            "sql:",
            "sql:   ",
            "sql:a = 'open",
            "sql:a = 'it''s",
            "sql:(a = 1",
            "sql:((a = 1)",
            "sql:a = 1)",
            "sql:()",
            "sql:a = 1 b",
            "sql:a = 1 b = 2",
            "sql:a = 1 AND",
            "sql:OR a = 1",
            "sql:a",
            "sql:tag",
            "sql:'x'",
            "sql:5",
            "sql:(a)",
            "sql:a == 1",
            "sql:a != 1",
            "sql:a ! 1",
            "sql:a ~ 1",
            "sql:a => 1",
            "sql:a =< 1",
            "sql:a LIKE 'x%'",
            "sql:a NOT LIKE 'x'",
            "sql:a NOT = 1",
            "sql:a = NULL",
            "sql:NULL IS NULL",
            "sql:a IS 1",
            "sql:a IS NOT",
            "sql:a BETWEEN 1",
            "sql:a BETWEEN 1 OR 2",
            "sql:a IN ()",
            "sql:a IN (b)",
            "sql:a IN ('x',)",
            "sql:a IN 'x'",
            "sql:a IN ('x'",
            "sql:a = 1.",
            "sql:a = .5",
            "sql:a = 1.2.3",
            "sql:a = 12ab",
            "sql:a = - 1",
            "sql:a = -",
            "sql:a = 1e5",
            "sql:a = \"x\"",
            "sql:1a = 1",
            "sql:a = 1 ;",
            "sql:a = 1 AND AND b = 1",
            "sql:NOT",
            "sql:a < TRUE",
            "sql:a BETWEEN FALSE AND TRUE",
            "sql:TRUE = 1",
            "sql:1 IN (TRUE)",
            "sql:TRUE IN (1)",
            "sql:é = 1",
        ];
        for text in bad {
            let e = err(text);
            assert!(!e.message().is_empty());
            if let Some(pos) = e.position() {
                assert!(pos <= text.len(), "{text:?}: {e}");
            }
        }
    }

    #[test]
    fn error_messages_point_at_the_problem() {
        let e = err("sql:a = 'open");
        assert_eq!(
            e.to_string(),
            "filter 'sql:a = 'open': unclosed string literal at byte 8"
        );
        let e = err("sql:a = 1 b");
        assert_eq!(e.position(), Some(10));
        assert!(e.message().contains("found 'b'"), "{e}");
        let e = err("sql:a");
        assert!(e.message().contains("found the end"), "{e}");
        assert_eq!(
            err("sql:a != 1").message(),
            "unknown operator '!=' (use '<>')"
        );
        assert_eq!(err("sql:(a = 1").position(), Some(10));
        assert_eq!(err(" sql: ").position(), Some(5));
        let e = err("sql:a ~ 1");
        assert_eq!(
            e.to_string(),
            "filter 'sql:a ~ 1': unexpected character '~' at byte 6"
        );
    }

    #[test]
    fn hand_built_filters_evaluate() {
        let f = Filter::Tags(vec!["z".to_owned(), "a".to_owned()]);
        assert!(f.matches(lookup(&tag("a"))));
        assert!(Filter::All.matches_all());
        assert!(Filter::All.matches(lookup(&[])));
    }

    // ---- never panics ----

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn garbage_never_panics() {
        const PIECES: &[&str] = &[
            "sql:",
            "SQL:",
            "a",
            "tag",
            "mq.tag",
            "b.c",
            " ",
            "  ",
            "(",
            ")",
            "((",
            "))",
            ",",
            "'",
            "''",
            "'x'",
            "'it''s'",
            "=",
            "<>",
            "<",
            ">",
            "<=",
            ">=",
            "==",
            "!=",
            "!",
            "-",
            "0",
            "1",
            "-1",
            "2.5",
            "1.",
            ".",
            "9223372036854775808",
            "AND",
            "OR",
            "NOT",
            "and",
            "BETWEEN",
            "IN",
            "IS",
            "NULL",
            "TRUE",
            "FALSE",
            "LIKE",
            "||",
            "|",
            "*",
            "é",
            "✓",
            "\t",
            "\n",
            "\0",
            "\u{feff}",
            "_",
            "x1",
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let records: [&[(&str, &str)]; 4] = [
            &[],
            &[("a", "1"), ("b", "x"), (TAG_HEADER, "a")],
            &[("a", "true"), ("b.c", "-2.5"), ("x1", "'")],
            &[("a", "9223372036854775807"), ("tag", "1"), (TAG_HEADER, "")],
        ];
        let mut parsed = 0;
        for round in 0..30_000 {
            let text = if round % 4 == 0 {
                // Raw bytes, made UTF-8 the way a broker would see a client's string.
                let len = rng.below(40);
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let prefix = if rng.below(2) == 0 { "sql:" } else { "" };
                format!("{prefix}{}", String::from_utf8_lossy(&bytes))
            } else {
                let count = rng.below(24);
                let mut text = String::new();
                if rng.below(3) > 0 {
                    text.push_str("sql:");
                }
                for _ in 0..count {
                    text.push_str(PIECES[rng.below(PIECES.len())]);
                    if rng.below(2) == 0 {
                        text.push(' ');
                    }
                }
                text
            };
            match Filter::parse(&text) {
                Ok(f) => {
                    parsed += 1;
                    for rec in records {
                        f.matches(lookup(rec));
                    }
                    let _ = (f.matches_all(), f.tags());
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        // The generator must also reach the evaluator, not only the error paths.
        assert!(parsed > 1000, "only {parsed} inputs parsed");
    }
}
