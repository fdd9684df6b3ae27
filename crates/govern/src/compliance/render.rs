//! A report as text, CSV and a self-contained HTML page (JSON is the report serialized).

use std::fmt::Write as _;

use super::{Report, Status};

/// One line per control, then the deciding identities and evidence of what is not passing.
pub fn table(r: &Report) -> String {
    let mut out = format!(
        "{} — {} pass, {} warn, {} fail\n\n",
        r.title, r.pass, r.warn, r.fail
    );
    let width = r.controls.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in &r.controls {
        let _ = writeln!(
            out,
            "{:<width$}  {:<4}  {}\n{:<width$}        {}",
            c.id,
            c.status.as_str(),
            c.title,
            "",
            c.why
        );
        if c.status != Status::Pass {
            for e in c.evidence.iter().filter(|e| e.kind == "finding").take(5) {
                let _ = writeln!(out, "{:<width$}        - {}  ({})", "", e.detail, e.command);
            }
            if c.findings.len() > 5 {
                let _ = writeln!(
                    out,
                    "{:<width$}        … {} more (--format json lists them)",
                    "",
                    c.findings.len() - 5
                );
            }
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would make a spreadsheet evaluate the cell.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `framework,control,title,status,why,identities,findings,evidence`, one row per control;
/// lists are `;`-separated.
pub fn csv(r: &Report) -> String {
    let mut out = String::from("framework,control,title,status,why,identities,findings,evidence\n");
    for c in &r.controls {
        let evidence: Vec<String> = c.evidence.iter().map(|e| e.reference.clone()).collect();
        let row = [
            r.framework.id().to_owned(),
            c.id.to_owned(),
            c.title.to_owned(),
            c.status.as_str().to_owned(),
            c.why.clone(),
            c.identities.join(";"),
            c.findings.join(";"),
            evidence.join(";"),
        ];
        let cells: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page an auditor can open offline: no script, no external resource.
pub fn html(r: &Report) -> String {
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}}\
         .pass{{color:#176117}}.warn{{color:#8a5a00}}.fail{{color:#a11}}</style></head><body>\
         <h1>{title}</h1><p>Generated {at} by Keyward: {pass} pass, {warn} warn, {fail} fail.</p>\
         <table><tr><th>Control</th><th>Status</th><th>Why</th><th>Identities</th><th>Evidence</th></tr>",
        title = esc(r.title),
        at = esc(&keyward_model::time::format(r.generated_at)),
        pass = r.pass,
        warn = r.warn,
        fail = r.fail,
    );
    for c in &r.controls {
        let evidence: Vec<String> = c
            .evidence
            .iter()
            .map(|e| {
                format!(
                    "<li>{}: {} <code>{}</code></li>",
                    esc(e.kind),
                    esc(&e.detail),
                    esc(&e.command)
                )
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td><b>{}</b><br>{}</td><td class=\"{s}\">{s}</td><td>{}</td><td>{}</td><td><ul>{}</ul></td></tr>",
            esc(c.id),
            esc(c.title),
            esc(&c.why),
            esc(&c.identities.join(", ")),
            evidence.join(""),
            s = c.status.as_str(),
        );
    }
    out.push_str("</table></body></html>\n");
    out
}
