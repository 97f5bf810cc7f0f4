//! [`Limits`]: caps on what one pass may start.

use std::collections::BTreeMap;

use super::Action;

/// What one pass may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How many [`Action::Create`] may be emitted in this pass (e.g. free ports).
    pub max_creates: usize,
}

impl Limits {
    /// Keeps at most `max_creates` creates of `actions`, shared round-robin between
    /// services so that one big service cannot starve the others; stops and the
    /// order of what is kept are untouched.
    ///
    /// Dropping creates is always safe: the stops of a pass never count on its
    /// creates, and the next pass asks for the dropped ones again.
    pub fn apply(&self, actions: Vec<Action>) -> Vec<Action> {
        let mut wanted: BTreeMap<String, usize> = BTreeMap::new();
        for action in &actions {
            if let Action::Create { service, .. } = action {
                *wanted.entry(service.clone()).or_default() += 1;
            }
        }
        let mut granted: BTreeMap<String, usize> = BTreeMap::new();
        let mut left = self.max_creates;
        let mut round = 0;
        while left > 0 && wanted.values().any(|&n| n > round) {
            for (service, _) in wanted.iter().filter(|&(_, &n)| n > round) {
                if left == 0 {
                    break;
                }
                *granted.entry(service.clone()).or_default() += 1;
                left -= 1;
            }
            round += 1;
        }
        actions
            .into_iter()
            .filter(|action| match action {
                Action::Create { service, .. } => match granted.get_mut(service) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        true
                    }
                    _ => false,
                },
                Action::Stop { .. } => true,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(service: &str) -> Action {
        Action::Create {
            service: service.to_string(),
            replaces: None,
            reason: "desired replicas".to_string(),
        }
    }

    fn stop(id: &str) -> Action {
        Action::Stop {
            id: id.to_string(),
            service: "a".to_string(),
            reason: "service removed".to_string(),
        }
    }

    #[test]
    fn creates_are_shared_round_robin_between_services() {
        let actions = vec![
            create("a"),
            create("a"),
            create("a"),
            create("b"),
            create("c"),
        ];
        let kept = Limits { max_creates: 3 }.apply(actions);
        assert_eq!(kept, vec![create("a"), create("b"), create("c")]);
    }

    #[test]
    fn leftover_creates_go_to_the_services_that_want_more() {
        let actions = vec![create("a"), create("a"), create("a"), create("b")];
        let kept = Limits { max_creates: 3 }.apply(actions);
        assert_eq!(kept, vec![create("a"), create("a"), create("b")]);
    }

    #[test]
    fn stops_are_kept_in_place() {
        let actions = vec![stop("x"), create("a"), create("a"), stop("y")];
        let kept = Limits { max_creates: 0 }.apply(actions);
        assert_eq!(kept, vec![stop("x"), stop("y")]);
    }

    #[test]
    fn a_large_limit_keeps_everything() {
        let actions = vec![stop("x"), create("a"), create("b"), create("a")];
        let limits = Limits {
            max_creates: usize::MAX,
        };
        assert_eq!(limits.apply(actions.clone()), actions);
    }
}
