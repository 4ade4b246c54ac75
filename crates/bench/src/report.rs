//! The report's sections (what `--only` selects) and how a partial run's sections replace
//! their namesakes in an existing `docs/benchmarks.md` while the others are kept.

/// A part of the benchmark run, with its `## ` heading in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Event log appends and reads.
    Log,
    /// `POST /api/v1/auth/login`.
    Login,
    /// Trending ingestion, freshness and queries.
    Trending,
    /// Upload to playback: plain ffmpeg ladder vs the platform (time to first play, full ladder).
    Ladder,
    /// tus upload throughput on loopback vs `cp`.
    Tus,
    /// The like write path: likes/s and the lag of the stored counters.
    Likes,
    /// The following feed: hybrid read vs pure pull, fan-out.
    Feed,
    /// Full-text search: Tantivy + jieba vs SQLite FTS5 (trigram).
    Search,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 8] = [
        Section::Log,
        Section::Login,
        Section::Trending,
        Section::Ladder,
        Section::Tus,
        Section::Likes,
        Section::Feed,
        Section::Search,
    ];

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            Section::Log => "log",
            Section::Login => "login",
            Section::Trending => "trending",
            Section::Ladder => "ladder",
            Section::Tus => "tus",
            Section::Likes => "likes",
            Section::Feed => "feed",
            Section::Search => "search",
        }
    }

    /// How the section's heading starts (how an existing report's block is recognised).
    pub fn heading(self) -> &'static str {
        match self {
            Section::Log => "## Event log",
            Section::Login => "## Login",
            Section::Trending => "## Trending",
            Section::Ladder => "## Upload to playback",
            Section::Tus => "## tus upload throughput",
            Section::Likes => "## Likes",
            Section::Feed => "## Following feed",
            Section::Search => "## Search",
        }
    }

    fn of_heading(line: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| line.starts_with(s.heading()))
    }
}

/// Where and when a section was measured (sections re-measured alone carry their own).
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub machine: String,
    pub date: String,
    pub command: String,
}

/// Splits a report into its preamble and its `## ` blocks.
fn blocks(text: &str) -> (String, Vec<String>) {
    let mut preamble = String::new();
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            out.push(String::new());
        }
        let target = match out.last_mut() {
            Some(block) => block,
            None => &mut preamble,
        };
        target.push_str(line);
        target.push('\n');
    }
    (preamble, out)
}

/// The report: `header` and the `fresh` sections, or, given the `existing` report, its
/// preamble and blocks with the `fresh` sections put in their place (in report order;
/// blocks this tool does not know stay at the end).
pub fn assemble(header: &str, existing: Option<&str>, fresh: &[(Section, String)]) -> String {
    let (preamble, old) = match existing {
        Some(text) => blocks(text),
        None => (header.to_owned(), Vec::new()),
    };
    let mut parts = vec![preamble.trim_end().to_owned()];
    for section in Section::ALL {
        if let Some((_, text)) = fresh.iter().find(|(s, _)| *s == section) {
            parts.push(text.trim_end().to_owned());
        } else if let Some(block) = old
            .iter()
            .find(|b| Section::of_heading(b.lines().next().unwrap_or("")) == Some(section))
        {
            parts.push(block.trim_end().to_owned());
        }
    }
    for block in &old {
        if Section::of_heading(block.lines().next().unwrap_or("")).is_none() {
            parts.push(block.trim_end().to_owned());
        }
    }
    let mut report = parts.join("\n\n");
    report.push('\n');
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_sections_replace_their_namesakes_and_the_rest_is_kept() {
        let old = "# Benchmarks\n\n- Date: then\n\n## Event log (x)\n\nold log\n\n## Login (y)\n\nold login\n\n## Something else\n\nkept\n";
        let fresh = vec![
            (Section::Login, "## Login (y)\n\nnew login\n".to_owned()),
            (Section::Tus, "## tus upload throughput\n\nnew tus\n".to_owned()),
        ];
        let merged = assemble("# ignored\n", Some(old), &fresh);
        assert_eq!(
            merged,
            "# Benchmarks\n\n- Date: then\n\n## Event log (x)\n\nold log\n\n## Login (y)\n\nnew login\n\n## tus upload throughput\n\nnew tus\n\n## Something else\n\nkept\n"
        );
    }

    #[test]
    fn without_an_existing_report_the_header_leads() {
        let fresh = vec![(Section::Log, "## Event log\n\nfigures\n".to_owned())];
        assert_eq!(
            assemble("# B\n\n- Date: now\n", None, &fresh),
            "# B\n\n- Date: now\n\n## Event log\n\nfigures\n"
        );
    }
}
