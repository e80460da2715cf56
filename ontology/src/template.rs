//! Templates written by tenants (display titles, numbers), rendered with minijinja.
//!
//! Tenant templates are untrusted, so every render is bounded: a fuel limit caps the number of
//! instructions (loops included) and the output is written into a buffer that refuses to grow
//! past [`MAX_TEMPLATE_OUTPUT`] bytes. The configuration (fuel, the `pad` filter, forgiving
//! undefined values, no auto-escaping) lives in one shared base environment built once.
//!
//! A [`Template`] is parsed once, when it is created: it owns a clone of the base environment
//! holding just its own compiled template (minijinja's `Template` handle borrows its
//! environment, so this is how an owned, `'static`, `Send + Sync` compiled template is kept
//! without unsafe self-references). A clone of the base shares its filters through `Arc`s.

use std::io;
use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

/// Instructions one render may execute. Titles and numbers need a few dozen; this leaves room
/// for loops over an order's lines while stopping a runaway template within milliseconds.
pub const TEMPLATE_FUEL: u64 = 50_000;

/// Bytes one render may output.
pub const MAX_TEMPLATE_OUTPUT: usize = 4096;

/// Widest `pad` accepted, so `pad(1000000000)` cannot allocate.
const MAX_PAD_WIDTH: usize = 64;

/// The shared configuration every [`Template`] is compiled in.
fn base() -> &'static Environment<'static> {
    static BASE: OnceLock<Environment<'static>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut env = Environment::new();
        env.set_fuel(Some(TEMPLATE_FUEL));
        // Chainable: `{{ customer.name }}` renders empty when `customer` is missing, rather
        // than failing the request that wanted a title.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Titles and numbers are plain text; the studio escapes on display.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_filter("pad", pad);
        env
    })
}

/// `{{ seq | pad(6) }}` → `000123`: left-pads an integer (sign kept in front) or a string
/// with zeros to `width` characters.
fn pad(value: Value, width: usize) -> Result<String, Error> {
    if width > MAX_PAD_WIDTH {
        return Err(Error::new(ErrorKind::InvalidOperation, format!("pad width must be at most {MAX_PAD_WIDTH}")));
    }
    if let Ok(n) = i64::try_from(value.clone()) {
        return Ok(format!("{n:0width$}"));
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count();
        return Ok(format!("{}{s}", "0".repeat(width.saturating_sub(len))));
    }
    Err(Error::new(ErrorKind::InvalidOperation, format!("pad expects an integer or a string, got {}", value.kind())))
}

/// A parsed template: its source and its compiled form, rendered with the shared limits.
#[derive(Clone)]
pub struct Template {
    name: String,
    source: String,
    env: Environment<'static>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").field("name", &self.name).field("source", &self.source).finish_non_exhaustive()
    }
}

impl Template {
    /// Parses `source`. `name` appears in error messages (e.g. `title`).
    pub fn parse(name: &str, source: &str) -> Result<Template, Error> {
        let mut env = base().clone();
        env.add_template_owned(name.to_owned(), source.to_owned())?;
        Ok(Template { name: name.to_owned(), source: source.to_owned(), env })
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables the template reads from its context, found statically: dotted paths of
    /// attribute lookups (`customer.name`, `seq`), without the template's own variables (`set`,
    /// loop variables) and the environment's globals (`range`, `dict`, …). Used by
    /// `tenant validate` to check them against the fields of the type.
    pub fn variables(&self) -> std::collections::BTreeSet<String> {
        let Ok(template) = self.env.get_template(&self.name) else {
            return std::collections::BTreeSet::new();
        };
        template
            .undeclared_variables(true)
            .into_iter()
            .filter(|path| {
                let root = path.split('.').next().unwrap_or_default();
                !self.env.globals().any(|(global, _)| global == root)
            })
            .collect()
    }

    /// Renders over `ctx`, within [`TEMPLATE_FUEL`] and [`MAX_TEMPLATE_OUTPUT`].
    pub fn render<S: Serialize>(&self, ctx: S) -> Result<String, Error> {
        let template = self.env.get_template(&self.name)?;
        let mut out = BoundedBuf::default();
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => {}
            Err(_) if out.overflowed => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("output is longer than {MAX_TEMPLATE_OUTPUT} bytes"),
                ))
            }
            Err(err) => return Err(err),
        }
        // minijinja writes only whole `str`s, so the bytes are UTF-8.
        String::from_utf8(out.buf).map_err(|err| Error::new(ErrorKind::InvalidOperation, err.to_string()))
    }
}

/// A byte buffer that fails writes past [`MAX_TEMPLATE_OUTPUT`], aborting the render before a
/// template can use up memory.
#[derive(Default)]
struct BoundedBuf {
    buf: Vec<u8>,
    overflowed: bool,
}

impl io::Write for BoundedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_TEMPLATE_OUTPUT {
            self.overflowed = true;
            return Err(io::Error::other("template output too long"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    #[test]
    fn renders_with_pad() {
        let t = Template::parse("number", "ORD-{{ year }}-{{ seq | pad(6) }}").unwrap();
        assert_eq!(t.render(json!({ "year": "2026", "seq": 123 })).unwrap(), "ORD-2026-000123");
        let t = Template::parse("t", "{{ n | pad(3) }}|{{ s | pad(4) }}|{{ big | pad(2) }}").unwrap();
        assert_eq!(t.render(json!({ "n": -7, "s": "42", "big": 12345 })).unwrap(), "-07|0042|12345");
    }

    #[test]
    fn pad_refuses_bad_input() {
        let t = Template::parse("t", "{{ x | pad(3) }}").unwrap();
        assert!(t.render(json!({ "x": [1] })).is_err());
        let t = Template::parse("t", "{{ 1 | pad(100000) }}").unwrap();
        assert!(t.render(json!({})).is_err());
    }

    #[test]
    fn undefined_is_forgiving() {
        let t = Template::parse("title", "[{{ missing }}{{ customer.name }}]").unwrap();
        assert_eq!(t.render(json!({})).unwrap(), "[]");
    }

    #[test]
    fn syntax_errors_fail_parse() {
        let err = Template::parse("title", "{{ order_number ").unwrap_err();
        assert!(err.to_string().contains("title"), "{err}");
    }

    #[test]
    fn variables_are_found_statically() {
        let t = Template::parse(
            "title",
            "{{ code }} {{ customer.name | upper }} {% set x = 1 %}{{ x }}{% for i in range(3) %}{{ i }}{{ loop.index }}{% endfor %}{{ seq | pad(6) }}",
        )
        .unwrap();
        let vars: Vec<String> = t.variables().into_iter().collect();
        assert_eq!(vars, ["code", "customer.name", "seq"]);
    }

    #[test]
    fn no_html_escaping() {
        let t = Template::parse("title.html", "{{ x }}").unwrap();
        assert_eq!(t.render(json!({ "x": "A & <B>" })).unwrap(), "A & <B>");
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let started = Instant::now();
        let t = Template::parse(
            "title",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        )
        .unwrap();
        let err = t.render(json!({})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfFuel, "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn output_is_bounded() {
        let t = Template::parse("title", "{{ 'x' * 100000 }}").unwrap();
        let err = t.render(json!({})).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
