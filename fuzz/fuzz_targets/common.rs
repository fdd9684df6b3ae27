//! A sink that checks the normalizer contract: every diagnostic names a line ≥ 1 and a
//! reason; accepted events have an id and an action.

use keyward_model::Diagnostic;
use keyward_normalize::{Output, Sink};

#[derive(Default)]
pub struct Check;

impl Sink for Check {
    fn accept(&mut self, out: Output<'_>) {
        if let Some(e) = &out.event {
            assert!(!e.native_id.is_empty() && !e.action.is_empty());
        }
        for o in &out.observations {
            assert!(!o.id.is_empty());
        }
    }
    fn reject(&mut self, d: Diagnostic) {
        assert!(d.line >= 1 && !d.reason.to_string().is_empty());
    }
}
