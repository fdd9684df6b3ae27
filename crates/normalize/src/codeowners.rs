//! A repository's `CODEOWNERS` file → one `codeowners` snapshot object holding its rules,
//! plus the matcher that says who owns a path (GitHub semantics).
//!
//! ```json
//! {"kind": "codeowners", "id": "<repo root>", "scope": null,
//!  "doc": {"file": "<path>", "root": "<repo root>",
//!          "rules": [{"pattern": "/infra/", "owners": ["@acme/platform"], "line": 3}]}}
//! ```
//!
//! The repository root is the file's path without its trailing `.github/CODEOWNERS`,
//! `docs/CODEOWNERS` or `CODEOWNERS` (`.` when nothing is left). Lines are `pattern
//! owner…`; owners are `@user`, `@org/team` or e-mail addresses; `#` starts a comment (at
//! the start of a line, or as a token of its own after the owners); a pattern without
//! owners is valid and un-owns what it matches. As on GitHub, a line with invalid syntax
//! is skipped — here with a diagnostic for that line — and the rest of the file still counts.
//!
//! Matching ([`matches`], [`owners_for`]) follows GitHub's documented rules, which are
//! gitignore's with two differences: the last matching rule wins, and a pattern ending in
//! `/*` matches only the files directly in that directory.

use keyward_model::Reason;
use keyward_model::{Diagnostic, SnapshotObject};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Context, Output, Sink};

/// One `pattern owner…` line. `owners` is empty for a pattern that un-owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub pattern: String,
    pub owners: Vec<String>,
    /// 1-based line in the file.
    pub line: u64,
}

pub fn normalize(doc: &[u8], ctx: &Context, sink: &mut dyn Sink) {
    let file = ctx.path.as_deref().unwrap_or("-");
    let root = ctx
        .path
        .as_deref()
        .map_or_else(|| ".".to_owned(), repo_root);
    let (rules, diagnostics) = parse(doc);
    for d in diagnostics {
        sink.reject(d);
    }
    sink.accept(Output {
        objects: vec![SnapshotObject {
            kind: "codeowners".into(),
            id: root.clone(),
            scope: None,
            doc: json!({"file": file, "root": root, "rules": rules}),
        }],
        ..Output::default()
    });
}

/// The repository root a `CODEOWNERS` file at `path` applies to.
pub fn repo_root(path: &str) -> String {
    let root = [".github/CODEOWNERS", "docs/CODEOWNERS", "CODEOWNERS"]
        .iter()
        .find_map(|suffix| {
            let dir = path.strip_suffix(suffix)?;
            (dir.is_empty() || dir.ends_with('/')).then_some(dir)
        })
        .unwrap_or(path);
    match root.trim_end_matches('/') {
        "" if root.starts_with('/') => "/".to_owned(),
        "" => ".".to_owned(),
        r => r.to_owned(),
    }
}

/// Parses a whole file: the valid rules in order, and one diagnostic per invalid line.
pub fn parse(doc: &[u8]) -> (Vec<Rule>, Vec<Diagnostic>) {
    let doc = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
    let mut rules = Vec::new();
    let mut diagnostics = Vec::new();
    for (i, raw) in doc.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let result = std::str::from_utf8(raw)
            .map_err(|_| Reason::from("not UTF-8 text"))
            .and_then(parse_line);
        match result {
            Ok(Some((pattern, owners))) => rules.push(Rule {
                pattern,
                owners,
                line,
            }),
            Ok(None) => {}
            Err(reason) => diagnostics.push(Diagnostic {
                line,
                record: None,
                reason,
            }),
        }
    }
    (rules, diagnostics)
}

/// One line: `None` for blanks and comments.
fn parse_line(text: &str) -> Result<Option<(String, Vec<String>)>, Reason> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    // The pattern runs to the first whitespace not escaped with `\`.
    let mut end = text.len();
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c.is_whitespace() {
            end = i;
            break;
        }
    }
    let (pattern, rest) = text.split_at(end);
    if pattern.starts_with('!') {
        return Err("the pattern's negation (`!`) is not supported in CODEOWNERS".into());
    }
    if pattern.contains('[') {
        return Err(
            "the pattern's character ranges (`[…]`) are not supported in CODEOWNERS".into(),
        );
    }
    if pattern.contains("***") {
        return Err("the pattern has three consecutive `*`".into());
    }
    if pattern.trim_matches('/').is_empty() {
        return Err("the pattern matches nothing".into());
    }
    let mut owners = Vec::new();
    for token in rest.split_whitespace() {
        if token.starts_with('#') {
            break;
        }
        if !is_owner(token) {
            return Err("an owner is not a `@user`, an `@org/team` or an e-mail address".into());
        }
        owners.push(token.to_owned());
    }
    Ok(Some((pattern.to_owned(), owners)))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `@user`, `@org/team`, or `local@domain.tld`.
fn is_owner(token: &str) -> bool {
    if let Some(handle) = token.strip_prefix('@') {
        return match handle.split_once('/') {
            Some((org, team)) => is_name(org) && is_name(team),
            None => is_name(handle),
        };
    }
    match token.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !token.contains('/')
        }
        None => false,
    }
}

/// The owners of `path` (relative to the repository root, `/`-separated): those of the
/// last rule that matches it. `None` when no rule matches; an empty slice when the last
/// match is a pattern without owners (the path is explicitly un-owned).
pub fn owners_for<'a>(rules: &'a [Rule], path: &str) -> Option<&'a [String]> {
    rules
        .iter()
        .rev()
        .find(|r| matches(&r.pattern, path))
        .map(|r| r.owners.as_slice())
}

/// One path segment of a pattern.
#[derive(Debug, PartialEq)]
enum Segment<'p> {
    /// `**`: any number of segments.
    Any,
    /// A glob over one segment (`*` and `?` do not cross `/`; `\` escapes).
    Glob(&'p str),
}

/// Whether a `CODEOWNERS` pattern matches `path` (relative to the repository root, with `/`
/// separators; a leading `/` or `./` on the path is ignored).
///
/// - A leading `/`, or a `/` in the middle, anchors the pattern to the root; otherwise it
///   matches at any depth (`*.tf`, `docs`, `apps/`).
/// - A trailing `/` matches a directory: everything under it, not a file of that name.
/// - A pattern whose last segment is a name or a glob also matches everything under a
///   directory it names (`docs`, `/apps/github`, `**/logs`); one ending in a lone `*`
///   matches only that directory's direct entries (`docs/*`).
/// - `*` and `?` stay within a segment; `**` spans any number of them (`**/logs`,
///   `docs/**`, `a/**/b`).
pub fn matches(pattern: &str, path: &str) -> bool {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if parts.is_empty() {
        return false;
    }
    let anchored_at_start = pattern.starts_with('/');
    let body = pattern.trim_start_matches('/');
    let directory = body.ends_with('/');
    let body = body.trim_end_matches('/');
    if body.is_empty() {
        return false;
    }
    let mut segments: Vec<Segment> = Vec::new();
    let anchored = anchored_at_start || body.contains('/');
    if !anchored {
        segments.push(Segment::Any);
    }
    for s in body.split('/').filter(|s| !s.is_empty()) {
        let seg = if s == "**" {
            Segment::Any
        } else {
            Segment::Glob(s)
        };
        // `a/**/**/b` is `a/**/b`.
        if !(seg == Segment::Any && segments.last() == Some(&Segment::Any)) {
            segments.push(seg);
        }
    }
    if directory && segments.last() != Some(&Segment::Any) {
        segments.push(Segment::Any);
    }
    // Matching a directory covers what is under it, except after a lone `*`.
    let descend = matches!(segments.last(), Some(Segment::Glob(g)) if *g != "*");
    match_segments(&segments, &parts, descend)
}

/// Whether `pattern` matches all of `path` (or, with `descend`, a leading part of it).
/// Dynamic programming over (pattern segment, path segment), so any number of `**` costs
/// at most pattern × path steps.
fn match_segments(pattern: &[Segment], path: &[&str], descend: bool) -> bool {
    let n = path.len();
    let at = |row: &[bool], k: usize| row.get(k).copied().unwrap_or(false);
    // `next[j]`: the pattern after the current segment matches `path[j..]`. Past the last
    // segment, what is left of the path must be empty, or anything when matching descends.
    let mut next: Vec<bool> = (0..=n).map(|j| j == n || descend).collect();
    for (i, seg) in pattern.iter().enumerate().rev() {
        let trailing = i + 1 == pattern.len();
        let mut cur = vec![false; n + 1];
        for j in (0..=n).rev() {
            let m = match seg {
                // A trailing `**` needs at least one segment: `docs/**` is what is under `docs`.
                Segment::Any if trailing => j < n,
                // Zero segments, or one more and still `**`.
                Segment::Any => at(&next, j) || at(&cur, j + 1),
                Segment::Glob(g) => path.get(j).is_some_and(|p| glob(g, p)) && at(&next, j + 1),
            };
            if let Some(c) = cur.get_mut(j) {
                *c = m;
            }
        }
        next = cur;
    }
    at(&next, 0)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Char(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Glob match of one segment, with `*`, `?` and `\` escapes.
fn glob(pattern: &str, name: &str) -> bool {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            '*' => Token::Star,
            '?' => Token::One,
            c => Token::Char(c),
        });
    }
    let name: Vec<char> = name.chars().collect();
    // Classic wildcard matching: on a mismatch, let the last `*` absorb one more character.
    let (mut t, mut n) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match (tokens.get(t), name.get(n)) {
            (Some(Token::Star), _) => {
                backtrack = Some((t, n));
                t += 1;
            }
            (Some(Token::One), Some(_)) => {
                t += 1;
                n += 1;
            }
            (Some(Token::Char(a)), Some(b)) if a == b => {
                t += 1;
                n += 1;
            }
            _ => match backtrack {
                Some((bt, bn)) => {
                    t = bt + 1;
                    n = bn + 1;
                    backtrack = Some((bt, bn + 1));
                }
                None => return false,
            },
        }
    }
    tokens
        .get(t..)
        .unwrap_or_default()
        .iter()
        .all(|&t| t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::Collect;

    fn check(pattern: &str, cases: &[(&str, bool)]) {
        for (path, want) in cases {
            assert_eq!(matches(pattern, path), *want, "`{pattern}` vs `{path}`");
        }
    }

    #[test]
    fn single_segment_matches_at_any_depth() {
        check(
            "docs",
            &[
                ("docs", true),
                ("docs/a.md", true),
                ("src/docs/a/b.md", true),
                ("docs.md", false),
                ("mydocs/a", false),
            ],
        );
        check(
            "*.tf",
            &[
                ("main.tf", true),
                ("infra/iam/main.tf", true),
                ("main.tfvars", false),
                ("main.tf.json", false),
            ],
        );
        check("*", &[("a", true), ("a/b/c", true)]);
        check("f?o", &[("foo", true), ("fo", false), ("fooo", false)]);
        check(r"f\*o", &[("f*o", true), ("foo", false)]);
    }

    #[test]
    fn anchoring() {
        check(
            "/docs",
            &[("docs/a", true), ("docs", true), ("x/docs/a", false)],
        );
        check(
            "infra/iam",
            &[
                ("infra/iam/main.tf", true),
                ("infra/iam", true),
                ("x/infra/iam/main.tf", false),
                ("infra/iamx", false),
            ],
        );
        check("/*", &[("a", true), ("a/b", false)]);
    }

    #[test]
    fn trailing_slash_is_a_directory() {
        check(
            "apps/",
            &[
                ("apps", false),
                ("apps/a", true),
                ("x/apps/a/b", true),
                ("appsx/a", false),
            ],
        );
        check("/*/", &[("a", false), ("a/b", true), ("a/b/c", true)]);
    }

    #[test]
    fn double_star() {
        check(
            "**/logs",
            &[
                ("logs", true),
                ("logs/a", true),
                ("build/logs/a", true),
                ("deeply/nested/logs/x.log", true),
                ("build/logsx", false),
            ],
        );
        check(
            "docs/**",
            &[("docs", false), ("docs/a", true), ("docs/a/b", true)],
        );
        check(
            "a/**/b",
            &[
                ("a/b", true),
                ("a/x/b", true),
                ("a/x/y/b/c", true),
                ("a/x/c", false),
                ("z/a/b", false),
            ],
        );
        check("**", &[("a", true), ("a/b", true)]);
        check(
            "a/**/**/**/**/**/**/**/**/z",
            &[("a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/y", false), ("a/z", true)],
        );
    }

    #[test]
    fn many_double_stars_stay_fast() {
        let pattern = format!("{}b", "**/a/".repeat(40));
        let deep = vec!["a"; 400].join("/");
        assert!(!matches(&pattern, &deep));
        assert!(matches(&pattern, &format!("{deep}/b")));
    }

    /// The example file on GitHub's "About code owners" page, with the behaviour its
    /// comments describe.
    const GITHUB_EXAMPLE: &str = "\
# These owners will be the default owners for everything in the repo.
*       @global-owner1 @global-owner2
*.js    @js-owner #This is an inline comment.
*.go docs@example.com
*.txt @octo-org/octocats
/build/logs/ @doctocat
docs/*  docs@example.com
apps/ @octocat
/docs/ @doctocat
/scripts/ @doctocat @octocat
**/logs @octocat
/apps/ @octocat
/apps/github
";

    #[test]
    fn github_documented_example() {
        let (rules, diags) = parse(GITHUB_EXAMPLE.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(rules.len(), 12);
        assert_eq!(
            rules[1],
            Rule {
                pattern: "*.js".into(),
                owners: vec!["@js-owner".into()],
                line: 3
            }
        );
        let owners = |p: &str| owners_for(&rules, p).map(<[String]>::to_vec);
        let v = |xs: &[&str]| Some(xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            owners("README.md"),
            v(&["@global-owner1", "@global-owner2"])
        );
        assert_eq!(owners("src/app.js"), v(&["@js-owner"]));
        assert_eq!(owners("main.go"), v(&["docs@example.com"]));
        assert_eq!(owners("notes/todo.txt"), v(&["@octo-org/octocats"]));
        // `/docs/` comes after `docs/*`: the last match wins, nested files included.
        assert_eq!(owners("docs/getting-started.md"), v(&["@doctocat"]));
        assert_eq!(
            owners("docs/build-app/troubleshooting.md"),
            v(&["@doctocat"])
        );
        assert_eq!(owners("scripts/deploy.sh"), v(&["@doctocat", "@octocat"]));
        // `**/logs` (later) wins over `/build/logs/` for the build logs.
        assert_eq!(owners("build/logs/out.log"), v(&["@octocat"]));
        assert_eq!(owners("deeply/nested/logs/x.log"), v(&["@octocat"]));
        assert_eq!(owners("apps/web/index.html"), v(&["@octocat"]));
        // `/apps/github` lists no owners: un-owned.
        assert_eq!(owners("apps/github/main.rb"), v(&[]));
        assert_eq!(owners_for(&rules[4..5], "docs/a.md"), None);
    }

    #[test]
    fn github_example_pattern_semantics() {
        // `docs/*` matches files directly in `docs/`, not nested ones.
        check(
            "docs/*",
            &[
                ("docs/getting-started.md", true),
                ("docs/build-app/troubleshooting.md", false),
                ("x/docs/a.md", false),
            ],
        );
        // `apps/` matches an `apps` directory anywhere.
        check("apps/", &[("apps/a", true), ("web/apps/b/c", true)]);
        // `/build/logs/` only at the root, with its subdirectories.
        check(
            "/build/logs/",
            &[
                ("build/logs/a", true),
                ("build/logs/a/b", true),
                ("x/build/logs/a", false),
            ],
        );
        check(
            "/apps/github",
            &[("apps/github/a", true), ("apps/githubx", false)],
        );
    }

    #[test]
    fn invalid_lines_are_skipped_with_a_diagnostic() {
        let text = "* @acme/platform\n!keep @bob\n/infra/ platform-team\nsrc/[ab] @x\n\n/ok @alice alice@acme.example\n";
        let (rules, diags) = parse(text.as_bytes());
        assert_eq!(rules.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 6]);
        assert_eq!(
            diags.iter().map(|d| d.line).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        // The reason names the problem, never the value (dead letters echo no values).
        assert!(
            diags[1].reason.to_string().contains("an owner is not"),
            "{}",
            diags[1].reason
        );
        assert!(
            diags
                .iter()
                .all(|d| !d.reason.to_string().contains("platform-team"))
        );
    }

    #[test]
    fn escaped_spaces_stay_in_the_pattern() {
        let (rules, diags) = parse(br"docs/My\ Notes/ @alice");
        assert!(diags.is_empty());
        assert_eq!(rules[0].pattern, r"docs/My\ Notes/");
        assert!(matches(&rules[0].pattern, "docs/My Notes/a.md"));
    }

    #[test]
    fn roots() {
        assert_eq!(repo_root("repo/.github/CODEOWNERS"), "repo");
        assert_eq!(repo_root("repo/docs/CODEOWNERS"), "repo");
        assert_eq!(
            repo_root("examples/estate/terraform/CODEOWNERS"),
            "examples/estate/terraform"
        );
        assert_eq!(repo_root("CODEOWNERS"), ".");
        assert_eq!(repo_root(".github/CODEOWNERS"), ".");
        assert_eq!(repo_root("./CODEOWNERS"), ".");
        assert_eq!(repo_root("/CODEOWNERS"), "/");
        assert_eq!(repo_root("/srv/x/CODEOWNERS"), "/srv/x");
    }

    #[test]
    fn one_object_per_file() {
        let ctx = Context::default().with_path("svc/.github/CODEOWNERS");
        let mut sink = Collect::default();
        normalize(
            b"# owners\n*.tf @acme/platform\nbad line\n",
            &ctx,
            &mut sink,
        );
        assert_eq!(sink.objects.len(), 1);
        let o = &sink.objects[0];
        assert_eq!((o.kind.as_str(), o.id.as_str()), ("codeowners", "svc"));
        assert_eq!(
            o.doc,
            json!({"file": "svc/.github/CODEOWNERS", "root": "svc",
                   "rules": [{"pattern": "*.tf", "owners": ["@acme/platform"], "line": 2}]})
        );
        assert_eq!(sink.diagnostics.len(), 1);
        assert_eq!(sink.diagnostics[0].line, 3);
    }
}
