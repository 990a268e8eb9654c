//! The typed CloudFormation model: values ([`expr`]), the template builder
//! ([`template`]) and one module of typed resources per AWS service
//! ([`resources`]). The stack modules in [`crate::stacks`] build on it.

pub mod expr;
pub mod resources;
pub mod template;

pub use expr::{pseudo, Expr};
pub use template::{
    ConditionHandle, Handle, Lookup, OutputKey, ParamHandle, Parameter, Policy, ResourceOpts,
    ResourceType, Template,
};

/// A template that breaks a rule typed handles cannot enforce on their own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("duplicate logical ID `{id}`")]
    DuplicateId { id: String },
    #[error("logical ID `{id}` must be non-empty and alphanumeric")]
    BadLogicalId { id: String },
    #[error("`{from}` refers to `{to}`, which this template does not declare")]
    DanglingReference { from: String, to: String },
    #[error("properties of `{id}` do not serialize: {message}")]
    Serialize { id: String, message: String },
}
