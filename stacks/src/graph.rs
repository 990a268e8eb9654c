//! The deploy graph: which stack must exist before which, read from the
//! outputs each template publishes and the ones each consumes as
//! parameters (never a hand-kept list). Deploy order and parallel waves
//! come from it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{OutputKey, Template};
use crate::stacks::StackId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("stack `{consumer}` consumes `{output}`, which no stack publishes")]
    MissingOutput { consumer: StackId, output: String },
    #[error("stacks {} consume each other's outputs in a cycle", .stacks.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))]
    Cycle { stacks: Vec<StackId> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    /// For each stack, the stacks whose outputs it consumes.
    pub depends_on: BTreeMap<StackId, BTreeSet<StackId>>,
    /// A topological order (ties broken by [`StackId`] order).
    pub order: Vec<StackId>,
    /// Stacks grouped into waves; all stacks of a wave can deploy at once.
    pub waves: Vec<Vec<StackId>>,
}

impl Graph {
    /// Stacks that consume `id`'s outputs, directly or not.
    pub fn dependents(&self, id: StackId) -> BTreeSet<StackId> {
        let mut out = BTreeSet::new();
        let mut frontier = vec![id];
        while let Some(s) = frontier.pop() {
            for (consumer, deps) in &self.depends_on {
                if deps.contains(&s) && out.insert(*consumer) {
                    frontier.push(*consumer);
                }
            }
        }
        out
    }
}

pub fn derive(templates: &BTreeMap<StackId, Template>) -> Result<Graph, GraphError> {
    let mut producer: BTreeMap<OutputKey, StackId> = BTreeMap::new();
    for (id, t) in templates {
        for key in t.published() {
            producer.insert(*key, *id);
        }
    }
    let mut depends_on: BTreeMap<StackId, BTreeSet<StackId>> = BTreeMap::new();
    for (id, t) in templates {
        let deps = depends_on.entry(*id).or_default();
        for (key, _) in t.consumed().values() {
            match producer.get(key) {
                Some(p) if p != id => {
                    deps.insert(*p);
                }
                Some(_) => {}
                None => {
                    return Err(GraphError::MissingOutput {
                        consumer: *id,
                        output: format!("{}.{}", key.producer, key.name),
                    })
                }
            }
        }
    }

    let mut remaining = depends_on.clone();
    let mut order = Vec::new();
    let mut waves = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<StackId> = remaining
            .iter()
            .filter(|(_, d)| d.is_empty())
            .map(|(s, _)| *s)
            .collect();
        if ready.is_empty() {
            return Err(GraphError::Cycle {
                stacks: remaining.keys().copied().collect(),
            });
        }
        for s in &ready {
            remaining.remove(s);
        }
        for deps in remaining.values_mut() {
            for s in &ready {
                deps.remove(s);
            }
        }
        order.extend(ready.iter().copied());
        waves.push(ready);
    }
    Ok(Graph {
        depends_on,
        order,
        waves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OutputKey, Template};

    fn tmpl(exports: &[OutputKey], imports: &[OutputKey]) -> Template {
        let mut t = Template::new("t", "p");
        for k in exports {
            t.publish(*k, "v".into(), "d");
        }
        for k in imports {
            t.consume(*k);
        }
        t
    }

    #[test]
    fn order_and_waves_follow_consumed_outputs() {
        let a = OutputKey::new("network", "A");
        let b = OutputKey::new("memory", "B");
        let m = BTreeMap::from([
            (StackId::Service, tmpl(&[], &[a, b])),
            (StackId::Memory, tmpl(&[b], &[a])),
            (StackId::Cache, tmpl(&[], &[a])),
            (StackId::Network, tmpl(&[a], &[])),
        ]);
        let g = derive(&m).expect("graph");
        assert_eq!(
            g.order,
            vec![
                StackId::Network,
                StackId::Memory,
                StackId::Cache,
                StackId::Service
            ]
        );
        assert_eq!(
            g.waves,
            vec![
                vec![StackId::Network],
                vec![StackId::Memory, StackId::Cache],
                vec![StackId::Service]
            ]
        );
        assert_eq!(
            g.dependents(StackId::Memory),
            BTreeSet::from([StackId::Service])
        );
        assert_eq!(g.dependents(StackId::Network).len(), 3);
    }

    #[test]
    fn cycles_and_missing_outputs_are_errors() {
        let a = OutputKey::new("network", "A");
        let b = OutputKey::new("memory", "B");
        let cyclic = BTreeMap::from([
            (StackId::Network, tmpl(&[a], &[b])),
            (StackId::Memory, tmpl(&[b], &[a])),
        ]);
        assert_eq!(
            derive(&cyclic),
            Err(GraphError::Cycle {
                stacks: vec![StackId::Network, StackId::Memory]
            })
        );
        let missing = BTreeMap::from([(StackId::Cache, tmpl(&[], &[a]))]);
        let err = derive(&missing).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "stack `cache` consumes `network.A`, which no stack publishes"
        );
    }
}
