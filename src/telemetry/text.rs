//! Families written straight into the text exposition when scraped.
//!
//! Why not the prometheus crate's collectors for these: a collector builds a label child
//! (with its own copy of the description and label pairs) and then a protobuf message
//! per series, only for the encoder to print them. The scene families have a series per
//! scene, and `pullkeeper_players` one per project, role and state: 169,000 series at
//! 1,000 projects, and each scrape held about 100 MiB for them at once (BENCHMARKS.md,
//! scale), more than anything else in the process at its peak. Written here, a scrape
//! costs its text.

use std::fmt::Write as _;

/// Something that appends whole metric families to a scrape, in parts: a scrape is
/// made and sent one part at a time (see `scrape`), so a part is what it holds at once.
pub trait TextFamilies: Send + Sync {
    /// How many parts it writes.
    fn parts(&self) -> usize;
    /// Appends part `part` (below [`TextFamilies::parts`]): whole families, possibly
    /// none.
    fn write_part(&self, part: usize, out: &mut String);
}

/// Appends the `# HELP` and `# TYPE` lines of a gauge family.
pub fn gauge_header(out: &mut String, name: &str, help: &str) {
    let help = help.replace('\\', r"\\").replace('\n', r"\n");
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
}

/// Appends one sample: `name{label="value",...} value`.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: i64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format wants it: backslash, double quote and line feed
/// escaped.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = String::new();
        gauge_header(&mut out, "g", "a \\ b\nc");
        sample(&mut out, "g", &[("scene", "x\"y\\z\nw"), ("role", "m")], -1);
        sample(&mut out, "g", &[], 3);
        assert_eq!(
            out,
            "# HELP g a \\\\ b\\nc\n# TYPE g gauge\n\
             g{scene=\"x\\\"y\\\\z\\nw\",role=\"m\"} -1\ng 3\n"
        );
    }
}
