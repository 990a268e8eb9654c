//! One insta snapshot per stack per environment, plus the manifest. A
//! changed template shows up as a reviewable snapshot diff.

use stacks::env;
use stacks::render::{render, Format};
use stacks::stacks::Inputs;

use crate::support::{repo, ENVIRONMENTS};

#[test]
fn every_stack_of_every_environment() {
    for name in ENVIRONMENTS {
        let e = env::load(&repo().join(format!("environments/{name}.yaml")))
            .expect("environment loads");
        let plan =
            sizing::size(&e.sizing_input()).expect("the shipped environments meet their targets");
        let rendered = render(&Inputs::new(&e, &plan), Format::Json).expect("renders");
        assert_eq!(rendered.stacks.len(), 8);
        for s in &rendered.stacks {
            insta::assert_snapshot!(format!("{name}__{}", s.id.name()), s.body);
        }
        let manifest = serde_json::to_string_pretty(&rendered.manifest).expect("manifest");
        insta::assert_snapshot!(format!("{name}__manifest"), manifest);
    }
}
