//! Policy files → a validated [`Policies`]. Each policy's id is its `@id("…")` annotation,
//! or `FILE:LINE` without one; every problem is reported with its file and line, all at
//! once, so `keyward policy validate` shows everything to fix in one run.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr as _;

use cedar_policy::{
    Entities, Entity, EntityUid, PolicyId, PolicySet, RestrictedExpression, Schema, ValidationMode,
    Validator,
};
use miette::Diagnostic;

use crate::entities::{ROLES, TYPE_PERSON, TYPE_ROLE, TYPE_TOKEN, uid};
use crate::{DEFAULT_POLICIES, Policies, SCHEMA};

/// The entities file read from a policies directory, if present.
pub const ENTITIES_FILE: &str = "entities.json";

/// Where a policy was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One thing wrong with a policy set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Why a policy set cannot be used: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PolicyError {
    pub problems: Vec<Problem>,
}

impl PolicyError {
    fn one(file: &str, line: Option<usize>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            problems: vec![Problem {
                file: file.to_owned(),
                line,
                message: message.into(),
            }],
        }
    }
}

/// A loaded set and what validation warned about (it is usable).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub policies: Policies,
    pub warnings: Vec<Problem>,
}

/// Keyward's schema.
pub fn schema() -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(s, _)| s)
        .map_err(|e| PolicyError::one("keyward.cedarschema", None, e.to_string()))
}

/// The built-in roles.
pub fn builtin() -> Result<Loaded, PolicyError> {
    from_sources(
        &[(BUILTIN_FILE.to_owned(), DEFAULT_POLICIES.to_owned())],
        None,
    )
}

/// The name the built-in policies go by in messages and origins.
pub const BUILTIN_FILE: &str = "built-in:default.cedar";

/// Every `*.cedar` file in `dir` (sorted by name), and `entities.json` when present; after
/// the built-in roles when `builtin` (a directory adds to them unless told otherwise).
pub fn from_dir(dir: &Path, builtin: bool) -> Result<Loaded, PolicyError> {
    let shown = dir.display().to_string();
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| PolicyError::one(&p.display().to_string(), None, e.to_string()))
    };
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| PolicyError::one(&shown, None, format!("cannot read the directory: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(PolicyError::one(
            &shown,
            None,
            "holds no `.cedar` policy files",
        ));
    }
    let mut files = Vec::with_capacity(names.len() + 1);
    if builtin {
        files.push((BUILTIN_FILE.to_owned(), DEFAULT_POLICIES.to_owned()));
    }
    for p in &names {
        files.push((p.display().to_string(), read(p)?));
    }
    let ent = dir.join(ENTITIES_FILE);
    let entities = if ent.exists() {
        Some((ent.display().to_string(), read(&ent)?))
    } else {
        None
    };
    from_sources(&files, entities)
}

/// Policies from `(file name, text)` pairs and an optional `(file name, entities JSON)`.
pub fn from_sources(
    files: &[(String, String)],
    entities: Option<(String, String)>,
) -> Result<Loaded, PolicyError> {
    let schema = schema()?;
    let mut problems = Vec::new();
    let mut set = PolicySet::new();
    let mut origins: HashMap<String, crate::Origin> = HashMap::new();
    // Where each policy's text is, to place validation errors.
    let mut texts: HashMap<String, &str> = HashMap::new();
    for (file, text) in files {
        let parsed = match PolicySet::from_str(text) {
            Ok(p) => p,
            Err(errs) => {
                for e in errs.iter() {
                    problems.push(Problem {
                        file: file.clone(),
                        line: first_line(e, text),
                        message: message(e),
                    });
                }
                continue;
            }
        };
        if let Some(t) = parsed.templates().next() {
            let line = locate(text, &t.to_string(), 0).map(|(l, _)| l);
            problems.push(Problem {
                file: file.clone(),
                line,
                message: "templates (policies with `?principal` or `?resource`) are not supported: write the entity in".into(),
            });
        }
        // Cedar numbers a file's policies `policy0`, `policy1`, … in source order.
        let mut ps: Vec<_> = parsed.policies().collect();
        ps.sort_by_key(|p| {
            p.id()
                .to_string()
                .strip_prefix("policy")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        });
        let mut cursor = 0;
        for p in ps {
            let (line, next) = locate(text, &p.to_string(), cursor).unwrap_or((1, cursor));
            cursor = next;
            let stem = Path::new(file)
                .file_name()
                .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
            let id = p
                .annotation("id")
                .map_or_else(|| format!("{stem}:{line}"), str::to_owned);
            let origin = crate::Origin {
                file: file.clone(),
                line,
            };
            if let Some(first) = origins.get(&id) {
                problems.push(Problem {
                    file: file.clone(),
                    line: Some(line),
                    message: format!("the policy id `{id}` is also used at {first}"),
                });
                continue;
            }
            if let Err(e) = set.add(p.new_id(PolicyId::new(&id))) {
                problems.push(Problem {
                    file: file.clone(),
                    line: Some(line),
                    message: e.to_string(),
                });
                continue;
            }
            origins.insert(id.clone(), origin);
            texts.insert(id, text);
        }
    }
    let validated = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let place = |id: &PolicyId, d: &dyn Diagnostic| {
        let id = id.to_string();
        let origin = origins.get(&id);
        let line = texts
            .get(&id)
            .and_then(|t| first_line(d, t))
            .or(origin.map(|o| o.line));
        let said = message(d);
        let said = said
            .strip_prefix(&format!("for policy `{id}`, "))
            .unwrap_or(&said);
        Problem {
            file: origin.map_or_else(|| id.clone(), |o| o.file.clone()),
            line,
            message: format!("policy `{id}`: {said}"),
        }
    };
    // Cedar checks a policy once per action it may apply to: one problem per place, with
    // how many more actions it also failed for.
    let mut seen: HashMap<(String, Option<usize>, String), (usize, usize)> = HashMap::new();
    for e in validated.validation_errors() {
        let p = place(e.policy_id(), e);
        let key = (p.file.clone(), p.line, e.policy_id().to_string());
        match seen.get_mut(&key) {
            Some((_, more)) => *more += 1,
            None => {
                seen.insert(key, (problems.len(), 0));
                problems.push(p);
            }
        }
    }
    for (at, more) in seen.into_values() {
        if let (Some(p), true) = (problems.get_mut(at), more > 0) {
            p.message
                .push_str(&format!(" (and {more} more like it for other actions)"));
        }
    }
    let warnings = validated
        .validation_warnings()
        .map(|w| place(w.policy_id(), w))
        .collect();
    let (known, has_entities_file) = match &entities {
        Some((file, text)) => match known_entities(&schema, Some(text)) {
            Ok(k) => (k, true),
            Err(message) => {
                problems.push(Problem {
                    file: file.clone(),
                    line: None,
                    message,
                });
                (Entities::empty(), true)
            }
        },
        None => match known_entities(&schema, None) {
            Ok(k) => (k, false),
            Err(message) => return Err(PolicyError::one("built-in roles", None, message)),
        },
    };
    if !problems.is_empty() {
        problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(PolicyError { problems });
    }
    Ok(Loaded {
        policies: Policies {
            set,
            schema,
            known,
            has_entities_file,
            origins,
            cache: std::sync::Arc::default(),
        },
        warnings,
    })
}

/// The 1-based line and the end offset of `needle` in `text` at or after `from`.
fn locate(text: &str, needle: &str, from: usize) -> Option<(usize, usize)> {
    let at = text.get(from..)?.find(needle.trim())? + from;
    Some((line_of(text, at), at + needle.trim().len()))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |before| {
        before.bytes().filter(|&b| b == b'\n').count() + 1
    })
}

fn first_line(d: &dyn Diagnostic, text: &str) -> Option<usize> {
    d.labels()
        .and_then(|mut l| l.next())
        .map(|l| line_of(text, l.offset()))
}

fn message(d: &dyn Diagnostic) -> String {
    match d.help() {
        Some(help) => format!("{d} ({help})"),
        None => d.to_string(),
    }
}

/// The entities file's entities, normalised (a person's `actor` is `cli:ID`, a token's
/// `token:ID`, when not given), with the built-in roles (admin in operator in viewer) added
/// unless the file defines them.
fn known_entities(schema: &Schema, text: Option<&str>) -> Result<Entities, String> {
    let given = match text {
        Some(t) => Entities::from_json_str(t, None).map_err(|e| e.to_string())?,
        None => Entities::empty(),
    };
    let mut out: Vec<Entity> = Vec::new();
    let mut seen: HashSet<EntityUid> = HashSet::new();
    for e in given {
        let (id, mut attrs, parents) = e.into_inner();
        let ty = id.type_name().to_string();
        let name = id.id().unescaped().to_owned();
        if ty == TYPE_PERSON {
            attrs
                .entry("actor".into())
                .or_insert_with(|| RestrictedExpression::new_string(format!("cli:{name}")));
        } else if ty == TYPE_TOKEN {
            attrs
                .entry("actor".into())
                .or_insert_with(|| RestrictedExpression::new_string(format!("token:{name}")));
            attrs
                .entry("name".into())
                .or_insert_with(|| RestrictedExpression::new_string(String::new()));
        }
        seen.insert(id.clone());
        out.push(Entity::new(id, attrs, parents).map_err(|e| e.to_string())?);
    }
    // Each role is in the weaker one before it, so `principal in Role::"viewer"` holds for all.
    let mut weaker: Option<EntityUid> = None;
    for role in ROLES {
        let id = uid(TYPE_ROLE, role).map_err(|e| e.to_string())?;
        if !seen.contains(&id) {
            out.push(Entity::new_no_attrs(
                id.clone(),
                weaker.into_iter().collect(),
            ));
        }
        weaker = Some(id);
    }
    Entities::from_entities(out, Some(schema)).map_err(|e| e.to_string())
}
