//! SageMaker real-time inference: model, endpoint configuration, endpoint.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerDefinition {
    pub image: String,
    pub model_data_url: String,
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Model {
    pub execution_role_arn: Expr,
    /// No network from the inference container (SageMaker still fetches
    /// the model artifact and image before it starts).
    pub enable_network_isolation: bool,
    pub primary_container: ContainerDefinition,
    pub tags: Vec<Tag>,
}
resource_type!(Model, "AWS::SageMaker::Model");

impl Handle<Model> {
    pub fn name(&self) -> Expr {
        self.attr("ModelName")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductionVariant {
    pub model_name: Expr,
    pub variant_name: String,
    pub initial_instance_count: u32,
    pub instance_type: String,
    pub initial_variant_weight: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfig {
    pub production_variants: Vec<ProductionVariant>,
    pub tags: Vec<Tag>,
}
resource_type!(EndpointConfig, "AWS::SageMaker::EndpointConfig");

impl Handle<EndpointConfig> {
    pub fn name(&self) -> Expr {
        self.attr("EndpointConfigName")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    pub endpoint_name: String,
    pub endpoint_config_name: Expr,
    /// `true`: an update keeps the variants' live instance counts and
    /// weights ("To retain the variant properties of an endpoint when
    /// updating it, set RetainAllVariantProperties to true"; the default,
    /// false, resets them from the new endpoint config), except those
    /// listed in `exclude_retained_variant_properties`.
    pub retain_all_variant_properties: bool,
    pub exclude_retained_variant_properties: Vec<VariantProperty>,
    pub tags: Vec<Tag>,
}

/// `VariantPropertyType`: `DesiredInstanceCount`, `DesiredWeight`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VariantProperty {
    pub variant_property_type: String,
}
resource_type!(Endpoint, "AWS::SageMaker::Endpoint");

impl Handle<Endpoint> {
    pub fn arn(&self) -> Expr {
        self.reference()
    }
    pub fn name(&self) -> Expr {
        self.attr("EndpointName")
    }
}
