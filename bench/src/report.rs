//! The report: tables printed aligned on stdout and written as markdown, plus number formatting.

use std::fmt::Write as _;

/// A table with a header row; every row has as many cells as the header.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns (by index) aligned right: numbers.
    pub right: Vec<usize>,
}

impl Table {
    pub fn new(headers: &[&str], right: &[usize]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new(), right: right.to_vec() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                if let Some(slot) = w.get_mut(i) {
                    *slot = (*slot).max(c.chars().count());
                }
            }
        }
        w
    }

    fn cell(&self, i: usize, text: &str, width: usize) -> String {
        let pad = width.saturating_sub(text.chars().count());
        if self.right.contains(&i) {
            format!("{}{text}", " ".repeat(pad))
        } else {
            format!("{text}{}", " ".repeat(pad))
        }
    }

    /// Aligned plain text, columns separated by two spaces, a dashed line under the header.
    pub fn to_text(&self) -> String {
        let w = self.widths();
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| self.cell(i, c, w.get(i).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = line(&self.headers);
        out.push('\n');
        out.push_str(&w.iter().map(|n| "-".repeat(*n)).collect::<Vec<_>>().join("  "));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured markdown table (numeric columns right-aligned).
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = format!("| {} |\n|", self.headers.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | "));
        for i in 0..self.headers.len() {
            out.push_str(if self.right.contains(&i) { " ---: |" } else { " --- |" });
        }
        out.push('\n');
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | "));
        }
        out
    }
}

/// One block of the report.
#[derive(Debug, Clone)]
pub enum Block {
    Heading(String),
    Text(String),
    /// Lines shown verbatim (a code block in markdown).
    Lines(Vec<String>),
    Table(Table),
}

/// The whole report, in order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub blocks: Vec<Block>,
}

impl Report {
    pub fn heading(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Heading(s.into()));
    }
    pub fn text(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Text(s.into()));
    }
    pub fn lines(&mut self, lines: Vec<String>) {
        self.blocks.push(Block::Lines(lines));
    }
    pub fn table(&mut self, t: Table) {
        self.blocks.push(Block::Table(t));
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for b in &self.blocks {
            match b {
                Block::Heading(h) => {
                    let _ = writeln!(out, "\n== {h} ==\n");
                }
                Block::Text(t) => {
                    let _ = writeln!(out, "{t}\n");
                }
                Block::Lines(lines) => {
                    for l in lines {
                        let _ = writeln!(out, "{l}");
                    }
                    out.push('\n');
                }
                Block::Table(t) => {
                    out.push_str(&t.to_text());
                    out.push('\n');
                }
            }
        }
        out
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# Switchyard benchmark report\n\n");
        for b in &self.blocks {
            match b {
                Block::Heading(h) => {
                    let _ = writeln!(out, "## {h}\n");
                }
                Block::Text(t) => {
                    let _ = writeln!(out, "{t}\n");
                }
                Block::Lines(lines) => {
                    out.push_str("```text\n");
                    for l in lines {
                        let _ = writeln!(out, "{l}");
                    }
                    out.push_str("```\n\n");
                }
                Block::Table(t) => {
                    out.push_str(&t.to_markdown());
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// A duration in nanoseconds as `734 ns`, `12.3 µs`, `4.56 ms` or `1.20 s`.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "-".into();
    }
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.3} µs", ns / 1_000.0).trim_zeros_to(3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.3} ms", ns / 1_000_000.0).trim_zeros_to(3)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

/// A duration in microseconds (see [`fmt_ns`]).
pub fn fmt_us(us: u64) -> String {
    fmt_ns(us as f64 * 1_000.0)
}

/// Three significant digits for values with a unit suffix.
trait SigDigits {
    fn trim_zeros_to(self, sig: usize) -> String;
}

impl SigDigits for String {
    /// `"12.345 µs"` → `"12.3 µs"`: keep `sig` significant digits of the number before the unit.
    fn trim_zeros_to(self, sig: usize) -> String {
        let Some((num, unit)) = self.split_once(' ') else { return self };
        let Ok(v) = num.parse::<f64>() else { return self };
        let int_digits = if v >= 1.0 { (v.log10().floor() as usize) + 1 } else { 1 };
        let decimals = sig.saturating_sub(int_digits);
        format!("{v:.decimals$} {unit}")
    }
}

/// Transactions per second, rounded sensibly.
pub fn fmt_tps(tps: f64) -> String {
    if tps >= 100.0 {
        format!("{tps:.0}")
    } else {
        format!("{tps:.1}")
    }
}

/// A ratio as a percentage (`61%`) or a factor (`1.8×`).
pub fn fmt_pct(r: f64) -> String {
    if r.is_finite() {
        format!("{:.0}%", r * 100.0)
    } else {
        "-".into()
    }
}

/// A share to a tenth of a percent (`74.5%`): what a target's verdict is read from, where a
/// whole percent could show `75%` for a share just under 75%.
pub fn fmt_share(r: f64) -> String {
    if r.is_finite() {
        format!("{:.1}%", r * 100.0)
    } else {
        "-".into()
    }
}

pub fn fmt_factor(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "-".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations_with_three_digits() {
        assert_eq!(fmt_ns(734.2), "734 ns");
        assert_eq!(fmt_ns(12_345.0), "12.3 µs");
        assert_eq!(fmt_ns(1_234.0), "1.23 µs");
        assert_eq!(fmt_ns(4_560_000.0), "4.56 ms");
        assert_eq!(fmt_ns(123_400_000.0), "123 ms");
        assert_eq!(fmt_us(1500), "1.50 ms");
    }

    #[test]
    fn tables_align_and_render_markdown() {
        let mut t = Table::new(&["what", "n"], &[1]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["bbb".into(), "100".into()]);
        assert_eq!(t.to_text(), "what    n\n----  ---\na       1\nbbb   100\n");
        assert_eq!(t.to_markdown(), "| what | n |\n| --- | ---: |\n| a | 1 |\n| bbb | 100 |\n");
    }
}
