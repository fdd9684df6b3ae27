//! Behavioural findings: an anomalous hour extends its identity's episode, joins the
//! identity's open alert, or opens a finding; a false positive teaches the baseline.

use serde_json::{Value, json};

use super::{ANOMALY_IDX, ANOMALY_RULE, Detector, EPISODE_GAP, MAX_WINDOWS, merge_key};
use crate::baseline::Score;
use crate::finding::{Finding, Kind, Severity, Status, finding_id};

impl Detector {
    /// An anomalous hour: it extends the principal's behavioural finding when that is
    /// still active and its last hour is at most [`EPISODE_GAP`] before this one (one
    /// episode), and opens one otherwise.
    pub(super) fn anomaly(&mut self, principal: &str, s: Score) {
        let merge = merge_key(ANOMALY_IDX, principal);
        let window = serde_json::to_value(&s.window).unwrap_or(Value::Null);
        let end = s.hour_start + 3_599_999;
        if let Some(a) = self.active.get_mut(&merge)
            && a.finding.status.is_active()
            && s.hour_start - a.finding.last_seen <= EPISODE_GAP
        {
            let f = &mut a.finding;
            f.first_seen = f.first_seen.min(s.hour_start);
            f.last_seen = f.last_seen.max(end);
            f.count += u64::from(s.window.count);
            let strongest = f
                .details
                .get("score")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            if s.score > strongest {
                f.severity = f.severity.max(anomaly_severity(s.score));
                f.summary = anomaly_summary(&s);
                if let Value::Object(m) = &mut f.details {
                    m.insert("score".into(), json!(s.score));
                    m.insert("signals".into(), signals(&s));
                }
            }
            if let Some(Value::Array(ws)) = f.details.get_mut("windows") {
                if ws.len() >= MAX_WINDOWS {
                    ws.remove(0);
                }
                ws.push(window);
            }
            if let Value::Object(m) = &mut f.details {
                let hours = m.get("hours").and_then(Value::as_u64).unwrap_or(1);
                m.insert("hours".into(), json!(hours + 1));
            }
            for id in &s.events {
                a.add_evidence(id);
            }
            if !a.changed {
                a.changed = true;
                self.out.push(merge);
            }
            return;
        }
        if self.fold_anomaly(principal, &s, window.clone()) {
            return;
        }
        let f = Finding {
            id: finding_id(ANOMALY_RULE, Some(principal), &s.hour_start.to_string()),
            rule_id: ANOMALY_RULE.into(),
            title: "Behaviour outside the identity's baseline".into(),
            severity: anomaly_severity(s.score),
            kind: Kind::Threat,
            identity: Some(principal.to_owned()),
            attack: vec!["T1078.004".into()],
            events: s.events.clone(),
            path: Vec::new(),
            first_seen: s.hour_start,
            last_seen: end,
            count: u64::from(s.window.count),
            status: Status::Open,
            summary: anomaly_summary(&s),
            details: json!({"score": s.score, "signals": signals(&s), "hours": 1,
                            "windows": [window]}),
        };
        self.open(merge, f);
    }

    /// An anomalous hour within a day of an open alert of the same principal is that
    /// incident's behaviour: it is added to the alert (`details.anomaly`: the strongest
    /// score and its signals, the hours and their windows), not alerted again. Returns
    /// whether it was.
    fn fold_anomaly(&mut self, principal: &str, s: &Score, window: Value) -> bool {
        let end = s.hour_start + 3_599_999;
        // The earliest such alert (the map's order is not the same from run to run).
        let Some(key) = self
            .active
            .iter()
            .filter(|(_, a)| {
                let f = &a.finding;
                f.status.is_alert()
                    && f.rule_id != ANOMALY_RULE
                    && f.identity.as_deref() == Some(principal)
                    && s.hour_start <= f.last_seen + EPISODE_GAP
                    && end + EPISODE_GAP >= f.first_seen
            })
            .min_by(|(_, x), (_, y)| {
                (x.finding.first_seen, &x.finding.id).cmp(&(y.finding.first_seen, &y.finding.id))
            })
            .map(|(&k, _)| k)
        else {
            return false;
        };
        let Some(a) = self.active.get_mut(&key) else {
            return false;
        };
        let f = &mut a.finding;
        f.severity = f.severity.max(anomaly_severity(s.score));
        let Value::Object(m) = &mut f.details else {
            return false;
        };
        let entry = m
            .entry("anomaly")
            .or_insert_with(|| json!({"score": 0.0, "hours": 0, "windows": []}));
        if let Value::Object(an) = entry {
            if an.get("score").and_then(Value::as_f64).unwrap_or(0.0) < s.score {
                an.insert("score".into(), json!(s.score));
                an.insert("signals".into(), signals(s));
                an.insert("summary".into(), Value::String(anomaly_summary(s)));
            }
            let hours = an.get("hours").and_then(Value::as_u64).unwrap_or(0);
            an.insert("hours".into(), json!(hours + 1));
            if let Some(Value::Array(ws)) = an.get_mut("windows") {
                if ws.len() >= MAX_WINDOWS {
                    ws.remove(0);
                }
                ws.push(window);
            }
        }
        for id in &s.events {
            a.add_evidence(id);
        }
        if !a.changed {
            a.changed = true;
            self.out.push(key);
        }
        true
    }

    /// A false-positive verdict on a behavioural finding: the hours of its episode become
    /// normal for the identity. Returns whether a baseline learned something.
    pub fn absorb_false_positive(&mut self, f: &Finding) -> bool {
        let Some(p) = f.identity.as_deref() else {
            return false;
        };
        // Findings stored before episodes hold one `window`; an alert that took in its
        // identity's anomalous hours holds them under `anomaly`.
        let held = f
            .details
            .get("windows")
            .or_else(|| f.details.get("anomaly").and_then(|a| a.get("windows")));
        let windows: Vec<crate::baseline::Window> = match held {
            Some(Value::Array(ws)) => ws
                .iter()
                .filter_map(|w| serde_json::from_value(w.clone()).ok())
                .collect(),
            _ => f
                .details
                .get("window")
                .and_then(|w| serde_json::from_value(w.clone()).ok())
                .into_iter()
                .collect(),
        };
        let key = crate::keyed_hash(p);
        let Some(h) = self.baselines.get_mut(&key) else {
            return false;
        };
        if windows.is_empty() {
            return false;
        }
        for w in &windows {
            h.baseline.absorb(w);
        }
        h.mark(key, &mut self.dirty);
        true
    }
}

fn anomaly_severity(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::High
    } else {
        Severity::Medium
    }
}

fn anomaly_summary(s: &Score) -> String {
    let fired: Vec<&str> = s.signals.iter().map(|g| g.name).collect();
    format!(
        "anomaly score {:.1} in the hour from {}: {}",
        s.score,
        keyward_model::time::format(s.hour_start),
        fired.join(", ")
    )
}

fn signals(s: &Score) -> Value {
    s.signals
        .iter()
        .map(|g| json!({"signal": g.name, "score": g.score, "detail": g.detail}))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::{Catalog, Settings};

    fn score(hour: i64, score: f64, event: &str) -> Score {
        Score {
            hour_start: hour * 3_600_000,
            score,
            signals: vec![crate::baseline::Signal {
                name: "new_endpoints",
                score,
                detail: String::new(),
            }],
            events: vec![event.to_owned()],
            window: crate::baseline::Window {
                hour,
                count: 3,
                ..Default::default()
            },
        }
    }

    /// Anomalous hours a day or less apart are one episode, one finding: its strongest
    /// score, every hour's window; a quiet day later, a new episode opens a new finding.
    #[test]
    fn anomalies_group_by_episode() {
        let mut d = Detector::new(Catalog::default(), Settings::default()).unwrap();
        let p = "arn:aws:iam::111122223333:role/batch";
        d.anomaly(p, score(1_000, 7.5, "e1"));
        d.anomaly(p, score(1_002, 9.5, "e2"));
        d.anomaly(p, score(1_020, 7.0, "e3"));
        let one = d.take_findings();
        assert_eq!(one.len(), 1, "{one:?}");
        let f = &one[0];
        assert_eq!(f.count, 9);
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.details["score"], 9.5);
        assert_eq!(f.details["hours"], 3);
        assert_eq!(f.details["windows"].as_array().unwrap().len(), 3);
        assert_eq!(f.events, ["e1", "e2", "e3"]);
        assert_eq!(f.last_seen, 1_021 * 3_600_000 - 1);
        // More than a day after the episode's last hour: a new episode.
        d.anomaly(p, score(1_020 + 25, 8.0, "e4"));
        let two = d.take_findings();
        assert_eq!(two.len(), 1);
        assert_ne!(two[0].id, f.id);
        // Another identity's hour is its own finding.
        d.anomaly(
            "arn:aws:iam::111122223333:role/other",
            score(1_046, 8.0, "e5"),
        );
        assert_ne!(d.take_findings()[0].identity, two[0].identity);
    }
}
